//! setquota / listquota / delquota as zkCli 3.8 does them: the client writes
//! /zookeeper/quota/<path>/zookeeper_limits; the server keeps zookeeper_stats up to date.

use super::format::err_line;
use super::out;
use paddock_client::{open_acl, Client, CreateMode, ErrorCode};

const QUOTA: &str = "/zookeeper/quota";

/// The four numbers of a StatsTrack; -1 means unset.
#[derive(Debug, Clone, Copy)]
struct Limits {
    count: i64,
    bytes: i64,
    count_hard: i64,
    bytes_hard: i64,
}

impl Limits {
    fn parse(s: &str) -> Limits {
        let mut l = Limits {
            count: -1,
            bytes: -1,
            count_hard: -1,
            bytes_hard: -1,
        };
        for part in s.split([',', ';']) {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v: i64 = v.trim_end_matches('=').parse().unwrap_or(-1);
            match k {
                "count" => l.count = v,
                "bytes" => l.bytes = v,
                "countHardLimit" => l.count_hard = v,
                "byteHardLimit" => l.bytes_hard = v,
                _ => {}
            }
        }
        l
    }
    /// ZooKeeper 3.8's StatsTrack.toString, odd `=` included.
    fn render(&self) -> String {
        format!(
            "count={},bytes={}=;byteHardLimit={};countHardLimit={}",
            self.count, self.bytes, self.bytes_hard, self.count_hard
        )
    }
}

fn limits_path(p: &str) -> String {
    format!("{QUOTA}{p}/zookeeper_limits")
}

fn stats_path(p: &str) -> String {
    format!("{QUOTA}{p}/zookeeper_stats")
}

async fn read(zk: &Client, p: &str) -> Option<String> {
    zk.get_data(p)
        .await
        .ok()
        .map(|(d, _)| String::from_utf8_lossy(&d).into_owned())
}

pub async fn listquota(zk: &Client, path: &str) {
    let lp = limits_path(path);
    out(&format!("absolute path is {lp}"));
    match read(zk, &lp).await {
        Some(l) => {
            out(&format!("Output quota for {path} {l}"));
            let s = read(zk, &stats_path(path)).await.unwrap_or_default();
            out(&format!("Output stat for {path} {s}"));
        }
        None => out(&format!("quota for {path} does not exist.")),
    }
}

pub async fn setquota(zk: &Client, flag: char, val: i64, path: &str) {
    if path.len() > 1 && path.ends_with('/') || path == "/" {
        out("Path must not end with / character");
        return;
    }
    match zk.exists(path).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            out(&format!("{path} does not exist."));
            return;
        }
        Err(e) => {
            out(&err_line(&e, path));
            return;
        }
    }
    // No quota on an ancestor, nor on a descendant.
    let mut anc = path;
    while anc != "/" {
        anc = paddock_proto::path::parent(anc);
        if anc != "/" && zk.exists(&limits_path(anc)).await.ok().flatten().is_some() {
            out(&format!("{path} has a parent {anc} which has a quota"));
            return;
        }
    }
    let lp = limits_path(path);
    let mut l = match read(zk, &lp).await {
        Some(s) => Limits::parse(&s),
        None => {
            // Create the quota directory chain, then the limits; the server fills in the stats.
            let mut cur = String::from(QUOTA);
            for comp in path.split('/').filter(|c| !c.is_empty()) {
                cur.push('/');
                cur.push_str(comp);
                let _ = zk
                    .create_full(&cur, None, open_acl(), CreateMode::Persistent, -1)
                    .await;
            }
            Limits {
                count: -1,
                bytes: -1,
                count_hard: -1,
                bytes_hard: -1,
            }
        }
    };
    match flag {
        'n' => l.count = val,
        'b' => l.bytes = val,
        'N' => l.count_hard = val,
        _ => l.bytes_hard = val,
    }
    let data = l.render();
    let r = match zk.exists(&lp).await {
        Ok(Some(_)) => zk.set_data(&lp, data.as_bytes(), -1).await.map(|_| ()),
        _ => zk
            .create(&lp, data.as_bytes(), open_acl(), CreateMode::Persistent)
            .await
            .map(|_| ()),
    };
    if let Err(e) = r {
        out(&err_line(&e, path));
        return;
    }
    let sp = stats_path(path);
    if zk.exists(&sp).await.ok().flatten().is_none() {
        let _ = zk
            .create(&sp, b"count=0,bytes=0", open_acl(), CreateMode::Persistent)
            .await;
    }
    if let Some(s) = read(zk, &sp).await {
        let st = Limits::parse(&s);
        if l.count_hard > -1 && l.count_hard < st.count {
            out(&format!(
                "[Warning]: the count quota you create is less than the existing count:{}",
                st.count
            ));
        }
        if l.bytes_hard > -1 && l.bytes_hard < st.bytes {
            out(&format!(
                "[Warning]: the byte quota you create is less than the existing bytes:{}",
                st.bytes
            ));
        }
    }
}

pub async fn delquota(zk: &Client, flag: Option<char>, path: &str) {
    let lp = limits_path(path);
    let Some(s) = read(zk, &lp).await else {
        out(&format!("Quota does not exist for {path}"));
        return;
    };
    let mut l = Limits::parse(&s);
    match flag {
        Some('n') => l.count = -1,
        Some('b') => l.bytes = -1,
        Some('N') => l.count_hard = -1,
        Some('B') => l.bytes_hard = -1,
        _ => {
            // Remove the limits and stats, then every quota directory left empty.
            let _ = zk.delete(&lp, -1).await;
            let _ = zk.delete(&stats_path(path), -1).await;
            let mut cur = format!("{QUOTA}{path}");
            while cur != QUOTA {
                match zk.delete(&cur, -1).await {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                    Err(_) => break,
                }
                cur = paddock_proto::path::parent(&cur).to_string();
            }
            return;
        }
    }
    if let Err(e) = zk.set_data(&lp, l.render().as_bytes(), -1).await {
        out(&err_line(&e, path));
    }
}
