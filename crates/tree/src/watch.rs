//! The watch registry: which connection watches which path, in which table and mode, and who
//! a change notifies.

use hashbrown::{HashMap, HashSet};
use paddock_proto::{event, watcher_type};

/// Identifies a watching connection.
pub type WatcherId = u64;

/// The tables a watch can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchKind {
    /// One-shot data/exist watch (exists, getData).
    Data,
    /// One-shot child watch (getChildren).
    Child,
    /// addWatch mode 0: data and child events of one path, not removed when fired.
    Persistent,
    /// addWatch mode 1: data events of a path and every descendant, not removed when fired.
    Recursive,
}

/// All watches of the server.
#[derive(Default)]
pub struct WatchRegistry {
    tables: [HashMap<String, HashSet<WatcherId>>; 4],
    by_watcher: HashMap<WatcherId, HashSet<(WatchKind, String)>>,
}

fn idx(k: WatchKind) -> usize {
    k as usize
}

impl WatchRegistry {
    /// Registers a watch; registering the same one twice is a no-op.
    pub fn add(&mut self, w: WatcherId, kind: WatchKind, path: &str) {
        self.tables[idx(kind)]
            .entry_ref(path)
            .or_default()
            .insert(w);
        self.by_watcher
            .entry(w)
            .or_default()
            .insert((kind, path.to_owned()));
    }

    fn take(
        &mut self,
        kind: WatchKind,
        path: &str,
        out: &mut Vec<WatcherId>,
        seen: &mut HashSet<WatcherId>,
    ) {
        if let Some(set) = self.tables[idx(kind)].remove(path) {
            for w in set {
                if let Some(mine) = self.by_watcher.get_mut(&w) {
                    mine.remove(&(kind, path.to_owned()));
                }
                if seen.insert(w) {
                    out.push(w);
                }
            }
        }
    }

    fn peek(
        &self,
        kind: WatchKind,
        path: &str,
        out: &mut Vec<WatcherId>,
        seen: &mut HashSet<WatcherId>,
    ) {
        if let Some(set) = self.tables[idx(kind)].get(path) {
            for &w in set {
                if seen.insert(w) {
                    out.push(w);
                }
            }
        }
    }

