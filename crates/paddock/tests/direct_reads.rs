//! Reads answered on their connection's task, off the core (crates/server/src/read_path.rs),
//! keep every guarantee a read through the core gives: a session's read sees its earlier
//! writes, its replies keep the order of its requests, and a watch set by a read fires for
//! every change after the state the read saw, its event before any later reply that shows the
//! change. Each test also checks that the reads it makes were in fact answered directly
//! (`zk_direct_read_count`), so that none passes by going through the core alone.

mod common;

use common::{Client, Frame, Server};
use paddock_proto::{
    event, Acl, Create, CreateKind, DeleteRequest, GetDataResponse, PathWatchRequest, Reader,
    Record, Request, SetDataRequest, StatResponse,
};
use std::time::Duration;

fn create(path: &str, data: &[u8]) -> Request {
    Request::Create(Create {
        kind: CreateKind::Create,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

fn delete(path: &str) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

/// A figure of `mntr`.
fn mntr(s: &Server, key: &str) -> u64 {
    let text = s.four("mntr");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}\t")))
        .unwrap_or_else(|| panic!("no {key} in mntr:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// The data and version of a getData reply body.
fn data_of(body: &[u8]) -> (Vec<u8>, i32) {
    let r = GetDataResponse::decode(&mut Reader::new(body)).unwrap();
    (r.data.unwrap_or_default(), r.stat.version)
}

#[test]
fn pipelined_reads_are_answered_directly_in_order_and_counted() {
    let s = Server::start(&[]);
    let mut c = Client::connect(s.addr);
    c.req(&create("/d", b"x"));
    // The connection's first read goes through the core, which hands it its pass.
    c.req(&get("/d", false));
    let before = mntr(&s, "zk_direct_read_count");
    let received = mntr(&s, "zk_packets_received");
    let xids: Vec<i32> = (0..500)
        .map(|i| c.send(&get(if i % 2 == 0 { "/d" } else { "/nope" }, false)))
        .collect();
    for (i, xid) in xids.into_iter().enumerate() {
        let Some(Frame::Reply(h, body)) = c.next() else {
            panic!("expected a reply")
        };
        assert_eq!(h.xid, xid, "replies in request order");
        if i % 2 == 0 {
            assert_eq!(h.err, 0);
            assert_eq!(data_of(&body).0, b"x");
        } else {
            assert_eq!(h.err, paddock_proto::ErrorCode::NoNode.code());
        }
    }
    let direct = mntr(&s, "zk_direct_read_count") - before;
    assert!(direct >= 400, "only {direct} of 500 reads were direct");
    // Counted as every request is: by mntr, by cons, and into the read latencies.
    assert!(mntr(&s, "zk_packets_received") >= received + 500);
    let cons = s.four("cons");
    assert!(cons.contains("recved=502,sent=502"), "{cons}");
}

#[test]
fn a_sessions_read_sees_its_earlier_writes_and_keeps_its_place() {
    let s = Server::start(&[]);
    let mut c = Client::connect(s.addr);
    c.req(&create("/rw", b"0"));
    c.req(&get("/rw", false));
    let before = mntr(&s, "zk_direct_read_count");
    // Rounds of a write and the reads behind it, all pipelined: each read must see the
    // write sent before it, whichever task answers it.
    for round in 0..100u32 {
        let v = round.to_string().into_bytes();
        let mut xids = vec![c.send(&set("/rw", &v)), c.send(&get("/rw", false))];
        xids.push(c.send(&get("/rw", false)));
        xids.push(c.send(&create(&format!("/rw/{round}"), b"")));
        xids.push(c.send(&exists(&format!("/rw/{round}"))));
        xids.push(c.send(&delete(&format!("/rw/{round}"))));
        xids.push(c.send(&exists(&format!("/rw/{round}"))));
        let mut replies = Vec::new();
        for xid in xids {
            let Some(Frame::Reply(h, body)) = c.next() else {
                panic!("expected a reply")
            };
            assert_eq!(h.xid, xid, "replies in request order");
            replies.push((h.err, body));
        }
        assert_eq!(data_of(&replies[1].1).0, v, "round {round}");
        assert_eq!(data_of(&replies[2].1).0, v, "round {round}");
        assert_eq!(replies[4].0, 0, "exists after create, round {round}");
        assert_eq!(
            replies[6].0,
            paddock_proto::ErrorCode::NoNode.code(),
            "exists after delete, round {round}"
        );
        // A read alone now, with nothing in flight: answered directly, and still current.
        let (h, body) = c.req(&get("/rw", false));
        assert_eq!(h.err, 0);
        assert_eq!(data_of(&body).0, v);
    }
    let direct = mntr(&s, "zk_direct_read_count") - before;
    assert!(direct >= 100, "only {direct} reads were direct");
}

#[test]
fn a_watch_set_by_a_direct_read_fires_for_every_later_change_before_a_reply_shows_it() {
    let s = Server::start(&[]);
    let mut reader = Client::connect(s.addr);
    let mut writer = Client::connect(s.addr);
    writer.req(&create("/w", b"0"));
    reader.req(&get("/w", false));
    let before = mntr(&s, "zk_direct_read_count");
    let mut fired = 0;
    for round in 0..300u32 {
        // The write and the watching read race: the read may see the state before the write
        // or after it, and either way nothing may be missed.
        let (get_xid, set_xid) = if round % 3 == 0 {
            let g = reader.send(&get("/w", true));
            (g, writer.send(&set("/w", round.to_string().as_bytes())))
        } else {
            let w = writer.send(&set("/w", round.to_string().as_bytes()));
            if round % 3 == 2 {
                std::thread::sleep(Duration::from_micros(200));
            }
            (reader.send(&get("/w", true)), w)
        };
        let mut events_before_reply = 0;
        let seen = loop {
            match reader.next().expect("connection closed") {
                Frame::Event(e) => {
                    assert_eq!(e.path, "/w");
                    events_before_reply += 1;
                }
                Frame::Reply(h, body) => {
                    assert_eq!(h.xid, get_xid);
                    break data_of(&body).1;
                }
            }
        };
        let Some(Frame::Reply(h, _)) = writer.next() else {
            panic!("expected the write's reply")
        };
        assert_eq!((h.xid, h.err), (set_xid, 0));
        // The write is applied now. If the read saw the state before it, the watch the read
        // set must fire, and its event must come before the reply of a later read.
        let check = reader.send(&exists("/w"));
        let mut events_after_reply = 0;
        let now = loop {
            match reader.next().expect("connection closed") {
                Frame::Event(e) => {
                    assert_eq!(e.path, "/w");
                    assert_eq!(e.event_type, event::NODE_DATA_CHANGED);
                    events_after_reply += 1;
                }
                Frame::Reply(h, body) => {
                    assert_eq!(h.xid, check);
                    break StatResponse::decode(&mut Reader::new(&body))
                        .unwrap()
                        .stat
                        .version;
                }
            }
        };
        if now > seen {
            assert_eq!(
                events_after_reply, 1,
                "round {round}: the read saw version {seen}, the node is at {now}: its watch \
                 must fire before this reply"
            );
        } else {
            assert_eq!(events_after_reply, 0, "round {round}: nothing changed");
        }
        assert_eq!(
            events_before_reply, 0,
            "round {round}: no watch was set before this read, and its own fires after its reply"
        );
        fired += events_after_reply;
        if events_after_reply == 0 {
            // The watch is still set: the next round's write fires it. Drain it now so that
            // every round starts with no watch.
            let g = writer.req(&set("/w", b"drain"));
            assert_eq!(g.0.err, 0);
            match reader.next().expect("connection closed") {
                Frame::Event(e) => assert_eq!(e.event_type, event::NODE_DATA_CHANGED),
                Frame::Reply(..) => panic!("round {round}: expected the pending watch's event"),
            }
        }
    }
    assert!(fired > 0, "no round had the read before the write");
    let direct = mntr(&s, "zk_direct_read_count") - before;
    assert!(direct >= 300, "only {direct} reads were direct");
}

#[test]
fn direct_reads_off_every_read_goes_through_the_core() {
    let s = Server::start(&[("directReads", "false")]);
    let mut c = Client::connect(s.addr);
    c.req(&create("/o", b"x"));
    for _ in 0..50 {
        let (h, body) = c.req(&get("/o", false));
        assert_eq!(h.err, 0);
        assert_eq!(data_of(&body).0, b"x");
    }
    assert_eq!(mntr(&s, "zk_direct_read_count"), 0);
}
