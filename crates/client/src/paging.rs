//! Listing children a page at a time: Paddock's getChildrenPage where the server speaks it,
//! one getChildren where it does not (ZooKeeper). A node with more children than fit in one
//! reply under `jute.maxbuffer` can then be listed whole, and nothing ZooKeeper does not know
//! is ever sent to it: the session fails a page request locally when the server it is on did
//! not announce paging in its handshake (`paddock_proto::protocol`).

use crate::watch::{OneshotWatch, PendingWatch, WatchKind};
use crate::{Client, Error, Result};
use paddock_proto::request::Request;
use paddock_proto::{
    protocol, ErrorCode, GetChildrenPageRequest, GetChildrenPageResponse, Reader, Record, Stat,
};
use tokio::sync::oneshot;

/// One page of a node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenPage {
    /// Names, in name (byte) order.
    pub children: Vec<String>,
    /// The parent's Stat when the page was read.
    pub stat: Stat,
    /// Whether children sort after the last name of this page.
    pub more: bool,
}

/// A whole listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Every child, in name order when the server paged (a ZooKeeper server's order when not).
    pub children: Vec<String>,
    /// The parent's Stat as the listing's first read saw it.
    pub stat: Stat,
    /// Whether no child was created or deleted while the listing was taken (every page saw
    /// the same `cversion`); always true for a listing taken in one reply.
    pub consistent: bool,
}

impl Client {
    /// Whether the server of the current connection pages children (Paddock's
    /// getChildrenPage). Learnt at each connection; `list_children` decides by itself.
    pub fn server_pages_children(&self) -> bool {
        self.inner.shared.info.lock().expect("info lock").protocol >= protocol::PAGING
    }

    /// One page of `path`'s children: up to `max` names (0: as many as the server sends in
    /// one page) that sort after `after` ("" for the first page). A server that does not page
    /// fails it with UNIMPLEMENTED, without anything sent.
    pub async fn get_children_page(
        &self,
        path: &str,
        after: &str,
        max: i32,
    ) -> Result<ChildrenPage> {
        self.page(path, after, max, None).await
    }

    async fn page(
        &self,
        path: &str,
        after: &str,
        max: i32,
        w: Option<PendingWatch>,
    ) -> Result<ChildrenPage> {
        let sp = self.server_path(path)?;
        let req = Request::GetChildrenPage(GetChildrenPageRequest {
            path: sp.clone(),
            after: after.to_owned(),
            max,
            watch: w.is_some(),
        });
        let r = self.call_ok(req, sp, w).await?;
        let p = GetChildrenPageResponse::decode(&mut Reader::new(&r.body))?;
        Ok(ChildrenPage {
            children: p.children,
            stat: p.stat,
            more: p.more,
        })
    }

    /// Every child of `path`, on a server of any kind and at any child count: page by page
    /// where the server pages, else by one getChildren.
    pub async fn list_children(&self, path: &str) -> Result<Vec<String>> {
        Ok(self.listing(path, false).await?.0.children)
    }

    /// `list_children` with the parent's Stat and whether the listing is consistent.
    pub async fn list_children2(&self, path: &str) -> Result<Listing> {
        Ok(self.listing(path, false).await?.0)
    }

    /// `list_children` with a child watch, set when the listing starts: a change during the
    /// listing fires it too, so a caller that waits on it never misses one.
    pub async fn list_children_w(&self, path: &str) -> Result<(Vec<String>, Stat, OneshotWatch)> {
        let (l, w) = self.listing(path, true).await?;
        let w = w.expect("a watched listing has a watch");
        Ok((l.children, l.stat, w))
    }

    async fn listing(&self, path: &str, watch: bool) -> Result<(Listing, Option<OneshotWatch>)> {
        // A fresh watch for each first request tried: one that failed took its own with it.
        let watch_for = || {
            watch.then(|| {
                let (tx, rx) = oneshot::channel();
                (
                    PendingWatch::Oneshot(WatchKind::Child, tx),
                    OneshotWatch { rx },
                )
            })
        };
        let whole = |w: Option<(PendingWatch, OneshotWatch)>| async move {
            let (pending, handle) = w.map_or((None, None), |(p, h)| (Some(p), Some(h)));
            let (children, stat) = self.children_inner(path, pending).await?;
            let l = Listing {
                children,
                stat,
                consistent: true,
            };
            Ok::<_, Error>((l, handle))
        };
        if !self.server_pages_children() {
            return whole(watch_for()).await;
        }
        let (pending, handle) = watch_for().map_or((None, None), |(p, h)| (Some(p), Some(h)));
        let first = match self.page(path, "", 0, pending).await {
            Ok(p) => p,
            // The session moved to a server that does not page since we looked.
            Err(Error::Code(ErrorCode::Unimplemented)) => return whole(watch_for()).await,
            Err(e) => return Err(e),
        };
        let stat = first.stat.clone();
        let mut consistent = true;
        let mut children = first.children;
        let mut more = first.more;
        while more {
            let after = children.last().cloned().unwrap_or_default();
            let p = match self.page(path, &after, 0, None).await {
                Ok(p) => p,
                // The same, mid-listing: the rest in one reply (the watch is already set).
                Err(Error::Code(ErrorCode::Unimplemented)) => {
                    let (l, _) = whole(None).await?;
                    return Ok((l, handle));
                }
                Err(e) => return Err(e),
            };
            consistent &= p.stat.cversion == stat.cversion;
            children.extend(p.children);
            more = p.more;
        }
        let l = Listing {
            children,
            stat,
            consistent,
        };
        Ok((l, handle))
    }
}
