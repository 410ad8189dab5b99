//! Command-line spelling shared by the paddock subcommands (`paddock lock`, `paddock elect`):
//! zkCli's single-dash long options.
//!
//! `paddock bench` applies the same rule to its own options (`paddock_bench::args::normalise`);
//! the binary keeps its copy so that its option parsing does not come from the benchmark crate.

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

#[cfg(test)]
mod tests {
    use super::normalise;

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
}
