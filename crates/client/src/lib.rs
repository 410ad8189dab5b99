//! An async (tokio) ZooKeeper client for Paddock and Apache ZooKeeper.
//!
//! Requests are pipelined over one connection by a session task; every call returns a typed
//! [`Error`] (one `ErrorCode` per KeeperException code). On a lost connection pending requests
//! fail with CONNECTIONLOSS (nothing is resent) and the session reconnects to the next host of
//! the shuffled host list, replaying auth and restoring watches with setWatches2.
//!
//! ```no_run
//! # async fn demo() -> Result<(), paddock_client::Error> {
//! use paddock_client::{open_acl, Client, CreateMode};
//! let zk = Client::connect("127.0.0.1:2181/app", std::time::Duration::from_secs(10)).await?;
//! zk.create("/x", b"hi", open_acl(), CreateMode::Persistent).await?;
//! let (data, stat, watch) = zk.get_data_w("/x").await?;
//! zk.set_data("/x", b"ho", stat.version).await?;
//! let event = watch.changed().await;
//! # Ok(()) }
//! ```

mod depot;
pub mod error;
mod hosts;
pub mod paging;
pub mod sasl;
pub mod session;
pub mod tls;
pub mod watch;

pub use error::{Error, Result};
pub use paddock_proto::{Acl, CreateMode, ErrorCode, Id, OpResult, Stat};
pub use paging::{ChildrenPage, Listing};
pub use sasl::SaslOptions;
pub use session::{SessionEvent, SessionState};
pub use tls::TlsOptions;
pub use watch::{OneshotWatch, PersistentWatch, WatchedEvent};

use depot::RawReply;
use paddock_proto::jute::Field;
use paddock_proto::request::{Create, CreateKind, MultiOp, ReadOp, Request};
use paddock_proto::{
    add_watch_mode, decode_multi_response, op, perms, AddWatchRequest, CheckVersionRequest,
    ClientInfo, DeleteRequest, GetAclResponse, PathRequest, PathWatchRequest, Reader, Record,
    SetAclRequest, SetDataRequest, WatchesRequest,
};
use session::{Command, Config, Session, Shared};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch as tokio_watch};
use watch::{PendingWatch, WatchKind};

/// The `world:anyone` ACL with every permission (Java's `OPEN_ACL_UNSAFE`).
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// One operation of a [`Client::multi`] transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create `path` with data, ACL and mode (TTL modes take `ttl`).
    Create {
        path: String,
        data: Vec<u8>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: i64,
    },
    /// Delete `path` at `version` (-1: any).
    Delete { path: String, version: i32 },
    /// Set data at `version` (-1: any).
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    /// Fail the transaction unless `path` is at `version`.
    Check { path: String, version: i32 },
}

/// One read of a [`Client::multi_read`].
#[derive(Debug, Clone)]
pub enum ReadOpKind {
    /// getChildren.
    GetChildren(String),
    /// getData.
    GetData(String),
}

/// Which watches [`Client::remove_watches`] removes (Java's `WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherType {
    /// Child watches.
    Children = 1,
    /// Data and exist watches.
    Data = 2,
    /// Every kind.
    Any = 3,
    /// Persistent watches.
    Persistent = 4,
    /// Persistent recursive watches.
    PersistentRecursive = 5,
}

/// Builder for a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    session_timeout: Duration,
    read_only: bool,
    shuffle: bool,
    session: Option<(i64, Vec<u8>)>,
    tls: Option<tokio_rustls::TlsConnector>,
    sasl: Option<SaslOptions>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("session_timeout", &self.session_timeout)
            .field("read_only", &self.read_only)
            .field("shuffle", &self.shuffle)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            session_timeout: Duration::from_secs(30),
            read_only: false,
            shuffle: true,
            session: None,
            tls: None,
            sasl: None,
        }
    }
}

