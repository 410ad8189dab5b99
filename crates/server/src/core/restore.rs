//! The AdminServer's `restore` (ZooKeeper 3.9's), made an ensemble-wide write: the leader
//! proposes the backup's whole tree as one transaction, and every server replaces its tree
//! when it applies it, at the same zxid, in log order (paddock_tree::restore says what is kept).
//! ZooKeeper's replaces one server's memory only, and its zxid goes back to the backup's.
//!
//! Between the proposal and its being applied here, writes are prepared against the backup's
//! tree (they are applied after the restore), and the leader takes no other restore.

use super::Core;
use crate::msg::AdminReply;
use paddock_proto::perms;
use paddock_tree::{Applied, DataTree, Outcome, RestoreImage, Txn, TxnOp};
use serde_json::{json, Map};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// The restore in flight on this leader.
struct InFlight {
    zxid: i64,
    /// The backup's tree, which writes prepared meanwhile are checked against.
    base: Box<crate::msg::LoadedTree>,
    reply: oneshot::Sender<AdminReply>,
}

/// An online restore this leader proposed and has not applied yet, if any.
#[derive(Default)]
pub(crate) struct Pending(Option<InFlight>);

impl Pending {
    /// The tree a write prepared now must be checked against: the backup's while a restore is
    /// on its way, the tree otherwise.
    pub fn prep_base<'a>(&'a self, tree: &'a DataTree) -> &'a DataTree {
        self.0.as_ref().map_or(tree, |r| &r.base.0)
    }

    pub fn in_flight(&self) -> bool {
        self.0.is_some()
    }

    /// The leadership is gone before the restore was applied here: whether it was committed
    /// is not known to this server. The caller is told so.
    pub fn lost(&mut self) {
        if let Some(r) = self.0.take() {
            warn!(
                zxid = format_args!("0x{:x}", r.zxid),
                "leadership lost with a restore in flight"
            );
            let _ = r.reply.send(reply(
                503,
                "leadership changed before the restore was applied here: it may or may not have \
                 been committed; compare `hash` or the tree with the backup before trying again",
            ));
        }
    }
}

fn reply(status: u16, error: &str) -> AdminReply {
    let mut body = Map::new();
    body.insert("command".into(), json!("restore"));
    body.insert("error".into(), json!(error));
    AdminReply { status, body }
}

impl Core {
    /// Why this server cannot take a restore from this caller now, if it cannot: the caller
    /// needs ALL on `/`; only the leader takes one, one at a time.
    pub(crate) fn restore_refusal(&self, auth: &paddock_tree::AuthInfo) -> Option<AdminReply> {
        if !self.root_grants(auth, perms::ALL) {
            return Some(reply(
                403,
                "a restore needs an identity with ALL permissions on / (an Authorization: \
                 digest user:password header, a client certificate, or super)",
            ));
        }
        if !self.serving() || !self.replica.is_leader() {
            let leader = self.replica.node.leader();
            return Some(reply(
                421,
                &match leader {
                    Some(l) if !self.replica.is_leader() => format!(
                        "only the leader takes a restore, and this server follows server {l}: \
                         send it to that server's AdminServer"
                    ),
                    _ => "only the leader takes a restore, and this server is not leading now"
                        .to_owned(),
                },
            ));
        }
        if self.restore.in_flight() {
            return Some(reply(409, "another restore is on its way"));
        }
        None
    }

    /// Proposes a restore of `image` (`base` is the same tree, loaded): answered on `reply`
    /// once applied here.
    pub(crate) fn start_restore(
        &mut self,
        auth: &paddock_tree::AuthInfo,
        image: Box<RestoreImage>,
        base: Box<crate::msg::LoadedTree>,
        reply_to: oneshot::Sender<AdminReply>,
    ) {
        if let Some(r) = self.restore_refusal(auth) {
            let _ = reply_to.send(r);
            return;
        }
        let Some(at) = self.stamp() else {
            let _ = reply_to.send(reply(421, "this server is not leading now"));
            return;
        };
        info!(
            zxid = format_args!("0x{:x}", at.zxid),
            backup_zxid = format_args!("0x{:x}", image.zxid),
            nodes = image.nodes.len(),
            "proposing a restore"
        );
        let txn = Txn {
            session_id: 0,
            cxid: 0,
            zxid: at.zxid,
            time: at.time,
            op: TxnOp::Restore(image),
        };
        // What was prepared so far is checked against the tree the restore replaces: what
        // follows is checked against the backup's.
        self.prep.reset();
        self.restore.0 = Some(InFlight {
            zxid: at.zxid,
            base,
            reply: reply_to,
        });
        self.await_reply(txn.zxid, super::order::Origin::Internal, None);
        self.propose(txn);
    }

    /// Applies a restore in place of `DataTree::apply`: the tree is replaced, and what
    /// differs at watched paths is reported as the transaction's changes (`Core::apply` then
    /// goes on as for any transaction). The sessions of both trees go on. An image that is not
    /// a tree (every server finds so) changes nothing but the tree's zxid, as a failed
    /// transaction.
    pub(crate) fn apply_restore(&mut self, txn: &Txn, image: &RestoreImage) -> Applied {
        let mut new = match self.tree.restored(image) {
            Ok(t) => t,
            Err(e) => {
                error!(zxid = format_args!("0x{:x}", txn.zxid), error = ?e,
                    "a restore's image is not a tree: nothing restored");
                if let Some(r) = self.restore.0.take_if(|r| r.zxid == txn.zxid) {
                    let _ = r.reply.send(reply(400, "the backup is not a tree"));
                }
                self.tree.finish_restore(txn.zxid);
                return Applied {
                    result: Err(e),
                    changes: Vec::new(),
                };
            }
        };
        new.finish_restore(txn.zxid);
        let changes = self.tree.restore_changes(&new, &self.watches.lock());
        let nodes = new.node_count();
        let old = self.tree.replace(new);
        // Freeing a large tree walks all of it: not on the core task.
        tokio::task::spawn_blocking(move || drop(old));
        self.publish_config();
        self.rebuild_sessions();
        // The tree is on disk as of now (the log holds it whole).
        self.snapshots.schedule.restart();
        info!(
            zxid = format_args!("0x{:x}", txn.zxid),
            backup_zxid = format_args!("0x{:x}", image.zxid),
            nodes,
            sessions = self.tree.sessions().len(),
            watches_fired = changes.len(),
            "restored the tree from a backup"
        );
        if let Some(r) = self.restore.0.take_if(|r| r.zxid == txn.zxid) {
            let mut body = Map::new();
            body.insert("command".into(), json!("restore"));
            body.insert("last_zxid".into(), json!(txn.zxid));
            body.insert("restored_zxid".into(), json!(image.zxid));
            body.insert("node_count".into(), json!(nodes));
            body.insert("error".into(), serde_json::Value::Null);
            let _ = r.reply.send(AdminReply { status: 200, body });
        }
        Applied {
            result: Ok(Outcome::Done),
            changes,
        }
    }
}
