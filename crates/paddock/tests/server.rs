//! The server over real sockets: ordering, sessions, bad input, back-pressure, four-letter words.

mod common;

use common::{Client, Frame, Server};
use paddock_proto::{
    event, Acl, ConnectRequest, Create, CreateKind, ErrorCode, GetDataResponse, PathWatchRequest,
    Reader, Record, Request, SetDataRequest,
};
use std::io::Write;
use std::time::{Duration, Instant};

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(Create {
        kind: CreateKind::Create,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

#[test]
fn pipelined_requests_are_answered_in_order_with_their_own_effects() {
    let s = Server::start(&[]);
    let mut c = Client::connect(s.addr);
    let reqs = [
        create("/p", b"1", 0),
        get("/p", false),
        set("/p", b"2"),
        get("/p", false),
        set("/p", b"3"),
    ];
    let xids: Vec<i32> = reqs.iter().map(|r| c.send(r)).collect();
    let mut datas = Vec::new();
    let mut zxids = Vec::new();
    for xid in xids {
        let Some(Frame::Reply(h, body)) = c.next() else {
            panic!("expected a reply")
        };
        assert_eq!(h.xid, xid);
        assert_eq!(h.err, 0);
        zxids.push(h.zxid);
        if let Ok(d) = GetDataResponse::decode(&mut Reader::new(&body)) {
            if body.len() > 68 {
                datas.push(d.data.unwrap());
            }
        }
    }
    // Each read sees exactly the writes its session sent before it.
    assert_eq!(datas, vec![b"1".to_vec(), b"2".to_vec()]);
    assert!(zxids.windows(2).all(|w| w[0] <= w[1]), "{zxids:?}");
}

#[test]
fn watch_event_precedes_later_reply_and_parent_event_follows_node_event() {
    let s = Server::start(&[]);
    let mut a = Client::connect(s.addr);
    let mut b = Client::connect(s.addr);
    a.req(&create("/w", b"", 0));
    let mut ev = Vec::new();
    a.call(&exists("/w/x", true), &mut ev);
    a.call(
        &Request::GetChildren(PathWatchRequest {
            path: "/w".into(),
            watch: true,
        }),
        &mut ev,
    );
    b.req(&create("/w/x", b"", 0));
    // The events were queued before B's reply, so they precede the reply to A's next request.
    a.call(&get("/w", false), &mut ev);
    let got: Vec<(i32, &str)> = ev.iter().map(|e| (e.event_type, e.path.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (event::NODE_CREATED, "/w/x"),
            (event::NODE_CHILDREN_CHANGED, "/w")
        ]
    );
}

#[test]
fn oversized_or_malformed_input_hurts_only_its_own_connection() {
    let s = Server::start(&[("jute.maxbuffer", "4096")]);
    let mut good = Client::connect(s.addr);
    good.req(&create("/ok", b"", 0));

    let mut big = Client::connect(s.addr);
    big.sock.write_all(&(1_000_000i32).to_be_bytes()).unwrap();
    assert!(
        big.closed_within(Duration::from_secs(5)),
        "an oversized frame closes the connection"
    );

    let mut neg = Client::connect(s.addr);
    neg.sock.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(neg.closed_within(Duration::from_secs(5)));

    // A truncated body gets MARSHALLINGERROR, and the connection goes on.
    let mut bad = Client::connect(s.addr);
    bad.write_frame(&[0, 0, 0, 1, 0, 0, 0, 4, 0, 0]);
    let Some(Frame::Reply(h, _)) = bad.next() else {
        panic!()
    };
    assert_eq!((h.xid, h.err), (1, ErrorCode::MarshallingError.code()));
    let (h, _) = bad.req(&exists("/ok", false));
    assert_eq!(h.err, 0);

    // An unknown opcode gets UNIMPLEMENTED with zxid -1, then the connection closes.
    let mut unk = Client::connect(s.addr);
    unk.write_frame(&[0, 0, 0, 7, 0, 0, 3, 231]);
    let Some(Frame::Reply(h, _)) = unk.next() else {
        panic!()
    };
    assert_eq!(
        (h.xid, h.zxid, h.err),
        (7, -1, ErrorCode::Unimplemented.code())
    );
    assert!(unk.closed_within(Duration::from_secs(5)));

    let (h, _) = good.req(&exists("/ok", false));
    assert_eq!(h.err, 0, "other sessions are unaffected");
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_server() {
    let s = Server::start(&[]);
    let mut w = Client::connect(s.addr);
    w.req(&create("/big", &vec![7u8; 100_000], 0));
    let before = s.rss();
    // Up to a million reads of 100 kB each: 100 GB of replies if the server queued them all.
    let mut c = Client::connect(s.addr);
    c.sock
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut one = Vec::new();
    paddock_proto::RequestHeader {
        xid: 1,
        op: paddock_proto::op::GET_DATA,
    }
    .encode(&mut one);
    get("/big", false).encode_body(&mut one);
    let mut framed = Vec::new();
    for _ in 0..1000 {
        framed.extend_from_slice(&(one.len() as i32).to_be_bytes());
        framed.extend_from_slice(&one);
    }
    let mut sent = 0;
    for _ in 0..1000 {
        if c.sock.write_all(&framed).is_err() {
            break; // The server stopped reading: that is the point.
        }
        sent += 1000;
    }
    std::thread::sleep(Duration::from_millis(500));
    let growth = s.rss().saturating_sub(before);
    assert!(
        sent < 1_000_000,
        "the server kept reading everything a stalled client sent"
    );
    assert!(
        growth < 64 << 20,
        "server grew by {growth} bytes for a client that reads nothing"
    );
    // Others are still served.
    let (h, _) = w.req(&exists("/big", false));
    assert_eq!(h.err, 0);
}

#[test]
fn sessions_expire_in_ticks_and_take_their_ephemerals() {
    let s = Server::start(&[("tickTime", "100")]);
    let mut owner = Client::attach(s.addr, 0, vec![0; 16], 200).unwrap();
    assert_eq!(owner.timeout, 200);
    owner.req(&create("/eph", b"", 1));
    let mut watcher = Client::connect(s.addr);
    let mut ev = Vec::new();
    watcher.call(&exists("/eph", true), &mut ev);
    let started = Instant::now();
    // The owner stays connected but silent.
    let Some(Frame::Event(e)) = watcher.next() else {
        panic!("expected an event")
    };
    let took = started.elapsed();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (event::NODE_DELETED, "/eph")
    );
    assert!(
        took >= Duration::from_millis(150),
        "expired too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2000),
        "expired too late: {took:?}"
    );
    assert!(
        owner.closed_within(Duration::from_secs(2)),
        "an expired session's socket is closed"
    );
    // Reattaching to the expired session is refused the way clients expect.
    let c = Client::attach(s.addr, owner.session, owner.passwd.clone(), 200).unwrap();
    assert_eq!((c.timeout, c.session), (0, 0));
    assert_eq!(c.passwd, vec![0; 16]);
}

#[test]
fn sessions_survive_a_dropped_connection_and_move_to_a_new_one() {
    let s = Server::start(&[("tickTime", "100")]);
    let mut a = Client::attach(s.addr, 0, vec![0; 16], 2000).unwrap();
    a.req(&create("/mine", b"", 1));
    let (sid, pw) = (a.session, a.passwd.clone());
    // A wrong password is refused...
    let mut wrong = pw.clone();
    wrong[0] ^= 1;
    let r = Client::attach(s.addr, sid, wrong, 2000).unwrap();
    assert_eq!(r.session, 0);
    // ...and the right one takes the session over, closing the old connection.
    let mut b = Client::attach(s.addr, sid, pw, 2000).unwrap();
    assert_eq!(b.session, sid);
    assert!(a.closed_within(Duration::from_secs(2)));
    drop(a);
    let (h, _) = b.req(&exists("/mine", false));
    assert_eq!(h.err, 0, "the ephemeral is still there");
}

#[test]
fn a_client_ahead_of_the_server_is_turned_away_without_a_reply() {
    let s = Server::start(&[]);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 1 << 40,
        timeout: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    assert!(Client::attach_with(s.addr, req).is_none());
}

#[test]
fn old_clients_without_the_read_only_byte_get_none_back() {
    let s = Server::start(&[]);
    let mut sock = Client::raw(s.addr);
    let mut req = Vec::new();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: None,
    }
    .encode(&mut req);
    let mut framed = (req.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&req);
    sock.write_all(&framed).unwrap();
    let mut len = [0u8; 4];
    std::io::Read::read_exact(&mut sock, &mut len).unwrap();
    assert_eq!(i32::from_be_bytes(len), 36);
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let s = Server::start(&[("tickTime", "100"), ("initLimit", "5")]);
    let mut c = Client::attach(s.addr, 0, vec![0; 16], 1000).unwrap();
    let mut silent = Client::raw(s.addr);
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    let t = Instant::now();
    let r = std::io::Read::read(&mut silent, &mut b);
    assert!(matches!(r, Ok(0)) || r.is_err());
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "silent connection held for {:?}",
        t.elapsed()
    );
    let (h, _) = c.req(&exists("/", false));
    assert_eq!(h.err, 0);
}

