//! ACLs: the interned ACL lists nodes refer to, identities a connection holds, permission checks,
//! and the fix-up applied to ACLs given in create and setACL.

use base64::Engine;
use hashbrown::HashMap;
use paddock_proto::{Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// Reference to an interned ACL list.
pub type AclRef = u32;

/// Interned ACL lists with reference counts: most nodes share a handful of lists, so each node
/// stores a 4-byte reference instead of its own list.
#[derive(Default)]
pub struct AclCache {
    lists: Vec<Vec<Acl>>,
    refs: Vec<u64>,
    index: HashMap<Vec<Acl>, AclRef>,
    free: Vec<AclRef>,
}

impl AclCache {
    /// Interns a list and takes a reference to it.
    pub fn intern(&mut self, acl: &[Acl]) -> AclRef {
        if let Some(&r) = self.index.get(acl) {
            self.refs[r as usize] += 1;
            return r;
        }
        let r = match self.free.pop() {
            Some(r) => {
                self.lists[r as usize] = acl.to_vec();
                self.refs[r as usize] = 1;
                r
            }
            None => {
                self.lists.push(acl.to_vec());
                self.refs.push(1);
                (self.lists.len() - 1) as AclRef
            }
        };
        self.index.insert(acl.to_vec(), r);
        r
    }

    /// Takes one more reference to an interned list.
    pub fn retain(&mut self, r: AclRef) {
        self.refs[r as usize] += 1;
    }

    /// Drops one reference.
    pub fn release(&mut self, r: AclRef) {
        let c = &mut self.refs[r as usize];
        *c -= 1;
        if *c == 0 {
            let list = std::mem::take(&mut self.lists[r as usize]);
            self.index.remove(&list);
            self.free.push(r);
        }
    }

    /// The list behind a reference.
    pub fn get(&self, r: AclRef) -> &[Acl] {
        &self.lists[r as usize]
    }

    /// Number of distinct live lists.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no list is interned.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// The identities a connection holds (`ip:<addr>` always, plus those added by auth packets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub ids: Vec<Id>,
}

impl AuthInfo {
    /// Identities of a connection from `addr`.
    pub fn for_ip(addr: &str) -> AuthInfo {
        AuthInfo {
            ids: vec![Id::new("ip", addr)],
        }
    }

    /// Whether one of the identities is `super`.
    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|i| i.scheme == "super")
    }

    /// The identities in the order ZooKeeper iterates them (its set of them is a Java hash set).
    pub fn in_java_order(&self) -> Vec<&Id> {
        crate::java_order::hash_set_order(self.ids.iter().collect(), |i| {
            crate::java_order::id_hash(&i.scheme, &i.id)
        })
    }

    /// Adds an identity unless already present.
    pub fn add(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }
}

/// The digest ACL id of `user:password`: `user:base64(sha1(user:password))`.
/// As ZooKeeper, it accepts any text: the user is what precedes the first `:` (or all of it).
pub fn digest_id(user_password: &str) -> Option<String> {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// Whether `perm` is granted on a node with ACL `acl` to a caller holding `auth`.
pub fn check(acl: &[Acl], perm: i32, auth: &AuthInfo, skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || auth
                    .ids
                    .iter()
                    .any(|i| i.scheme == a.id.scheme && matches(&a.id, &i.id)))
    })
}

/// Whether the identity `have` (of the ACL entry's scheme) satisfies the entry.
fn matches(entry: &Id, have: &str) -> bool {
    match entry.scheme.as_str() {
        "ip" => ip_matches(&entry.id, have),
        _ => entry.id == have,
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (s, None),
    };
    // ZooKeeper's ip provider only understands IPv4 (IPv6 ids are invalid there, even in 3.9).
    let ip: IpAddr = IpAddr::V4(addr.parse().ok()?);
    let max = 32;
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn mask_bytes(ip: IpAddr, bits: u32) -> Vec<u8> {
    let mut b = match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    for (i, byte) in b.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xFFu8 << (8 - keep) };
    }
    b
}

/// CIDR match of an `ip` ACL entry against a client address; v4 never matches v6.
fn ip_matches(entry: &str, client: &str) -> bool {
    let Some((net, bits)) = parse_cidr(entry) else {
        return false;
    };
    let Ok(c) = client.parse::<IpAddr>() else {
        return false;
    };
    if net.is_ipv4() != c.is_ipv4() {
        return false;
    }
    mask_bytes(net, bits) == mask_bytes(c, bits)
}