impl ClientBuilder {
    /// Requested session timeout (the server clamps it to 2..20 ticks).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }
    /// Accept read-only servers (`ConnectedReadOnly`).
    pub fn read_only(mut self, ro: bool) -> Self {
        self.read_only = ro;
        self
    }
    /// Shuffle the host list (default, as ZooKeeper's client does); off for tests that need
    /// a known order.
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }

    /// Speaks TLS to the servers (build the connector with [`TlsOptions::connector`]).
    pub fn tls(mut self, connector: tokio_rustls::TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// Authenticates every connection with SASL DIGEST-MD5 before anything else.
    pub fn sasl(mut self, options: SaslOptions) -> Self {
        self.sasl = Some(options);
        self
    }

    /// Resume an existing session (id and password from another client) instead of creating one.
    pub fn session(mut self, id: i64, passwd: Vec<u8>) -> Self {
        self.session = Some((id, passwd));
        self
    }

    /// Starts the session task without waiting for a server. `connect` is
    /// `host:port[,host:port...][/chroot]`.
    pub fn start(self, connect: &str) -> Result<Client> {
        let parsed = hosts::parse(connect, self.shuffle)?;
        let (state_tx, state_rx) = tokio_watch::channel(SessionState::Connecting);
        let (events_tx, events_rx) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            state: state_tx,
            events: events_tx,
            info: Mutex::new(Default::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let cfg = Config {
            hosts: parsed.hosts,
            session_timeout: self.session_timeout,
            chroot: parsed.chroot.clone(),
            read_only: self.read_only,
            session: self.session,
            tls: self.tls,
            sasl: self.sasl,
        };
        tokio::spawn(Session::new(cfg, shared.clone(), rx).run());
        Ok(Client {
            inner: Arc::new(Inner {
                tx,
                shared,
                state: state_rx,
                chroot: parsed.chroot,
                first_events: Mutex::new(Some(events_rx)),
            }),
            linearizable: false,
        })
    }

    /// Starts the session and waits until it is connected, or fails after `session_timeout`.
    pub async fn connect(self, connect: &str) -> Result<Client> {
        let wait = self.session_timeout;
        let c = self.start(connect)?;
        c.wait_connected(wait).await?;
        Ok(c)
    }
}

struct Inner {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    state: tokio_watch::Receiver<SessionState>,
    chroot: Option<String>,
    first_events: Mutex<Option<broadcast::Receiver<SessionEvent>>>,
}

/// A ZooKeeper session. Cheap to clone; the session closes when the last clone is dropped or
/// on [`Client::close`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Reads through this handle are linearizable (`Client::linearizable`).
    linearizable: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Client(session 0x{:x}, {:?})",
            self.session_id(),
            self.state()
        )
    }
}

/// The value of the Java system property `key` among `props` (the last one given wins).
pub(crate) fn property<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|(p, _)| p == key)
        .map(|(_, v)| v.as_str())
}

fn decode<T: Record>(r: &RawReply) -> Result<T> {
    Ok(T::decode(&mut Reader::new(&r.body))?)
}

impl Client {
    /// Connects with the default settings (see [`ClientBuilder`]) and the given session timeout.
    pub async fn connect(connect: &str, session_timeout: Duration) -> Result<Client> {
        ClientBuilder::default()
            .session_timeout(session_timeout)
            .connect(connect)
            .await
    }

    /// A builder for other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The current session state.
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// A receiver of the state as it changes (always holds the latest).
    pub fn state_watcher(&self) -> tokio_watch::Receiver<SessionState> {
        self.inner.state.clone()
    }

