//! The interactive side of `paddock cli` on a terminal: line editing and history (rustyline,
//! history kept in ~/.paddock_cli_history), and completion of command names and of znode paths
//! asked from the server.

use paddock_client::Client;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The client the completer asks for children; replaced on `connect`.
pub type Current = Arc<Mutex<Option<Client>>>;

struct ZkHelper {
    current: Current,
    rt: tokio::runtime::Handle,
}

impl ZkHelper {
    fn children(&self, parent: &str) -> Vec<String> {
        let Some(zk) = self.current.lock().expect("current client").clone() else {
            return vec![];
        };
        // While disconnected the request would wait for the reconnect: offer nothing at once.
        if !zk.state().is_connected() {
            return vec![];
        }
        // The editor runs on its own thread, outside the runtime: blocking here is fine.
        let parent = parent.to_string();
        // The timer must be made inside the runtime, hence the async block.
        self.rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), zk.list_children(&parent)).await
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

impl Completer for ZkHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        let word = &head[start..];
        let mut out = vec![];
        if start == 0 {
            for l in super::format::USAGE.lines().skip(1) {
                let name = l.trim_start_matches('\t').split(' ').next().unwrap_or("");
                if name.starts_with(word) {
                    out.push(Pair {
                        display: name.into(),
                        replacement: format!("{name} "),
                    });
                }
            }
        } else if word.starts_with('/') {
            let cut = word.rfind('/').unwrap_or(0);
            let parent = if cut == 0 { "/" } else { &word[..cut] };
            let prefix = &word[cut + 1..];
            let mut kids = self.children(parent);
            kids.sort();
            for k in kids.into_iter().filter(|k| k.starts_with(prefix)) {
                let full = if parent == "/" {
                    format!("/{k}")
                } else {
                    format!("{parent}/{k}")
                };
                out.push(Pair {
                    display: k,
                    replacement: full,
                });
            }
        }
        Ok((start, out))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}
impl Highlighter for ZkHelper {}
impl Validator for ZkHelper {}
impl Helper for ZkHelper {}

/// A line read, and the channel on which the shell says whether to read another.
pub type Line = (String, std::sync::mpsc::Sender<bool>);

/// Reads lines with rustyline on a thread of its own, which ends (saving the history) at
/// Ctrl-D or when the shell answers a line with `false` (quit). Each line is sent with a
/// reply channel; the next prompt (asked through `prompt`) is shown once the command has
/// finished.
pub fn spawn_reader(
    current: Current,
    prompt: Arc<Mutex<String>>,
) -> (mpsc::UnboundedReceiver<Line>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Handle::current();
    let reader = std::thread::spawn(move || {
        let Ok(mut ed) = rustyline::Editor::<ZkHelper, rustyline::history::DefaultHistory>::new()
        else {
            return;
        };
        ed.set_helper(Some(ZkHelper { current, rt }));
        let hist = std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(".paddock_cli_history"));
        if let Some(h) = &hist {
            let _ = ed.load_history(h);
        }
        loop {
            let p = prompt.lock().expect("prompt").clone();
            match ed.readline(&p) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = ed.add_history_entry(line.as_str());
                    }
                    let (done_tx, done_rx) = std::sync::mpsc::channel();
                    if tx.send((line, done_tx)).is_err() {
                        break;
                    }
                    // No prompt after `quit`.
                    if done_rx.recv() != Ok(true) {
                        break;
                    }
                }
                // Ctrl-C drops the line, as a shell does; Ctrl-D ends the session.
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
        if let Some(h) = &hist {
            let _ = ed.save_history(h);
        }
    });
    (rx, reader)
}
