//! Read operations with ZooKeeper's checks. Watch registration is the caller's: it must happen
//! at the same point in the apply order as the read itself.

use crate::acl::{self, AuthInfo};
use crate::tree::DataTree;
use bytes::{BufMut, BytesMut};
use paddock_proto::{perms, Acl, ErrorCode, Record, Stat};

impl DataTree {
    /// The node at `path` if the caller may read it: NONODE for a missing node, NOAUTH without
    /// READ (every read but getACL, which ADMIN also allows).
    fn readable(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<crate::NodeId, ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(id)
    }

    /// exists: NUL in the path is BADARGUMENTS; a missing node is NONODE; a node the caller may
    /// not read is NOAUTH.
    pub fn exists(&self, path: &str, auth: &AuthInfo, skip_acl: bool) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let id = self.readable(path, auth, skip_acl)?;
        Ok(self.stat(id))
    }

    /// getData.
    pub fn get_data(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        Ok((self.data(id).map(|d| d.to_vec()), self.stat(id)))
    }

    /// getData's checks, then its reply body (the data as a jute buffer, then the Stat) to be
    /// written straight into the reply: no copy of the data on the way.
    pub fn get_data_body(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<impl FnOnce(&mut BytesMut) + '_, ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        Ok(move |b: &mut BytesMut| {
            match self.data(id) {
                Some(d) => {
                    b.put_i32(d.len() as i32);
                    b.put_slice(d);
                }
                None => b.put_i32(-1),
            }
            self.stat(id).encode(b);
        })
    }

    /// getChildren's checks, then its reply body (the names as a jute vector, then the
    /// parent's Stat for getChildren2) to be written straight into the reply: a list of a
    /// million names costs its bytes, not a million strings.
    pub fn get_children_body(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
        with_stat: bool,
    ) -> Result<impl FnOnce(&mut BytesMut) + '_, ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        Ok(move |b: &mut BytesMut| {
            let kids = self.child_ids(id);
            b.reserve(4 + kids.len() * 16);
            b.put_i32(kids.len() as i32);
            for &c in kids {
                let name = self.name_bytes(c);
                b.put_i32(name.len() as i32);
                b.put_slice(name);
            }
            if with_stat {
                self.stat(id).encode(b);
            }
        })
    }

    /// getChildren / getChildren2.
    pub fn get_children(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        Ok((self.children(id), self.stat(id)))
    }

    /// Paddock's getChildrenPage: READ on the parent, as getChildren; a page of names (see
    /// `children_after`), the parent's Stat, and whether more follow.
    pub fn get_children_page(
        &self,
        path: &str,
        after: &str,
        max: usize,
        max_bytes: usize,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Vec<String>, Stat, bool), ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        let (names, more) = self.children_after(id, after, max, max_bytes);
        Ok((names, self.stat(id), more))
    }

    /// getACL: READ or ADMIN suffices; without ADMIN digest ids are masked.
    pub fn get_acl(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let list = self.acl(id);
        let admin = acl::check(list, perms::ADMIN, auth, skip_acl);
        if !admin && !acl::check(list, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
        let shown = if admin {
            list.to_vec()
        } else {
            acl::masked(list)
        };
        Ok((shown, self.stat(id)))
    }

    /// getAllChildrenNumber: every descendant.
    pub fn all_children_number(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<i32, ErrorCode> {
        let id = self.readable(path, auth, skip_acl)?;
        Ok(self.descendants(id) as i32)
    }

    /// getEphemerals: the session's ephemerals whose path starts with `prefix` (all when the
    /// prefix is empty or `/`).
    /// They come in the order of ZooKeeper's hash set of them, filled in creation order.
    pub fn ephemerals_with_prefix(&self, session: i64, prefix: &str) -> Vec<String> {
        let mut by_creation: Vec<(i64, String)> = self
            .ephemerals_of(session)
            .into_iter()
            .map(|p| (self.lookup(&p).map_or(0, |id| self.node_stat(id).czxid), p))
            .collect();
        by_creation.sort();
        let all = crate::java_order::hash_set_order(
            by_creation.into_iter().map(|(_, p)| p).collect(),
            |p| crate::java_order::string_hash(p),
        );
        let p = prefix.trim();
        if p.is_empty() || p == "/" {
            return all;
        }
        all.into_iter().filter(|e| e.starts_with(prefix)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnOp};
    use paddock_proto::{GetChildren2Response, GetChildrenResponse, GetDataResponse};

    fn create(t: &mut DataTree, zxid: i64, path: &str, data: Option<&[u8]>, acl: Vec<Acl>) {
        let a = t.apply(&Txn {
            session_id: 1,
            cxid: 0,
            zxid,
            time: zxid,
            op: TxnOp::Create {
                path: path.into(),
                data: data.map(|d| d.to_vec()),
                acl,
                owner: 0,
                parent_cversion: 1,
            },
        });
        assert!(a.result.is_ok(), "{path}: {:?}", a.result);
    }

    fn body(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn bodies_written_in_place_are_the_records_replies() {
        let mut t = DataTree::new();
        let anyone = AuthInfo::default();
        create(&mut t, 1, "/p", Some(b"parent"), Acl::open_unsafe());
        for (i, name) in ["b", "a", "\u{e9}t\u{e9}", "c"].iter().enumerate() {
            create(
                &mut t,
                2 + i as i64,
                &format!("/p/{name}"),
                None,
                Acl::open_unsafe(),
            );
        }
        create(&mut t, 9, "/empty", Some(b""), Acl::open_unsafe());
        for path in ["/p", "/p/a", "/empty", "/"] {
            let (data, stat) = t.get_data(path, &anyone, false).unwrap();
            let want = body(|b| GetDataResponse { data, stat }.encode(b));
            assert_eq!(body(t.get_data_body(path, &anyone, false).unwrap()), want);
            let (children, stat) = t.get_children(path, &anyone, false).unwrap();
            let want = body(|b| {
                GetChildrenResponse {
                    children: children.clone(),
                }
                .encode(b)
            });
            let got = body(t.get_children_body(path, &anyone, false, false).unwrap());
            assert_eq!(got, want, "{path}");
            let want = body(|b| GetChildren2Response { children, stat }.encode(b));
            let got = body(t.get_children_body(path, &anyone, false, true).unwrap());
            assert_eq!(got, want, "{path}");
        }
        assert!(matches!(
            t.get_data_body("/nope", &anyone, false),
            Err(ErrorCode::NoNode)
        ));
        create(
            &mut t,
            10,
            "/secret",
            Some(b"s"),
            vec![Acl::new(perms::ALL, "digest", "u:x")],
        );
        assert!(matches!(
            t.get_children_body("/secret", &anyone, false, false),
            Err(ErrorCode::NoAuth)
        ));
        assert!(t.get_children_body("/secret", &anyone, true, false).is_ok());
    }
}