    /// Session events. The first call gets every event since the start (including the first
    /// `Connected`); later calls get events from now on.
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        match self.inner.first_events.lock().expect("events lock").take() {
            Some(rx) => rx,
            None => self.inner.shared.events.subscribe(),
        }
    }

    /// The session id (0 before the first connection).
    pub fn session_id(&self) -> i64 {
        self.inner.shared.info.lock().expect("info lock").id
    }

    /// The session password the server gave.
    pub fn session_passwd(&self) -> Vec<u8> {
        self.inner
            .shared
            .info
            .lock()
            .expect("info lock")
            .passwd
            .clone()
    }

    /// The negotiated session timeout in milliseconds.
    pub fn negotiated_timeout_ms(&self) -> i32 {
        self.inner.shared.info.lock().expect("info lock").timeout_ms
    }

    /// The host the session is (or was last) connected to.
    pub fn current_server(&self) -> Option<String> {
        self.inner
            .shared
            .info
            .lock()
            .expect("info lock")
            .server
            .clone()
    }

    /// Waits until connected; fails with the terminal state's error or `Error::Timeout`.
    pub async fn wait_connected(&self, within: Duration) -> Result<()> {
        let mut rx = self.inner.state.clone();
        let fut = async {
            loop {
                let s = *rx.borrow_and_update();
                if s.is_connected() {
                    return Ok(());
                }
                if s.is_terminal() {
                    return Err(terminal_error(s));
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        tokio::time::timeout(within, fut)
            .await
            .map_err(|_| Error::Timeout)?
    }

    fn server_path(&self, path: &str) -> Result<String> {
        paddock_proto::path::validate(path)
            .map_err(|e| Error::BadPath(path.to_string(), e.to_string()))?;
        Ok(match &self.inner.chroot {
            Some(c) if path == "/" => c.clone(),
            Some(c) => format!("{c}{path}"),
            None => path.to_string(),
        })
    }

    fn client_path(&self, p: &str) -> String {
        session::strip_chroot(&self.inner.chroot, p)
    }

    /// A handle on the same session whose reads (exists, getData, getChildren, getACL, ...) are
    /// linearizable: each sees every write acknowledged to any client before it was sent.
    /// Writes through it are unchanged. A Paddock server answers each read after a sync of
    /// its own (one wrapped request, `op::LINEARIZABLE`); to a server that does not know it
    /// (ZooKeeper) the handle sends a `sync` on the read's path, then the read.
    ///
    /// ```no_run
    /// # async fn demo(zk: paddock_client::Client) -> paddock_client::Result<()> {
    /// let (data, stat) = zk.linearizable().get_data("/config").await?;
    /// # Ok(()) }
    /// ```
    pub fn linearizable(&self) -> Client {
        Client {
            inner: self.inner.clone(),
            linearizable: true,
        }
    }

    async fn call(
        &self,
        req: Request,
        path: String,
        watch: Option<PendingWatch>,
    ) -> Result<RawReply> {
        let mut body = Vec::new();
        req.encode_body(&mut body);
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Request {
            opcode: req.opcode(),
            body,
            path,
            watch,
            reply,
            linearizable: self.linearizable && req.reads_tree(),
        };
        // The session task is gone (its runtime shut down, or it ended) when either channel
        // is: the session can never serve again, whatever state it last reported.
        if self.inner.tx.send(cmd).is_err() {
            return Err(gone_error(self.state()));
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(gone_error(self.state())),
        }
    }

    async fn call_ok(
        &self,
        req: Request,
        path: String,
        watch: Option<PendingWatch>,
    ) -> Result<RawReply> {
        let r = self.call(req, path, watch).await?;
        if r.err != 0 {
            return Err(Error::from_code(r.err));
        }
        Ok(r)
    }

    /// Creates a node; returns its actual path (sequential suffix included) and its Stat.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.create_ttl(path, data, acl, mode, -1).await
    }

    /// Creates a node, with a TTL in milliseconds for the TTL modes.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: i64,
    ) -> Result<(String, Stat)> {
        self.create_full(path, Some(data), acl, mode, ttl).await
    }

    /// Creates a node whose data may be null (`None`, as Java's `create(path, null, ...)`).
    pub async fn create_full(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: i64,
    ) -> Result<(String, Stat)> {
        let sp = self.server_path_seq(path, mode)?;
        let mut c = make_create(sp.clone(), &[], acl, mode, ttl);
        c.data = data.map(<[u8]>::to_vec);
        let r = self.call_ok(Request::Create(c), sp, None).await?;
        let rd = &mut Reader::new(&r.body);
        let p = rd.read_string()?;
        let stat = Stat::decode(rd)?;
        Ok((self.client_path(&p), stat))
    }

    fn server_path_seq(&self, path: &str, mode: CreateMode) -> Result<String> {
        // A sequential node may end in '/': the server appends the counter.
        if mode.is_sequential() && path.ends_with('/') && path.len() > 1 {
            let base = self.server_path(&path[..path.len() - 1])?;
            return Ok(format!("{base}/"));
        }
        self.server_path(path)
    }

    /// Deletes a node at `version` (-1: any version).
    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        let sp = self.server_path(path)?;
        self.call_ok(
            Request::Delete(DeleteRequest {
                path: sp.clone(),
                version,
            }),
            sp,
            None,
        )
        .await?;
        Ok(())
    }

    async fn exists_inner(&self, path: &str, w: Option<PendingWatch>) -> Result<Option<Stat>> {
        let sp = self.server_path(path)?;
        let watch = w.is_some();
        let r = self
            .call(
                Request::Exists(PathWatchRequest {
                    path: sp.clone(),
                    watch,
                }),
                sp,
                w,
            )
            .await?;
        match r.err {
            0 => Ok(Some(Stat::decode(&mut Reader::new(&r.body))?)),
            e if e == ErrorCode::NoNode.code() => Ok(None),
            e => Err(Error::from_code(e)),
        }
    }

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_inner(path, None).await
    }

    /// `exists` with a watch: fires on create, data change or delete.
    pub async fn exists_w(&self, path: &str) -> Result<(Option<Stat>, OneshotWatch)> {
        let (tx, rx) = oneshot::channel();
        let s = self
            .exists_inner(path, Some(PendingWatch::Oneshot(WatchKind::Exist, tx)))
            .await?;
        Ok((s, OneshotWatch { rx }))
    }

    async fn get_data_inner(&self, path: &str, w: Option<PendingWatch>) -> Result<(Vec<u8>, Stat)> {
        let (d, s) = self.get_data_opt(path, w).await?;
        Ok((d.unwrap_or_default(), s))
    }

    async fn get_data_opt(
        &self,
        path: &str,
        w: Option<PendingWatch>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        let sp = self.server_path(path)?;
        let watch = w.is_some();
        let req = Request::GetData(PathWatchRequest {
            path: sp.clone(),
            watch,
        });
        let r = self.call_ok(req, sp, w).await?;
        let rd = &mut Reader::new(&r.body);
        let data = Option::<Vec<u8>>::get(rd)?;
        Ok((data, Stat::decode(rd)?))
    }

    /// The node's data, `None` when it is null (created without data), and its Stat.
    pub async fn get_data_raw(&self, path: &str) -> Result<(Option<Vec<u8>>, Stat)> {
        self.get_data_opt(path, None).await
    }

    /// `get_data_raw` with a watch.
    pub async fn get_data_raw_w(
        &self,
        path: &str,
    ) -> Result<(Option<Vec<u8>>, Stat, OneshotWatch)> {
        let (tx, rx) = oneshot::channel();
        let w = Some(PendingWatch::Oneshot(WatchKind::Data, tx));
        let (d, s) = self.get_data_opt(path, w).await?;
        Ok((d, s, OneshotWatch { rx }))
    }

    /// The node's data and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.get_data_inner(path, None).await
    }

    /// `get_data` with a watch: fires on data change or delete.
    pub async fn get_data_w(&self, path: &str) -> Result<(Vec<u8>, Stat, OneshotWatch)> {
        let (tx, rx) = oneshot::channel();
        let (d, s) = self
            .get_data_inner(path, Some(PendingWatch::Oneshot(WatchKind::Data, tx)))
            .await?;
        Ok((d, s, OneshotWatch { rx }))
    }

    /// Sets the data at `version` (-1: any version); returns the new Stat.
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        let sp = self.server_path(path)?;
        let req = SetDataRequest {
            path: sp.clone(),
            data: Some(data.to_vec()),
            version,
        };
        let r = self.call_ok(Request::SetData(req), sp, None).await?;
        decode(&r)
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let sp = self.server_path(path)?;
        let r = self
            .call_ok(Request::GetAcl(PathRequest { path: sp.clone() }), sp, None)
            .await?;
        let g: GetAclResponse = decode(&r)?;
        Ok((g.acl, g.stat))
    }

    /// Sets the ACL at ACL `version` (-1: any); returns the new Stat.
    pub async fn set_acl(&self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Stat> {
        let sp = self.server_path(path)?;
        let r = self
            .call_ok(
                Request::SetAcl(SetAclRequest {
                    path: sp.clone(),
                    acl,
                    version,
                }),
                sp,
                None,
            )
            .await?;
        decode(&r)
    }

    async fn children_inner(
        &self,
        path: &str,
        w: Option<PendingWatch>,
    ) -> Result<(Vec<String>, Stat)> {
        let sp = self.server_path(path)?;
        let watch = w.is_some();
        let r = self
            .call_ok(
                Request::GetChildren2(PathWatchRequest {
                    path: sp.clone(),
                    watch,
                }),
                sp,
                w,
            )
            .await?;
        let rd = &mut Reader::new(&r.body);
        let c = Vec::<String>::get(rd)?;
        Ok((c, Stat::decode(rd)?))
    }

    /// The node's children (names, unsorted as the server sends them).
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        Ok(self.children_inner(path, None).await?.0)
    }

    /// The node's children and its Stat.
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        self.children_inner(path, None).await
    }

    /// `get_children2` with a watch: fires on a child change or delete.
    pub async fn get_children_w(&self, path: &str) -> Result<(Vec<String>, Stat, OneshotWatch)> {
        let (tx, rx) = oneshot::channel();
        let (c, s) = self
            .children_inner(path, Some(PendingWatch::Oneshot(WatchKind::Child, tx)))
            .await?;
        Ok((c, s, OneshotWatch { rx }))
    }

    /// The number of descendants of `path` (not counting itself).
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let sp = self.server_path(path)?;
        let r = self
            .call_ok(
                Request::GetAllChildrenNumber(PathRequest { path: sp.clone() }),
                sp,
                None,
            )
            .await?;
        Ok(Reader::new(&r.body).read_i32()?)
    }

    /// The session's ephemeral nodes under the prefix `path` ("/" for all).
    pub async fn get_ephemerals(&self, path: &str) -> Result<Vec<String>> {
        let sp = self.server_path(path)?;
        let r = self
            .call_ok(
                Request::GetEphemerals(PathRequest { path: sp.clone() }),
                sp,
                None,
            )
            .await?;
        let v = Vec::<String>::get(&mut Reader::new(&r.body))?;
        Ok(v.iter().map(|p| self.client_path(p)).collect())
    }

    /// Waits until the server the session is on has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<String> {
        let sp = self.server_path(path)?;
        let r = self
            .call_ok(Request::Sync(PathRequest { path: sp.clone() }), sp, None)
            .await?;
        Ok(self.client_path(&Reader::new(&r.body).read_string()?))
    }

    /// Runs writes atomically. On failure returns [`Error::Multi`] with every sub-result.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let mut wire = Vec::with_capacity(ops.len());
        for o in ops {
            wire.push(match o {
                Op::Create {
                    path,
                    data,
                    acl,
                    mode,
                    ttl,
                } => {
                    let sp = self.server_path_seq(&path, mode)?;
                    MultiOp::Create(make_create(sp, &data, acl, mode, ttl))
                }
                Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
                    path: self.server_path(&path)?,
                    version,
                }),
                Op::SetData {
                    path,
                    data,
                    version,
                } => MultiOp::SetData(SetDataRequest {
                    path: self.server_path(&path)?,
                    data: Some(data),
                    version,
                }),
                Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                    path: self.server_path(&path)?,
                    version,
                }),
            });
        }
        let r = self.call(Request::Multi(wire), String::new(), None).await?;
        if r.err != 0 && r.body.is_empty() {
            return Err(Error::from_code(r.err));
        }
        let results = self.multi_results(&r)?;
        // The server reports a failed transaction inside the results (the header says OK):
        // sub-ops before the culprit are rolled back (0), after it not attempted (-2), so the
        // first non-zero error is the cause, as ZooKeeper's client reports it.
        let first = results.iter().find_map(|x| match x {
            OpResult::Error(e) if *e != 0 => Some(*e),
            _ => None,
        });
        if let Some(e) = first.or((r.err != 0).then_some(r.err)) {
            let code = ErrorCode::from_code(e).ok_or(Error::UnknownCode(e))?;
            return Err(Error::Multi { code, results });
        }
        Ok(results)
    }

    fn multi_results(&self, r: &RawReply) -> Result<Vec<OpResult>> {
        let mut v = decode_multi_response(&mut Reader::new(&r.body))?;
        for res in &mut v {
            match res {
                OpResult::Create(p) | OpResult::Create2(p, _) => *p = self.client_path(p),
                _ => {}
            }
        }
        Ok(v)
    }

    /// Runs reads in one round trip; each result is its own success or `OpResult::Error`.
    pub async fn multi_read(&self, ops: Vec<ReadOpKind>) -> Result<Vec<OpResult>> {
        let mut wire = Vec::with_capacity(ops.len());
        for o in ops {
            wire.push(match o {
                ReadOpKind::GetChildren(p) => ReadOp::GetChildren(self.server_path(&p)?),
                ReadOpKind::GetData(p) => ReadOp::GetData(self.server_path(&p)?),
            });
        }
        let r = self
            .call_ok(Request::MultiRead(wire), String::new(), None)
            .await?;
        self.multi_results(&r)
    }

    /// Adds a persistent (or persistent recursive) watch; events arrive on the stream until it
    /// is removed or the session ends.
    pub async fn add_watch(&self, path: &str, recursive: bool) -> Result<PersistentWatch> {
        let sp = self.server_path(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (mode, kind) = if recursive {
            (
                add_watch_mode::PERSISTENT_RECURSIVE,
                WatchKind::PersistentRecursive,
            )
        } else {
            (add_watch_mode::PERSISTENT, WatchKind::Persistent)
        };
        let w = PendingWatch::Persistent(kind, tx);
        self.call_ok(
            Request::AddWatch(AddWatchRequest {
                path: sp.clone(),
                mode,
            }),
            sp,
            Some(w),
        )
        .await?;
        Ok(PersistentWatch { rx })
    }

    /// Removes the session's watches of `kind` on `path` at the server, then locally; each
    /// removed watcher gets a *WatchRemoved event.
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let sp = self.server_path(path)?;
        let req = WatchesRequest {
            path: sp.clone(),
            watcher_type: kind as i32,
        };
        let w = PendingWatch::Remove(kind as i32, path.to_string());
        self.call_ok(Request::RemoveWatches(req), sp, Some(w))
            .await?;
        Ok(())
    }

    /// Removes the session's watches of `kind` on `path` locally only (the server keeps them
    /// until they fire); `Err(NoWatcher)` if there was none.
    pub async fn remove_watches_locally(&self, path: &str, kind: WatcherType) -> Result<()> {
        let sp = self.server_path(path)?;
        let (done, rx) = oneshot::channel();
        let c = Command::RemoveLocal {
            path: sp,
            client_path: path.to_string(),
            wtype: kind as i32,
            done,
        };
        self.inner
            .tx
            .send(c)
            .map_err(|_| gone_error(self.state()))?;
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Code(ErrorCode::NoWatcher)),
            Err(_) => Err(gone_error(self.state())),
        }
    }

    /// Adds credentials to the session (e.g. `digest`, `user:pass`). Kept and replayed after a
    /// reconnect; a refusal moves the session to `AuthFailed`.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let c = Command::Auth {
            scheme: scheme.to_string(),
            auth: auth.to_vec(),
        };
        self.inner.tx.send(c).map_err(|_| gone_error(self.state()))
    }

    /// The identities the server attributes to this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let r = self.call_ok(Request::WhoAmI, String::new(), None).await?;
        Ok(Vec::<ClientInfo>::get(&mut Reader::new(&r.body))?)
    }

    /// Dynamic reconfiguration; returns the new config data and its Stat.
    pub async fn reconfig(
        &self,
        joining: &str,
        leaving: &str,
        members: &str,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat)> {
        let req = paddock_proto::ReconfigRequest {
            joining_servers: joining.to_string(),
            leaving_servers: leaving.to_string(),
            new_members: members.to_string(),
            cur_config_id: from_config,
        };
        let r = self
            .call_ok(Request::Reconfig(req), String::new(), None)
            .await?;
        let rd = &mut Reader::new(&r.body);
        let data = Option::<Vec<u8>>::get(rd)?.unwrap_or_default();
        Ok((data, Stat::decode(rd)?))
    }

    /// Closes the session (its ephemerals go at once) and waits for the server's answer.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