/// The ACL a create or setACL stores, after ZooKeeper's fix-up: `auth` entries expand into one
/// entry per authenticated identity (digest and the like, never ip), other entries must name a
/// known scheme with a valid id, duplicates go.
///
/// `sasl` and `x509` ids are valid only when the server has ZooKeeper's provider for them
/// ([`Schemes`]); a `sasl` id must be a Kerberos name as ZooKeeper parses one (`user`,
/// `user@REALM`, `service/host@REALM`), an `x509` id a distinguished name.
pub fn fixup(acl: &[Acl], auth: &AuthInfo, schemes: Schemes) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let push = |a: Acl, out: &mut Vec<Acl>| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in acl {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => push(a.clone(), &mut out),
            "auth" => {
                let mut any = false;
                for id in auth.in_java_order() {
                    if id.scheme != "ip" && id.scheme != "super" {
                        any = true;
                        push(
                            Acl {
                                perms: a.perms,
                                id: id.clone(),
                            },
                            &mut out,
                        );
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" => {
                // ZooKeeper's rule is Java's `id.split(":").length == 2`, which drops trailing
                // empty parts: "a:b" and ":b" and "a:b:" pass, "a" and "a:b:c" do not.
                let mut parts: Vec<&str> = a.id.id.split(':').collect();
                while parts.last().is_some_and(|p| p.is_empty()) {
                    parts.pop();
                }
                let ok = parts.len() == 2;
                if !ok {
                    return Err(ErrorCode::InvalidAcl);
                }
                push(a.clone(), &mut out)
            }
            "ip" if parse_cidr(&a.id.id).is_some() => push(a.clone(), &mut out),
            "sasl" if schemes.sasl && kerberos_name(&a.id.id) => push(a.clone(), &mut out),
            // ZooKeeper: whatever X500Principal parses; an empty name never names a client.
            "x509" if schemes.x509 && a.id.id.contains('=') => push(a.clone(), &mut out),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// The ACL schemes beyond world, auth, digest and ip that the server's providers make valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schemes {
    pub sasl: bool,
    pub x509: bool,
}

/// Whether ZooKeeper's KerberosName accepts `id`: any name without `@`, else
/// `primary[/instance]@realm` with no further `/` or `@`.
fn kerberos_name(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    !realm.contains(['@', '/']) && principal.matches('/').count() <= 1
}

/// The ACL shown to a caller without ADMIN: digest ids are masked.
pub fn masked(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                // ZooKeeper keeps the user and hides the hash.
                let id = match a.id.id.split_once(':') {
                    Some((user, _)) => format!("{user}:x"),
                    None => a.id.id.clone(),
                };
                Acl::new(a.perms, "digest", &id)
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_proto::perms;

    #[test]
    fn digest_matches_zookeeper() {
        // The super digest kazoo's harness passes is the digest of "super:test".
        assert_eq!(
            digest_id("super:test").unwrap(),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn sasl_and_x509_ids_need_their_provider() {
        let d = AuthInfo::for_ip("127.0.0.1");
        let acl = |id: &str| [Acl::new(31, "sasl", id)];
        let sasl = Schemes {
            sasl: true,
            x509: false,
        };
        assert_eq!(
            fixup(&acl("jaasuser"), &d, Schemes::default()),
            Err(ErrorCode::InvalidAcl)
        );
        for ok in [
            "jaasuser",
            "client@KAZOOTEST.ORG",
            "zookeeper/host@R",
            "a/b",
        ] {
            assert!(fixup(&acl(ok), &d, sasl).is_ok(), "{ok}");
        }
        for bad in ["a@b@c", "a/b/c@R", "a@R/x"] {
            assert_eq!(
                fixup(&acl(bad), &d, sasl),
                Err(ErrorCode::InvalidAcl),
                "{bad}"
            );
        }
        let x509 = [Acl::new(31, "x509", "CN=client,O=Acme")];
        assert_eq!(fixup(&x509, &d, sasl), Err(ErrorCode::InvalidAcl));
        let on = Schemes {
            sasl: false,
            x509: true,
        };
        assert!(fixup(&x509, &d, on).is_ok());
    }

    #[test]
    fn ip_cidr() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.0/8", "127.9.9.9"));
        assert!(!ip_matches("10.0.0.0/8", "127.0.0.1"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(
            !ip_matches("::1/128", "::1"),
            "IPv6 ids are not valid ip ACLs in ZooKeeper"
        );
        assert!(!ip_matches("127.0.0.1/33", "127.0.0.1"));
    }

    #[test]
    fn fixup_rules() {
        let ip_only = AuthInfo::for_ip("127.0.0.1");
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &ip_only, Schemes::default()),
            Err(ErrorCode::InvalidAcl)
        );
        let mut d = ip_only.clone();
        d.add(Id::new("digest", "u:h"));
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &d, Schemes::default()).unwrap(),
            vec![Acl::new(31, "digest", "u:h")]
        );
        assert_eq!(
            fixup(&[Acl::new(1, "digest", "nocolon")], &d, Schemes::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(1, "bogus", "x")], &d, Schemes::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[], &d, Schemes::default()),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = [
            Acl::new(31, "world", "anyone"),
            Acl::new(31, "world", "anyone"),
        ];
        assert_eq!(fixup(&dup, &d, Schemes::default()).unwrap().len(), 1);
    }

    #[test]
    fn checks() {
        let acl = vec![Acl::new(perms::READ, "digest", "u:h")];
        let mut a = AuthInfo::for_ip("1.2.3.4");
        assert!(!check(&acl, perms::READ, &a, false));
        a.add(Id::new("digest", "u:h"));
        assert!(check(&acl, perms::READ, &a, false));
        assert!(!check(&acl, perms::WRITE, &a, false));
        assert!(check(&[], perms::WRITE, &a, false));
        a.add(Id::new("super", ""));
        assert!(check(&acl, perms::WRITE, &a, false));
    }
}
