//! Command-line spelling shared by the clap-parsed subcommands (`paddock lock`, `paddock elect`,
//! `paddock bench`): zkCli's single-dash long options. The binary owns the rule and applies it
//! before any subcommand parses (paddock-bench receives its arguments already rewritten).

/// Rewrites `-server` / `-server=x` to `--server` / `--server=x`, so clap parses the
/// zkCli-style single-dash long options every paddock subcommand accepts. Single-letter flags
/// (`-h`), values that look like negative numbers (`-1`) and `--long` flags pass through
/// unchanged, and so does everything after `--` (a command line of its own, as for
/// `paddock lock ... -- cmd -x`).
pub fn normalise(args: &[String]) -> Vec<String> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            let b = a.as_bytes();
            let long_single_dash = i < end
                && b.len() > 2
                && b[0] == b'-'
                && b[1] != b'-'
                && b[1].is_ascii_alphabetic()
                && a[1..].split('=').next().unwrap_or("").len() > 1;
            if long_single_dash {
                format!("-{a}")
            } else {
                a.clone()
            }
        })
        .collect()
}

/// A comma-separated server list (`--server host:port,...`), blanks dropped; an error when it
/// names none.
pub fn servers(list: &str) -> anyhow::Result<Vec<String>> {
    let servers: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        anyhow::bail!("no server given (--server host:port,...)");
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::normalise;
    use clap::Parser;
    use paddock_bench::args::{CompareArgs, EnsembleArgs, FailoverArgs, MemoryArgs, RunArgs};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalises_single_dash_long_flags() {
        assert_eq!(
            normalise(&s(&[
                "-server",
                "h:1",
                "--sessions",
                "4",
                "-h",
                "-1",
                "-pid=3",
                "-x"
            ])),
            s(&[
                "--server",
                "h:1",
                "--sessions",
                "4",
                "-h",
                "-1",
                "--pid=3",
                "-x"
            ])
        );
        // After `--` nothing is touched: it is the command `paddock lock` runs.
        assert_eq!(
            normalise(&s(&["/l", "-server", "h:1", "--", "cmd", "-server", "-xy"])),
            s(&["/l", "--server", "h:1", "--", "cmd", "-server", "-xy"])
        );
    }

    /// `paddock bench` takes both spellings: the zkCli one, rewritten, parses to exactly what
    /// the `--` one does (whose values paddock-bench's own tests check).
    #[test]
    fn bench_options_in_both_spellings() {
        fn same<P: Parser + std::fmt::Debug>(zkcli: &[&str], long: &[&str]) {
            let a = P::try_parse_from(normalise(&s(zkcli))).unwrap();
            let b = P::try_parse_from(s(long)).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{zkcli:?} vs {long:?}");
        }
        same::<RunArgs>(
            &[
                "bench",
                "-server",
                "127.0.0.1:1,127.0.0.1:2",
                "-sessions",
                "4",
                "-duration",
                "2s",
            ],
            &[
                "bench",
                "--server",
                "127.0.0.1:1,127.0.0.1:2",
                "--sessions=4",
                "--duration",
                "2",
            ],
        );
        same::<MemoryArgs>(
            &[
                "memory",
                "-server",
                "127.0.0.1:5",
                "--pid",
                "42",
                "-znodes",
                "1m",
            ],
            &[
                "memory",
                "--server",
                "127.0.0.1:5",
                "--pid",
                "42",
                "--znodes",
                "1m",
            ],
        );
        same::<CompareArgs>(
            &["compare", "-rounds", "5", "--force-sync", "no"],
            &["compare", "--rounds", "5", "--force-sync", "no"],
        );
        same::<EnsembleArgs>(&["ensemble", "-smoke"], &["ensemble", "--smoke"]);
        same::<FailoverArgs>(
            &[
                "failover",
                "-server",
                "127.0.0.1:1,127.0.0.2:1",
                "-pid",
                "3,4",
                "-limit",
                "10s",
            ],
            &[
                "failover",
                "--server",
                "127.0.0.1:1,127.0.0.2:1",
                "--pid",
                "3,4",
                "--limit",
                "10s",
            ],
        );
    }
}
