//! Read operations with ZooKeeper's checks. Watch registration is the caller's: it must happen
//! at the same point in the apply order as the read itself.

use crate::acl::{self, AuthInfo};
use crate::tree::DataTree;
use paddock_proto::{perms, Acl, ErrorCode, Stat};

impl DataTree {
    /// exists: NUL in the path is BADARGUMENTS; a missing node is NONODE; a node the caller may
    /// not read is NOAUTH.
    pub fn exists(&self, path: &str, auth: &AuthInfo, skip_acl: bool) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(self.stat(id))
    }

    /// getData.
    pub fn get_data(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((self.data(id).map(|d| d.to_vec()), self.stat(id)))
    }

    /// getChildren / getChildren2.
    pub fn get_children(
        &self,
        path: &str,
        auth: &AuthInfo,
        skip_acl: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
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
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
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
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(id, perms::READ, auth, skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
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