fn make_create(path: String, data: &[u8], acl: Vec<Acl>, mode: CreateMode, ttl: i64) -> Create {
    let kind = if mode.is_ttl() {
        CreateKind::Ttl
    } else if mode.is_container() {
        CreateKind::Container
    } else {
        CreateKind::Create2
    };
    Create {
        kind,
        path,
        data: Some(data.to_vec()),
        acl,
        flags: mode as i32,
        ttl: if mode.is_ttl() { ttl } else { -1 },
    }
}

/// The error for a request whose session task is gone: how the session ended, or Closed. Never
/// CONNECTIONLOSS, which tells a caller to wait for a reconnection that cannot come.
fn gone_error(s: SessionState) -> Error {
    match terminal_error(s) {
        Error::Code(ErrorCode::ConnectionLoss) => Error::Closed,
        e => e,
    }
}

fn terminal_error(s: SessionState) -> Error {
    match s {
        SessionState::Expired => Error::Code(ErrorCode::SessionExpired),
        SessionState::AuthFailed => Error::Code(ErrorCode::AuthFailed),
        SessionState::Closed => Error::Closed,
        _ => Error::Code(ErrorCode::ConnectionLoss),
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn s<T: Send + Sync>() {}
    s::<Client>();
    let _ = op::PING;
}
