//! zkCli's formats: argument splitting, options, usage lines, Stat blocks, ACLs, error lines.

use paddock_client::{Acl, Error, ErrorCode, Id, Stat};

/// The usage printed for an unknown command (ZooKeeperMain.usage).
pub const USAGE: &str = "ZooKeeper -server host:port -client-configuration properties-file cmd args
\taddWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE
\taddauth scheme auth
\tclose 
\tconfig [-c] [-w] [-s]
\tconnect host:port
\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]
\tdelete [-v version] path
\tdeleteall path [-b batch size]
\tdelquota [-n|-b|-N|-B] path
\tget [-s] [-w] path
\tgetAcl [-s] path
\tgetAllChildrenNumber path
\tgetEphemerals path
\thistory 
\tlistquota path
\tls [-s] [-w] [-R] path
\tprintwatches on|off
\tquit 
\treconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]
\tredo cmdno
\tremovewatches path [-c|-d|-a] [-l]
\tset [-s] [-v version] path data
\tsetAcl [-s] [-v version] [-R] path acl
\tsetquota -n|-b|-N|-B val path
\tstat [-w] path
\tsync path
\tversion 
\twhoami ";

/// The usage line of one command, `None` if the command is unknown.
pub fn usage(cmd: &str) -> Option<&'static str> {
    USAGE
        .lines()
        .skip(1)
        .map(|l| l.trim_start_matches('\t'))
        .find(|l| l.split(' ').next() == Some(cmd))
}

/// The options of a command: flag letter and whether it takes a value.
pub fn flags(cmd: &str) -> &'static [(char, bool)] {
    match cmd {
        "ls" => &[('s', false), ('w', false), ('R', false)],
        "get" => &[('s', false), ('w', false)],
        "stat" => &[('w', false)],
        "set" => &[('s', false), ('v', true)],
        "create" => &[('s', false), ('e', false), ('c', false), ('t', true)],
        "delete" => &[('v', true)],
        "deleteall" => &[('b', true)],
        "getAcl" => &[('s', false)],
        "setAcl" => &[('s', false), ('v', true), ('R', false)],
        "config" => &[('c', false), ('w', false), ('s', false)],
        "addWatch" => &[('m', true)],
        "removewatches" => &[('c', false), ('d', false), ('a', false), ('l', false)],
        "reconfig" => &[
            ('s', false),
            ('v', true),
            ('a', true),
            ('r', true),
            ('m', true),
            ('f', true),
        ],
        "setquota" => &[('n', true), ('b', true), ('N', true), ('B', true)],
        "delquota" => &[('n', false), ('b', false), ('N', false), ('B', false)],
        _ => &[],
    }
}

/// Parsed options and positional arguments.
pub struct Opts {
    set: Vec<(char, Option<String>)>,
    pub pos: Vec<String>,
}

impl Opts {
    pub fn parse(args: &[String], flags: &[(char, bool)]) -> Result<Opts, ()> {
        let mut o = Opts {
            set: vec![],
            pos: vec![],
        };
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let long = match a.as_str() {
                "-add" => Some('a'),
                "-remove" => Some('r'),
                "-members" => Some('m'),
                "-file" => Some('f'),
                _ => None,
            };
            let flag = long.or_else(|| {
                let mut c = a.strip_prefix('-')?.chars();
                let f = c.next()?;
                c.next().is_none().then_some(f)
            });
            match flag.and_then(|f| flags.iter().find(|(c, _)| *c == f)) {
                Some((f, true)) => {
                    let v = args.get(i + 1).ok_or(())?.clone();
                    o.set.push((*f, Some(v)));
                    i += 2;
                }
                Some((f, false)) => {
                    o.set.push((*f, None));
                    i += 1;
                }
                None if a.starts_with('-')
                    && a.len() > 1
                    && !flags.is_empty()
                    && a[1..].chars().all(|c| c.is_ascii_alphabetic()) =>
                {
                    return Err(())
                }
                None => {
                    o.pos.push(a.clone());
                    i += 1;
                }
            }
        }
        Ok(o)
    }
    pub fn has(&self, f: char) -> bool {
        self.set.iter().any(|(c, _)| *c == f)
    }
    pub fn val(&self, f: char) -> Option<String> {
        self.set
            .iter()
            .find(|(c, _)| *c == f)
            .and_then(|(_, v)| v.clone())
    }
    pub fn num(&self, f: char) -> Option<i64> {
        self.val(f).and_then(|v| v.parse().ok())
    }
}

/// Splits a command line as zkCli does: words, or "..." / '...' quoted strings (quotes dropped).
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut it = line.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let Some(&c) = it.peek() else { break };
        let mut w = String::new();
        if c == '"' || c == '\'' {
            it.next();
            let mut closed = false;
            for ch in it.by_ref() {
                if ch == c {
                    closed = true;
                    break;
                }
                w.push(ch);
            }
            if !closed {
                w.insert(0, c);
            }
        } else {
            while let Some(&ch) = it.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                it.next();
            }
        }
        out.push(w);
    }
    out
}

