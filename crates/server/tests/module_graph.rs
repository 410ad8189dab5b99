//! The server's modules import each other without a cycle: the core owns its parts and the
//! replication driver, and nothing it drives (the log thread, the peers' transport, the
//! driver, the connections) reaches back into it. Read from the sources, so a new
//! `use crate::core` in the wrong place fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its code names (`crate::x`), comments aside.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                files.push((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    f.path(),
                ));
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            files.push((stem, p));
        }
    }
    for (module, path) in files {
        if module == "lib" || path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = g.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// A cycle through `at`, if any (depth-first, the path so far on `stack`).
fn cycle(
    g: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|m| m == at) {
        let mut c = stack[i..].to_vec();
        c.push(at.to_owned());
        return Some(c);
    }
    if done.contains(at) {
        return None;
    }
    stack.push(at.to_owned());
    for d in g.get(at).into_iter().flatten() {
        if let Some(c) = cycle(g, d, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(at.to_owned());
    None
}

#[test]
fn the_servers_modules_import_each_other_without_a_cycle() {
    let g = graph();
    for m in ["core", "log", "peer", "replica", "msg", "conn", "session"] {
        assert!(g.contains_key(m), "module {m} not found: {:?}", g.keys());
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle(&g, m, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
    for m in ["log", "peer", "replica", "msg", "conn", "session", "fourlw"] {
        assert!(
            !g[m].contains("core"),
            "{m} must not reach into the core: {:?}",
            g[m]
        );
    }
}
