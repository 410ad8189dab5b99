//! The audit log (`audit.enable=true`): one line per audited event in ZooKeeper's format, so
//! the tools that read ZooKeeper's audit log (Filebeat's zookeeper module, grep) read Paddock's.
//!
//! A line is the timestamp, the level (`INFO`, or `ERROR` for a failure, as ZooKeeper's
//! Slf4jAuditLogger logs them), the logger and tab-separated `key=value` pairs:
//! `session`, `user` (every identity of the session, by its provider's user name), `ip`,
//! `operation`, `znode`, `znode_type`, `acl` (setAcl), `result` (success, failure, invoked).
//!
//! The core hands events to a thread of their own, which writes them in batches, each batch
//! appended and then flushed to disk (fdatasync): under load a batch holds many lines, and a
//! crash loses at most the batch being written. The file is rotated by size
//! (`audit.maxFileSize`, `audit.maxBackupIndex`), as ZooKeeper's log4j configuration rotates it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;
use tracing::{error, warn};

/// Where the audit log goes and how it rotates.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub file: PathBuf,
    /// Rotate once the file reaches this many bytes.
    pub max_file_size: u64,
    /// Rotated files kept (`<file>.1` is the newest).
    pub max_backups: u32,
}

/// The result of an audited event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// serverStop: logged before the server has stopped.
    Invoked,
}

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub session: Option<i64>,
    pub user: String,
    pub ip: Option<String>,
    pub operation: &'static str,
    pub znode: Option<String>,
    pub znode_type: Option<&'static str>,
    pub acl: Option<String>,
    pub outcome: Outcome,
}

impl Event {
    /// The pairs of the line, in ZooKeeper's order.
    pub fn fields(&self) -> String {
        let mut out = String::new();
        let mut put = |k: &str, v: &str| {
            if !out.is_empty() {
                out.push('\t');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        };
        if let Some(s) = self.session {
            put("session", &format!("0x{s:x}"));
        }
        put("user", &self.user);
        if let Some(ip) = &self.ip {
            put("ip", ip);
        }
        put("operation", self.operation);
        if let Some(z) = &self.znode {
            put("znode", z);
        }
        if let Some(t) = self.znode_type {
            put("znode_type", t);
        }
        if let Some(a) = &self.acl {
            put("acl", a);
        }
        put(
            "result",
            match self.outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
                Outcome::Invoked => "invoked",
            },
        );
        out
    }

    fn line(&self, now: time::OffsetDateTime) -> String {
        let level = if self.outcome == Outcome::Failure {
            "ERROR"
        } else {
            "INFO"
        };
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03} {level} audit.Slf4jAuditLogger: {}\n",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond(),
            self.fields()
        )
    }
}

/// The name of the user the server runs as (ZooKeeper's `user` for server events).
fn server_user() -> String {
    // SAFETY: getpwuid returns null or a pointer to a static record valid until the next
    // call; it is read at once, on this thread.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr((*pw).pw_name).to_str() {
                return name.to_owned();
            }
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

enum Msg {
    Event(Event),
    /// Write everything before this, then answer.
    Flush(mpsc::Sender<()>),
}

/// The handle the server records events through.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    /// The user the server runs as, looked up once: the `user` of the server's own events.
    user: std::sync::Arc<str>,
}

