//! The watches a client believes it holds, kept as the Java client keeps them, so that a
//! reattach can restore them with setWatches as a real client would.

use paddock_proto::{event, watcher_type, Request, SetWatches2, WatcherEvent};
use std::collections::BTreeSet;

#[derive(Default, Clone)]
pub struct ClientWatches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl ClientWatches {
    /// Registers what a successful (or, for exists, NONODE) reply left behind.
    pub fn on_reply(&mut self, req: &Request, err: i32) {
        const NONODE: i32 = -101;
        match req {
            Request::Exists(r) if r.watch && err == 0 => _ = self.data.insert(r.path.clone()),
            Request::Exists(r) if r.watch && err == NONODE => _ = self.exist.insert(r.path.clone()),
            Request::GetData(r) if r.watch && err == 0 => _ = self.data.insert(r.path.clone()),
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch && err == 0 => {
                _ = self.child.insert(r.path.clone())
            }
            Request::AddWatch(r) if err == 0 => match r.mode {
                0 => _ = self.persistent.insert(r.path.clone()),
                1 => _ = self.recursive.insert(r.path.clone()),
                _ => {}
            },
            Request::RemoveWatches(r) if err == 0 => self.remove(r.watcher_type, &r.path),
            _ => {}
        }
    }

    fn remove(&mut self, kind: i32, path: &str) {
        let any = kind == watcher_type::ANY;
        if kind == watcher_type::CHILDREN || any {
            self.child.remove(path);
        }
        if kind == watcher_type::DATA || any {
            self.data.remove(path);
            self.exist.remove(path);
        }
        if kind == watcher_type::PERSISTENT {
            self.persistent.remove(path);
        }
        if kind == watcher_type::PERSISTENT_RECURSIVE {
            self.recursive.remove(path);
        }
    }

    /// One-shot watches end when they fire; persistent ones stay.
    pub fn on_event(&mut self, e: &WatcherEvent) {
        let p = &e.path;
        match e.event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                self.data.remove(p);
                self.exist.remove(p);
            }
            event::NODE_DELETED => {
                self.data.remove(p);
                self.exist.remove(p);
                self.child.remove(p);
            }
            event::NODE_CHILDREN_CHANGED => _ = self.child.remove(p),
            _ => {}
        }
    }

    /// A setWatches registers its lists (the server fires and drops some at once; those events
    /// then remove them again, so call this before sending).
    pub fn on_set_watches(&mut self, w: &SetWatches2) {
        let add = |s: &mut BTreeSet<String>, v: &[String]| s.extend(v.iter().cloned());
        add(&mut self.data, &w.data_watches);
        add(&mut self.exist, &w.exist_watches);
        add(&mut self.child, &w.child_watches);
        add(&mut self.persistent, &w.persistent_watches);
        add(&mut self.recursive, &w.persistent_recursive_watches);
    }

    pub fn has_persistent(&self) -> bool {
        !self.persistent.is_empty() || !self.recursive.is_empty()
    }

    /// The setWatches a reconnecting client sends.
    pub fn to_request(&self, relative_zxid: i64) -> SetWatches2 {
        let v = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        SetWatches2 {
            relative_zxid,
            data_watches: v(&self.data),
            exist_watches: v(&self.exist),
            child_watches: v(&self.child),
            persistent_watches: v(&self.persistent),
            persistent_recursive_watches: v(&self.recursive),
        }
    }

    /// Paths with a persistent or recursive watch.
    pub fn persistent_paths(&self) -> Vec<String> {
        self.persistent.union(&self.recursive).cloned().collect()
    }

    /// Every watched path, for the generator to aim checkWatches/removeWatches at.
    pub fn paths(&self) -> Vec<String> {
        let all = [
            &self.data,
            &self.exist,
            &self.child,
            &self.persistent,
            &self.recursive,
        ];
        let set: BTreeSet<&String> = all.into_iter().flatten().collect();
        set.into_iter().cloned().collect()
    }
}
