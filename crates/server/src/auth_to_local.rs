//! `zookeeper.security.auth_to_local`: the rules that turn a Kerberos principal into a short
//! name, in the syntax ZooKeeper took from Hadoop (`KerberosName`):
//!
//! ```text
//! RULE:[<n>:<format>](<regex>)s/<pattern>/<replacement>/[g]   DEFAULT
//! ```
//!
//! A rule applies to principals of `n` components: `format` is filled in (`$0` the realm, `$1`
//! the first component, `$2` the second), the result must match `regex` whole, then the `s///`
//! substitution (all matches with `g`) gives the short name, which may not contain `/` or `@`.
//! `DEFAULT` gives the first component of a principal of the default realm. The first rule that
//! applies wins; when none does, the principal has no short name.

use regex::Regex;
use thiserror::Error;

/// A rule list that does not parse, with the reason.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RuleError(String);

#[derive(Debug)]
enum Rule {
    Default,
    Custom {
        components: usize,
        format: String,
        filter: Option<Regex>,
        substitution: Option<(Regex, String, bool)>,
    },
}

/// The parsed rules.
#[derive(Debug)]
pub struct AuthToLocal {
    rules: Vec<Rule>,
}

impl Default for AuthToLocal {
    fn default() -> Self {
        AuthToLocal {
            rules: vec![Rule::Default],
        }
    }
}

/// Java's replacement syntax (`$1`) is Rust's too, but `$1x` would name group `1x` here: make
/// every group reference explicit.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl AuthToLocal {
    /// Parses a rule list (rules separated by white space or new lines).
    pub fn parse(text: &str) -> Result<AuthToLocal, RuleError> {
        let bad = |m: String| RuleError(m);
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = r.trim_start();
                continue;
            }
            let Some(r) = rest.strip_prefix("RULE:[") else {
                return Err(bad(format!("expected DEFAULT or RULE:[...] at '{rest}'")));
            };
            let close = r.find(']').ok_or_else(|| bad("RULE:[ without ]".into()))?;
            let (n, format) = r[..close]
                .split_once(':')
                .ok_or_else(|| bad(format!("RULE:[{}]: expected <n>:<format>", &r[..close])))?;
            let components: usize = n
                .parse()
                .map_err(|_| bad(format!("RULE:[{n}:...]: not a number of components")))?;
            let mut r = &r[close + 1..];
            let mut filter = None;
            if let Some(f) = r.strip_prefix('(') {
                let end = f
                    .find(')')
                    .ok_or_else(|| bad("a rule's (regex) without )".into()))?;
                let re = Regex::new(&format!("^(?:{})$", &f[..end]))
                    .map_err(|e| bad(format!("({}): {e}", &f[..end])))?;
                filter = Some(re);
                r = &f[end + 1..];
            }
            let mut substitution = None;
            if let Some(s) = r.strip_prefix("s/") {
                let mut parts = s.splitn(3, '/');
                let (Some(pat), Some(rep), Some(tail)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad(format!(
                        "s/{s}: expected s/<pattern>/<replacement>/[g]"
                    )));
                };
                let global = tail.starts_with('g');
                let re = Regex::new(pat).map_err(|e| bad(format!("s/{pat}/: {e}")))?;
                substitution = Some((re, java_replacement(rep), global));
                r = if global { &tail[1..] } else { tail };
            }
            rules.push(Rule::Custom {
                components,
                format: format.to_owned(),
                filter,
                substitution,
            });
            let trimmed = r.trim_start();
            if trimmed.len() == r.len() && !r.is_empty() {
                return Err(bad(format!("unexpected '{r}' after a rule")));
            }
            rest = trimmed;
        }
        if rules.is_empty() {
            return Err(bad("no rule".into()));
        }
        Ok(AuthToLocal { rules })
    }

    /// The short name of `principal` (`a/b@REALM`), `None` when no rule applies.
    pub fn short_name(&self, principal: &str, default_realm: &str) -> Option<String> {
        let (name, realm) = match principal.rsplit_once('@') {
            Some((n, r)) => (n, r),
            None => (principal, ""),
        };
        let parts: Vec<&str> = name.split('/').collect();
        for rule in &self.rules {
            let out = match rule {
                Rule::Default => {
                    (realm.is_empty() || realm == default_realm).then(|| parts[0].to_owned())
                }
                Rule::Custom {
                    components,
                    format,
                    filter,
                    substitution,
                } => {
                    if *components != parts.len() {
                        continue;
                    }
                    let mut base = String::new();
                    let mut chars = format.chars().peekable();
                    let mut ok = true;
                    while let Some(c) = chars.next() {
                        if c == '$' {
                            let mut digits = String::new();
                            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                                digits.push(*d);
                                chars.next();
                            }
                            match digits.parse::<usize>() {
                                Ok(0) => base.push_str(realm),
                                Ok(i) if i <= parts.len() => base.push_str(parts[i - 1]),
                                _ => ok = false,
                            }
                        } else {
                            base.push(c);
                        }
                    }
                    if !ok || filter.as_ref().is_some_and(|f| !f.is_match(&base)) {
                        continue;
                    }
                    Some(match substitution {
                        Some((re, rep, true)) => re.replace_all(&base, rep.as_str()).into_owned(),
                        Some((re, rep, false)) => re.replace(&base, rep.as_str()).into_owned(),
                        None => base,
                    })
                }
            };
            match out {
                // A short name is simple: Hadoop refuses one with '/' or '@' in it.
                Some(s) if s.contains(['/', '@']) => return None,
                Some(s) => return Some(s),
                None => continue,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gives_the_first_component_in_the_default_realm() {
        let r = AuthToLocal::default();
        assert_eq!(
            r.short_name("alice@EXAMPLE.COM", "EXAMPLE.COM").as_deref(),
            Some("alice")
        );
        assert_eq!(
            r.short_name("zookeeper/h.example.com@EXAMPLE.COM", "EXAMPLE.COM")
                .as_deref(),
            Some("zookeeper")
        );
        assert_eq!(r.short_name("bob@OTHER.ORG", "EXAMPLE.COM"), None);
    }

    /// Hadoop's documented examples.
    #[test]
    fn rules_as_hadoop_writes_them() {
        let r = AuthToLocal::parse(
            "RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*//\n\
             RULE:[2:$1@$0](hdfs@EXAMPLE\\.COM)s/.*/hdfs/\n\
             RULE:[2:$1](zk.*)s/zk/keeper/g\n\
             DEFAULT",
        )
        .unwrap();
        let short = |p: &str| r.short_name(p, "EXAMPLE.COM");
        assert_eq!(short("bob@OTHER.ORG").as_deref(), Some("bob"));
        assert_eq!(
            short("hdfs/nn1.example.com@EXAMPLE.COM").as_deref(),
            Some("hdfs")
        );
        assert_eq!(short("zkzk/h@ELSEWHERE").as_deref(), Some("keeperkeeper"));
        assert_eq!(short("alice@EXAMPLE.COM").as_deref(), Some("alice"));
        assert_eq!(short("carol@THIRD.NET"), None);
        // A rule whose result is not simple gives no name.
        let r = AuthToLocal::parse("RULE:[1:$1@$0]").unwrap();
        assert_eq!(r.short_name("a@B", "B"), None);
    }

    #[test]
    fn bad_rules_say_why() {
        for bad in [
            "RULE:[x:$1]",
            "RULE:[1:$1](unclosed",
            "NOPE",
            "RULE:[1:$1]s/(/x/",
            "",
        ] {
            assert!(AuthToLocal::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(java_replacement("$1-x$12\\$"), "${1}-x${12}$$");
    }
}