impl AuditLog {
    /// Opens (appends to) the file and starts the writer thread.
    pub fn start(cfg: AuditConfig) -> std::io::Result<AuditLog> {
        let file = open(&cfg.file)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || Writer { cfg, file }.run(rx))?;
        Ok(AuditLog {
            tx,
            user: server_user().into(),
        })
    }

    pub fn record(&self, e: Event) {
        let _ = self.tx.send(Msg::Event(e));
    }

    /// Records an event of the server's own (serverStart, serverStop, an ephemeral deleted
    /// with its session): its user is the one the server runs as, and it has no client address.
    pub fn record_server(
        &self,
        session: Option<i64>,
        operation: &'static str,
        znode: Option<String>,
        outcome: Outcome,
    ) {
        self.record(Event {
            session,
            user: self.user.to_string(),
            ip: None,
            operation,
            znode,
            znode_type: None,
            acl: None,
            outcome,
        });
    }

    /// Waits until every event recorded so far is on disk (at most `timeout`).
    pub fn flush(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

struct Writer {
    cfg: AuditConfig,
    file: File,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut buf = String::new();
        while let Ok(first) = rx.recv() {
            let mut waiting = Vec::new();
            let mut next = Some(first);
            // One batch: everything queued now, written and synced together.
            while let Some(m) = next {
                match m {
                    Msg::Event(e) => buf.push_str(&e.line(time::OffsetDateTime::now_utc())),
                    Msg::Flush(done) => waiting.push(done),
                }
                next = if buf.len() < 1 << 20 {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !buf.is_empty() {
                if let Err(e) = self.write(buf.as_bytes()) {
                    error!(file = %self.cfg.file.display(), error = %e, "cannot write the audit log");
                }
                buf.clear();
            }
            for w in waiting {
                let _ = w.send(());
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.metadata()?.len() >= self.cfg.max_file_size {
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }

    /// `<file>` becomes `<file>.1`, `.1` becomes `.2`, ...; the oldest beyond the limit goes.
    fn rotate(&mut self) -> std::io::Result<()> {
        let name = |i: u32| {
            let mut p = self.cfg.file.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.cfg.max_backups == 0 {
            std::fs::remove_file(&self.cfg.file)?;
        } else {
            let _ = std::fs::remove_file(name(self.cfg.max_backups));
            for i in (1..self.cfg.max_backups).rev() {
                if name(i).exists() {
                    std::fs::rename(name(i), name(i + 1))?;
                }
            }
            std::fs::rename(&self.cfg.file, name(1))?;
        }
        self.file = open(&self.cfg.file).inspect_err(|e| {
            warn!(file = %self.cfg.file.display(), error = %e, "cannot reopen the audit log after rotating it");
        })?;
        Ok(())
    }
}

/// ZooKeeper's string of a permission set (ZKUtil.getPermString): c, d, r, w, a.
pub fn perm_string(perms: i32) -> String {
    use paddock_proto::perms as p;
    [
        (p::CREATE, 'c'),
        (p::DELETE, 'd'),
        (p::READ, 'r'),
        (p::WRITE, 'w'),
        (p::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| perms & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// An ACL as ZooKeeper's audit log writes it: each entry `scheme:id:perms`, with nothing
/// between entries (ZooKeeper's own format, kept so lines compare equal).
pub fn acl_string(acl: &[paddock_proto::Acl]) -> String {
    acl.iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, perm_string(a.perms)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(outcome: Outcome) -> Event {
        Event {
            session: Some(0x1000179995c0000),
            user: "bob,127.0.0.1".into(),
            ip: Some("127.0.0.1".into()),
            operation: "create",
            znode: Some("/e20000000001".into()),
            znode_type: Some("ephemeral_sequential"),
            acl: None,
            outcome,
        }
    }

    #[test]
    fn lines_as_zookeeper_writes_them() {
        assert_eq!(
            ev(Outcome::Success).fields(),
            "session=0x1000179995c0000\tuser=bob,127.0.0.1\tip=127.0.0.1\toperation=create\t\
             znode=/e20000000001\tznode_type=ephemeral_sequential\tresult=success"
        );
        let t = time::OffsetDateTime::from_unix_timestamp(1_796_564_254).unwrap();
        let line = ev(Outcome::Failure).line(t);
        assert!(line.starts_with("2026-12-06 13:37:34,000 "), "{line}");
        assert!(
            line.contains(" ERROR audit.Slf4jAuditLogger: session="),
            "{line}"
        );
        let stop = Event {
            session: None,
            user: "root".into(),
            ip: None,
            operation: "serverStop",
            znode: None,
            znode_type: None,
            acl: None,
            outcome: Outcome::Invoked,
        };
        assert_eq!(
            stop.fields(),
            "user=root\toperation=serverStop\tresult=invoked"
        );
        let acl = [
            paddock_proto::Acl::new(3, "world", "anyone"),
            paddock_proto::Acl::new(31, "ip", "127.0.0.1"),
        ];
        assert_eq!(acl_string(&acl), "world:anyone:rwip:127.0.0.1:cdrwa");
    }

    #[test]
    fn appends_in_batches_and_rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("paddock-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("audit.log");
        let log = AuditLog::start(AuditConfig {
            file: file.clone(),
            max_file_size: 2000,
            max_backups: 2,
        })
        .unwrap();
        for _ in 0..100 {
            log.record(ev(Outcome::Success));
        }
        log.flush(Duration::from_secs(5));
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let first = lines(&file);
        assert_eq!(first, 100, "one batch is written whole");
        for _ in 0..3 {
            log.record(ev(Outcome::Success));
            log.flush(Duration::from_secs(5));
        }
        let mut one = file.clone().into_os_string();
        one.push(".1");
        assert_eq!(lines(Path::new(&one)), 100, "the full file rotated to .1");
        assert_eq!(lines(&file), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