    /// The connections to notify of `event_type` at `path`, each once; one-shot watches that
    /// fire are removed.
    pub fn trigger(&mut self, event_type: i32, path: &str) -> Vec<WatcherId> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED | event::NODE_DELETED => {
                self.take(WatchKind::Data, path, &mut out, &mut seen);
                if event_type == event::NODE_DELETED {
                    self.take(WatchKind::Child, path, &mut out, &mut seen);
                }
                self.peek(WatchKind::Persistent, path, &mut out, &mut seen);
                if !self.tables[idx(WatchKind::Recursive)].is_empty() {
                    let mut p = path;
                    loop {
                        self.peek(WatchKind::Recursive, p, &mut out, &mut seen);
                        match p.rfind('/') {
                            Some(0) if p.len() > 1 => p = "/",
                            Some(i) if i > 0 => p = &p[..i],
                            _ => break,
                        }
                    }
                }
            }
            event::NODE_CHILDREN_CHANGED => {
                self.take(WatchKind::Child, path, &mut out, &mut seen);
                self.peek(WatchKind::Persistent, path, &mut out, &mut seen);
            }
            _ => {}
        }
        out
    }

    /// The paths watched in one table.
    pub fn paths(&self, kind: WatchKind) -> impl Iterator<Item = &str> {
        self.tables[idx(kind)].keys().map(String::as_str)
    }

    /// Whether `w` holds a watch of the given WatcherType at `path`.
    pub fn contains(&self, w: WatcherId, wtype: i32, path: &str) -> bool {
        kinds_of(wtype).iter().any(|&k| {
            self.tables[idx(k)]
                .get(path)
                .is_some_and(|s| s.contains(&w))
        })
    }

    /// Removes `w`'s watches of the given WatcherType at `path`; false if there were none.
    pub fn remove(&mut self, w: WatcherId, wtype: i32, path: &str) -> bool {
        let mut any = false;
        for &k in kinds_of(wtype) {
            let t = &mut self.tables[idx(k)];
            if let Some(set) = t.get_mut(path) {
                if set.remove(&w) {
                    any = true;
                    if set.is_empty() {
                        t.remove(path);
                    }
                    if let Some(mine) = self.by_watcher.get_mut(&w) {
                        mine.remove(&(k, path.to_owned()));
                    }
                }
            }
        }
        any
    }

    /// Drops every watch of a connection that went away.
    pub fn remove_watcher(&mut self, w: WatcherId) {
        if let Some(mine) = self.by_watcher.remove(&w) {
            for (k, p) in mine {
                let t = &mut self.tables[idx(k)];
                if let Some(set) = t.get_mut(&p) {
                    set.remove(&w);
                    if set.is_empty() {
                        t.remove(&p);
                    }
                }
            }
        }
    }

    /// Total number of watches (all tables).
    pub fn count(&self) -> usize {
        self.by_watcher.values().map(|s| s.len()).sum()
    }

    /// Number of watched paths in the data-like tables (what `wchs` reports).
    pub fn path_count(&self) -> usize {
        let mut paths: HashSet<&str> = HashSet::new();
        for t in &self.tables {
            paths.extend(t.keys().map(|s| s.as_str()));
        }
        paths.len()
    }

    /// Number of connections holding watches.
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.values().filter(|s| !s.is_empty()).count()
    }

    /// Paths watched by each connection, sorted (for `wchc`).
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v: Vec<_> = self
            .by_watcher
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(&w, s)| {
                let mut p: Vec<String> = s.iter().map(|(_, p)| p.clone()).collect();
                p.sort();
                p.dedup();
                (w, p)
            })
            .collect();
        v.sort();
        v
    }

    /// Watchers of each path, sorted (for `wchp`).
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut m: std::collections::BTreeMap<String, Vec<WatcherId>> = Default::default();
        for t in &self.tables {
            for (p, s) in t {
                m.entry(p.clone()).or_default().extend(s.iter().copied());
            }
        }
        m.into_iter()
            .map(|(p, mut v)| {
                v.sort();
                v.dedup();
                (p, v)
            })
            .collect()
    }
}

/// The tables a WatcherType reaches. As in ZooKeeper 3.8, whose data and child tables hold
/// persistent watches too, removing data or child watches of a path also removes the persistent
/// (and, for data, recursive) ones there.
fn kinds_of(wtype: i32) -> &'static [WatchKind] {
    match wtype {
        watcher_type::CHILDREN => &[WatchKind::Child, WatchKind::Persistent],
        watcher_type::DATA => &[WatchKind::Data, WatchKind::Persistent, WatchKind::Recursive],
        watcher_type::ANY => &[
            WatchKind::Data,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::Recursive,
        ],
        _ => &[],
    }
}

/// Whether ZooKeeper 3.8 knows this WatcherType (Children, Data, Any).
pub fn known_watcher_type(wtype: i32) -> bool {
    matches!(
        wtype,
        watcher_type::CHILDREN | watcher_type::DATA | watcher_type::ANY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_and_persistent() {
        let mut r = WatchRegistry::default();
        r.add(1, WatchKind::Data, "/a");
        r.add(1, WatchKind::Child, "/a");
        r.add(2, WatchKind::Persistent, "/a");
        r.add(3, WatchKind::Recursive, "/");
        assert_eq!(r.trigger(event::NODE_DELETED, "/a"), vec![1, 2, 3]);
        assert_eq!(r.trigger(event::NODE_DELETED, "/a"), vec![2, 3]);
        assert_eq!(
            r.trigger(event::NODE_CHILDREN_CHANGED, "/"),
            Vec::<u64>::new()
        );
        assert_eq!(r.trigger(event::NODE_CHILDREN_CHANGED, "/a"), vec![2]);
        assert!(r.remove(3, watcher_type::ANY, "/"));
        assert!(!r.contains(3, watcher_type::ANY, "/"));
        r.remove_watcher(2);
        assert_eq!(r.count(), 0);
    }
}