/// Whether the server closes a new connection before it says anything.
fn closed_at_once(addr: std::net::SocketAddr) -> bool {
    let mut sock = Client::raw(addr);
    let mut buf = [0u8; 1];
    let r = std::io::Read::read(&mut sock, &mut buf);
    matches!(r, Ok(0)) || r.is_err()
}

#[test]
fn max_client_connections_per_address() {
    let s = Server::start(&[("maxClientCnxns", "2")]);
    let _a = Client::connect(s.addr);
    let _b = Client::connect(s.addr);
    assert!(
        closed_at_once(s.addr),
        "a third connection from one address is refused"
    );
}

#[test]
fn four_letter_words() {
    let s = Server::start(&[]);
    assert_eq!(s.four("ruok"), "imok");
    assert_eq!(s.four("isro"), "rw");
    let srvr = s.four("srvr");
    assert!(
        srvr.starts_with("Zookeeper version: 3.8.0-paddock-"),
        "{srvr}"
    );
    assert!(
        srvr.contains("Mode: standalone\n") && srvr.contains("Node count: 5\n"),
        "{srvr}"
    );
    let mntr = s.four("mntr");
    let first: Vec<&str> = mntr.lines().take(2).collect();
    assert!(first[0].starts_with("zk_version\t3.8.0"), "{mntr}");
    assert_eq!(first[1], "zk_server_state\tstandalone");
    assert!(s.four("envi").contains("zookeeper.version=3.8.0-paddock"));
    let mut c = Client::connect(s.addr);
    let mut ev = Vec::new();
    c.call(&exists("/x", true), &mut ev);
    assert!(s.four("wchs").contains("Total watches:1"));
    assert!(s.four("wchc").contains(&format!("0x{:x}\n\t/x", c.session)));
    assert!(s.four("cons").contains(&format!("sid=0x{:x}", c.session)));
    let limited = Server::start(&[("4lw.commands.whitelist", "srvr")]);
    assert_eq!(
        limited.four("ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
}

#[test]
fn close_session_deletes_ephemerals_and_closes() {
    let s = Server::start(&[]);
    let mut a = Client::connect(s.addr);
    a.req(&create("/e", b"", 1));
    let mut b = Client::connect(s.addr);
    let mut ev = Vec::new();
    b.call(&exists("/e", true), &mut ev);
    let (h, _) = a.req(&Request::CloseSession);
    assert_eq!(h.err, 0);
    assert!(a.closed_within(Duration::from_secs(2)));
    let Some(Frame::Event(e)) = b.next() else {
        panic!()
    };
    assert_eq!((e.event_type, e.path.as_str()), (event::NODE_DELETED, "/e"));
}

#[test]
fn a_session_cannot_be_taken_over_by_knowing_its_id() {
    let dir = std::env::temp_dir().join(format!("paddock-test-takeover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Server::free_port();
    // snapCount=2: the session is in a snapshot as well as in the log when the server restarts.
    let s = Server::start_in(&dir, port, &[("snapCount", "2")]);
    let mut owner = Client::attach(s.addr, 0, vec![0; 16], 30_000).unwrap();
    owner.req(&create("/owned", b"", 1));
    for i in 0..4 {
        owner.req(&create(&format!("/filler{i}"), b"", 0));
    }
    // ZooKeeper's derivation from the id: what anyone who reads the ephemeral's owner could
    // compute. New sessions have random passwords instead.
    let derived = paddock_server::session::java_password(owner.session).to_vec();
    assert_ne!(owner.passwd, derived);
    let thief = Client::attach(s.addr, owner.session, derived.clone(), 30_000).unwrap();
    assert_eq!((thief.session, thief.timeout), (0, 0), "refused as expired");
    // The refusal touched neither the session nor its connection.
    assert!(!owner.closed_within(Duration::from_millis(300)));
    let (h, _) = owner.req(&exists("/owned", false));
    assert_eq!(h.err, 0);
    // The random password is durable: after a restart the derived one is still refused and
    // the real one resumes the session.
    let (sid, pw) = (owner.session, owner.passwd.clone());
    drop(owner);
    drop(s);
    let s = Server::start_in(&dir, port, &[("snapCount", "2")]);
    let thief = Client::attach(s.addr, sid, derived, 30_000).unwrap();
    assert_eq!(thief.session, 0);
    let mut back = Client::attach(s.addr, sid, pw.clone(), 30_000).unwrap();
    assert_eq!((back.session, back.passwd.clone()), (sid, pw));
    let (h, _) = back.req(&exists("/owned", false));
    assert_eq!(h.err, 0, "the ephemeral is still there");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn derived_session_passwords_on_request() {
    let s = Server::start(&[("sessionPasswords", "derived")]);
    let c = Client::connect(s.addr);
    assert_eq!(
        c.passwd,
        paddock_server::session::java_password(c.session).to_vec()
    );
    let again = Client::attach(s.addr, c.session, c.passwd.clone(), 30_000).unwrap();
    assert_eq!(again.session, c.session);
}

#[test]
fn max_connections_in_all() {
    let s = Server::start(&[("maxCnxns", "2"), ("maxClientCnxns", "0")]);
    let _a = Client::connect(s.addr);
    let _b = Client::connect(s.addr);
    assert!(
        closed_at_once(s.addr),
        "a third connection to the server is refused"
    );
    drop(_a);
    // Once one goes, a new one is taken.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if Client::attach(s.addr, 0, vec![0; 16], 30_000).is_some_and(|c| c.session != 0) {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot is reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}
