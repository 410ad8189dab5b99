//! What the core writes to the audit log: client writes with their outcome, as ZooKeeper's
//! FinalRequestProcessor audits them on the server the client is connected to, and the
//! ephemeral nodes a closed or expired session takes with it.

use super::Core;
use crate::audit::{acl_string, Event, Outcome as Result_};
use crate::conn_shared::ConnId;
use paddock_proto::{Create, CreateMode, MultiOp, Request};
use paddock_tree::{Applied, AuthInfo, Outcome};

/// ZooKeeper's name of a create mode (`CreateMode.toString().toLowerCase()`).
fn znode_type(flags: i32) -> Option<&'static str> {
    Some(match CreateMode::from_flags(flags)? {
        CreateMode::Persistent => "persistent",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    })
}

/// What a write is audited as: operation, znode, znode_type, acl.
type Described = (
    &'static str,
    Option<String>,
    Option<&'static str>,
    Option<String>,
);

/// A create: the node it made (with its sequence number), else the path asked for.
fn create(c: &Create, outcome: Option<&Outcome>) -> Described {
    let path = match outcome {
        Some(Outcome::Created { path, .. }) => path.clone(),
        _ => c.path.clone(),
    };
    ("create", Some(path), znode_type(c.flags), None)
}

/// The `user` field: each identity by its provider's user name, in the order ZooKeeper's
/// hash set of them gives (digest: the user before the colon; `super` has no provider).
pub(crate) fn users(auth: &AuthInfo) -> String {
    auth.in_java_order()
        .into_iter()
        .filter_map(|id| match id.scheme.as_str() {
            "digest" => Some(id.id.split(':').next().unwrap_or("").to_owned()),
            "ip" | "sasl" | "x509" => Some(id.id.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Core {
    /// Audits a client's write once it is applied.
    pub(crate) fn audit_write(&self, session: i64, conn: ConnId, req: &Request, applied: &Applied) {
        let Some(log) = &self.audit else { return };
        let (user, ip) = match self.conns.get(conn) {
            Some(c) => (users(&c.auth), Some(c.addr.ip().to_string())),
            None => (String::new(), None),
        };
        let record = |(operation, znode, znode_type, acl): Described, outcome| {
            log.record(Event {
                session: Some(session),
                user: user.clone(),
                ip: ip.clone(),
                operation,
                znode,
                znode_type,
                acl,
                outcome,
            })
        };
        let outcome = if applied.result.is_ok() {
            Result_::Success
        } else {
            Result_::Failure
        };
        let single = match req {
            Request::Create(c) => create(c, applied.result.as_ref().ok()),
            Request::Delete(d) => ("delete", Some(d.path.clone()), None, None),
            Request::SetData(s) => ("setData", Some(s.path.clone()), None, None),
            Request::SetAcl(a) => (
                "setAcl",
                Some(a.path.clone()),
                None,
                Some(acl_string(&a.acl)),
            ),
            Request::Multi(ops) => {
                match &applied.result {
                    // A multi that succeeded: each write in it (checks are not audited).
                    Ok(Outcome::Multi(results)) if results.iter().all(|r| r.is_ok()) => {
                        for (op, r) in ops.iter().zip(results) {
                            let d = match op {
                                MultiOp::Create(c) => create(c, r.as_ref().ok()),
                                MultiOp::Delete(d) => ("delete", Some(d.path.clone()), None, None),
                                MultiOp::SetData(s) => {
                                    ("setData", Some(s.path.clone()), None, None)
                                }
                                MultiOp::Check(_) => continue,
                            };
                            record(d, Result_::Success);
                        }
                    }
                    // A failed multi is one line, without a znode.
                    _ => record(("multiOperation", None, None, None), Result_::Failure),
                }
                return;
            }
            Request::CloseSession => return self.audit_session_end(session, applied),
            _ => return,
        };
        record(single, outcome);
    }

    /// Audits the ephemeral nodes a closed or expired session took with it, one line each:
    /// the nodes its close deleted (the transaction may not list them; see `Prep`).
    pub(crate) fn audit_session_end(&self, session: i64, applied: &Applied) {
        let Some(log) = &self.audit else { return };
        let deleted = applied
            .changes
            .iter()
            .filter(|c| c.event_type == paddock_proto::event::NODE_DELETED);
        for c in deleted {
            log.record_server(
                Some(session),
                "ephemeralZNodeDeletionOnSessionCloseOrExpire",
                Some(c.path.clone()),
                Result_::Success,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_proto::Id;

    #[test]
    fn users_by_provider_name_in_java_order() {
        let mut a = AuthInfo::for_ip("127.0.0.1");
        assert_eq!(users(&a), "127.0.0.1");
        a.add(Id::new("digest", paddock_tree::digest_id("bob:x").unwrap()));
        a.add(Id::new("super", ""));
        // ZooKeeper 3.8 printed "bob,127.0.0.1" for `addauth digest bob:x` from 127.0.0.1.
        assert_eq!(users(&a), "bob,127.0.0.1");
        assert_eq!(znode_type(3), Some("ephemeral_sequential"));
        assert_eq!(znode_type(9), None);
    }
}
