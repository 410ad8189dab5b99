//! Argument conventions shared by the client-side subcommands (`lock`, `elect`).

/// Rewrites single-dash long options (`-server`, `-id`) to their double-dash form so clap can
/// parse them: every paddock subcommand takes `-server` and `--server` alike, as zkCli's users
/// expect. Stops at `--`: what follows is a command line of its own.
pub fn normalize_long_options(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for a in args {
        if rest {
            out.push(a.clone());
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a.clone());
        } else if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") {
            // `-server=x` and `-server x` alike; `-5` (a negative number) stays as it is.
            if a.as_bytes()[1].is_ascii_digit() {
                out.push(a.clone());
            } else {
                out.push(format!("-{a}"));
            }
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_long_options;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_dash_long_options_become_double_dash() {
        assert_eq!(
            normalize_long_options(&v(&[
                "/l", "-server", "h:1", "--id=a", "-v", "--", "-x", "-server"
            ])),
            v(&["/l", "--server", "h:1", "--id=a", "-v", "--", "-x", "-server"])
        );
        assert_eq!(normalize_long_options(&v(&["-5"])), v(&["-5"]));
    }
}