/// Java's PathUtils.validatePath messages.
pub fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !p.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if p.len() == 1 {
        return Ok(());
    }
    if p.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    let b: Vec<char> = p.chars().collect();
    for i in 1..b.len() {
        let c = b[i];
        let last = b[i - 1];
        let reason = if c == '\0' {
            Some("null character not allowed")
        } else if c == '/' && last == '/' {
            Some("empty node name specified")
        } else if c == '.'
            && (i + 1 == b.len() || b[i + 1] == '/')
            && (last == '/' || (last == '.' && b[i - 2] == '/'))
        {
            // "." or ".." as a whole component; reported at its last dot, as Java does.
            Some("relative paths not allowed")
        } else {
            None
        };
        if let Some(r) = reason {
            return Err(format!("Invalid path string \"{p}\" caused by {r} @{i}"));
        }
    }
    Ok(())
}

/// Java's KeeperException code messages.
fn code_message(c: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match c {
        Ok => "ok",
        SystemError => "SystemError",
        RuntimeInconsistency => "RuntimeInconsistency",
        DataInconsistency => "DataInconsistency",
        ConnectionLoss => "ConnectionLoss",
        MarshallingError => "MarshallingError",
        Unimplemented => "Unimplemented",
        OperationTimeout => "OperationTimeout",
        BadArguments => "BadArguments",
        UnknownSession => "UnknownSession",
        NewConfigNoQuorum => "NewConfigNoQuorum",
        ReconfigInProgress => "ReconfigInProgress",
        ApiError => "APIError",
        NoNode => "NoNode",
        NoAuth => "NoAuth",
        BadVersion => "BadVersion",
        NoChildrenForEphemerals => "NoChildrenForEphemerals",
        NodeExists => "NodeExists",
        NotEmpty => "Directory not empty",
        SessionExpired => "Session expired",
        InvalidCallback => "Invalid callback",
        InvalidAcl => "InvalidACL",
        AuthFailed => "AuthFailed",
        SessionMoved => "Session moved",
        NotReadOnly => "Not a read-only call",
        EphemeralOnLocalSession => "Ephemeral node on local session",
        NoWatcher => "No such watcher",
        RequestTimeout => "Request timeout",
        ReconfigDisabled => "Reconfig is disabled",
        SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        QuotaExceeded => "Quota has exceeded",
        ThrottledOp => "Op throttled due to high load",
    }
}

/// The line zkCli prints for a failed command on `path` (CliWrapperException's messages).
pub fn err_line(e: &Error, path: &str) -> String {
    let Some(code) = e.code() else {
        return e.to_string();
    };
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {path}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        ErrorCode::NodeExists => format!("Node already exists: {path}"),
        ErrorCode::NotEmpty => format!("Node not empty: {path}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {path}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {path}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {path}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {path}"),
        ErrorCode::BadVersion => format!("version No is not valid : {path}"),
        c if path.is_empty() => format!("KeeperErrorCode = {}", code_message(c)),
        c => format!("KeeperErrorCode = {} for {path}", code_message(c)),
    }
}

/// Permissions as zkCli prints them, in its order c d r w a.
pub fn perm_string(p: i32) -> String {
    paddock_proto::perms::letters(p)
}

/// Parses `scheme:id:perms[,...]` as zkCli's AclParser does (printing its complaints).
pub fn parse_acl(s: &str) -> Vec<Acl> {
    let mut v = vec![];
    for a in s.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            println!("{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            println!("{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut perms = 0;
        for c in a[last + 1..].chars() {
            match paddock_proto::perms::from_letter(c) {
                Some(bit) => perms |= bit,
                None => println!("Unknown perm type: {c}"),
            }
        }
        v.push(Acl {
            perms,
            id: Id {
                scheme: a[..first].to_string(),
                id: a[first + 1..last].to_string(),
            },
        });
    }
    v
}

/// Java's Date.toString in UTC, e.g. "Thu Nov 26 18:00:00 UTC 2026".
fn date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DOW: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DOW[days.rem_euclid(7) as usize],
        MON[(m - 1) as usize],
        d,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        y
    )
}

/// Prints a Stat block as zkCli does.
pub fn print_stat(s: &Stat) {
    super::out(&format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        s.czxid, date(s.ctime), s.mzxid, date(s.mtime), s.pzxid, s.cversion, s.version, s.aversion,
        s.ephemeral_owner, s.data_length, s.num_children
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_words() {
        assert_eq!(
            validate_path("//double").unwrap_err(),
            "Invalid path string \"//double\" caused by empty node name specified @1"
        );
        assert_eq!(
            validate_path("/a/./b").unwrap_err(),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            validate_path("/a/../b").unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            split_line("create /a \"x y\" ''"),
            vec!["create", "/a", "x y", ""]
        );
        assert_eq!(date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(usage("get"), Some("get [-s] [-w] path"));
    }
}
