//! What every example shares: logging set-up and a small command-line parser.
//!
//! Cargo builds each file in `examples/` as its own program but skips subdirectories without
//! a `main.rs`, so this file is not an example itself; each example pulls it in with
//! `mod common;`.

// Each example compiles its own copy of this module and uses only part of it (an option-only
// example never asks for positional words, a subcommand one may declare no flags), so the
// unused rest would otherwise warn in every build.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::str::FromStr;

/// Logs to stderr, filtered by `RUST_LOG` (`RUST_LOG=info`, `RUST_LOG=paddock_client=debug`),
/// so the example's own output on stdout stays clean to read or pipe.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
}

/// Where the examples connect unless told otherwise: a ZooKeeper-compatible server on its
/// usual client port.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2181";

/// A command line parsed once: `--server`, the values of the options an example declares, its
/// boolean flags, and every other word in order.
///
/// An option is written `--name value`, `-name value`, `--name=value` or `-name=value`; the
/// single-dash form is the one ZooKeeper's tools (and `paddock`) accept. Words that are not a
/// declared option or flag, even ones starting with `-` (a negative number, say), are kept
/// as positional words, so subcommands like `offer ITEM...` or `add -5` reach the example
/// untouched.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<&'static str, String>,
    flags: HashSet<&'static str>,
    rest: Vec<String>,
    // The declared names, to catch an example asking for one it forgot to declare.
    declared: HashSet<&'static str>,
}

impl Args {
    /// Parses this program's arguments. `options` take a value, `flags` do not; `server` is
    /// always an option, since every example connects somewhere.
    pub fn parse(options: &[&'static str], flags: &[&'static str]) -> Result<Args, String> {
        Args::parse_from(std::env::args().skip(1), options, flags)
    }

    /// Parses `words` (without the program name).
    pub fn parse_from(
        words: impl IntoIterator<Item = String>,
        options: &[&'static str],
        flags: &[&'static str],
    ) -> Result<Args, String> {
        let options: Vec<&'static str> = std::iter::once("server")
            .chain(options.iter().copied())
            .collect();
        let mut args = Args {
            declared: options.iter().chain(flags).copied().collect(),
            ..Args::default()
        };
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            // `-name`, `--name`, `-name=value` or `--name=value`; anything else is positional.
            let Some(stripped) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                args.rest.push(word);
                continue;
            };
            let (name, inline) = match stripped.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (stripped, None),
            };
            if let Some(&name) = options.iter().find(|&&o| o == name) {
                let value = match inline {
                    Some(v) => v.to_string(),
                    // The next word is the value whatever it looks like, as in `--abort -x`.
                    None => words
                        .next()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                // A repeated option: the last one wins, as with most command-line tools.
                args.values.insert(name, value);
            } else if let Some(&name) = flags.iter().find(|&&f| f == name) {
                if inline.is_some() {
                    return Err(format!("--{name} takes no value"));
                }
                args.flags.insert(name);
            } else {
                args.rest.push(word);
            }
        }
        Ok(args)
    }

    /// The server to connect to: `--server host:port`, else [`DEFAULT_SERVER`].
    pub fn server(&self) -> String {
        self.string("server", DEFAULT_SERVER)
    }

    /// The option's value as given, if it was.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.check(name);
        self.values.get(name).map(String::as_str)
    }

    /// The option's value, or `default` when it was not given.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_string()
    }

    /// The option's value parsed as a `T`, or `default` when it was not given.
    pub fn value<T>(&self, name: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        parse_or(self.get(name), default, &format!("--{name} "))
    }

    /// Whether the flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.check(name);
        self.flags.contains(name)
    }

    /// The positional words (subcommand and its operands), in order.
    pub fn rest(&self) -> &[String] {
        &self.rest
    }

    /// The positional word at `i`, if there is one.
    pub fn word(&self, i: usize) -> Option<&str> {
        self.rest.get(i).map(String::as_str)
    }

    /// The positional word at `i` parsed as a `T`, or `default` when there is none.
    pub fn word_value<T>(&self, i: usize, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        parse_or(self.word(i), default, "")
    }

    // Asking for an undeclared name would silently always give the default: a bug in the
    // example, so fail loudly instead.
    fn check(&self, name: &str) {
        assert!(
            self.declared.contains(name),
            "example bug: --{name} was not declared to Args::parse"
        );
    }
}

/// `word` parsed as a `T`, or `default` without one; a parse error names the word, after
/// `prefix` (the option it came with, if any).
fn parse_or<T>(word: Option<&str>, default: T, prefix: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    match word {
        None => Ok(default),
        Some(s) => s.parse().map_err(|e| format!("{prefix}{s:?}: {e}")),
    }
}
