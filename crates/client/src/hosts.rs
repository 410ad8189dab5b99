//! The connect string: `host:port[,host:port...][/chroot]`, hosts shuffled as ZooKeeper's
//! StaticHostProvider does so clients spread over the ensemble.

use crate::error::Error;
use rand::seq::SliceRandom;

pub(crate) struct Parsed {
    pub hosts: Vec<String>,
    pub chroot: Option<String>,
}

pub(crate) fn parse(s: &str, shuffle: bool) -> Result<Parsed, Error> {
    let (list, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let chroot = match chroot {
        None | Some("/") => None,
        Some(c) => {
            paddock_proto::path::validate(c)
                .map_err(|e| Error::BadPath(c.to_string(), e.to_string()))?;
            Some(c.to_string())
        }
    };
    let mut hosts: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                h.to_string()
            } else {
                format!("{h}:2181")
            }
        })
        .collect();
    if hosts.is_empty() {
        return Err(Error::NoHost(s.to_string()));
    }
    if shuffle {
        hosts.shuffle(&mut rand::thread_rng());
    }
    Ok(Parsed { hosts, chroot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let p = parse("a:1,b,c:3/app/x", false).unwrap();
        assert_eq!(p.hosts, vec!["a:1", "b:2181", "c:3"]);
        assert_eq!(p.chroot.as_deref(), Some("/app/x"));
        assert!(parse("a:1/", false).unwrap().chroot.is_none());
        assert!(parse("", false).is_err());
    }
}
