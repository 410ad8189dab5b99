//! Group membership and service discovery against a real server.

mod support;

use paddock_recipes::group::Members;
use paddock_recipes::registry::InstanceWatch;
use paddock_recipes::{Group, MembershipWatch, ServiceInstance, ServiceRegistry, Strategy};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{expire_behind, Proxy, Target, SHORT_SESSION};

/// Reads member sets until one satisfies `want` (sets in between are fine: watches fold).
async fn members_until(w: &mut MembershipWatch, what: &str, want: impl Fn(&Members) -> bool) {
    let r = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            let m = w.next().await.unwrap();
            if want(&m) {
                return;
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "timed out waiting for {what}; last {:?}",
        w.last()
    );
}

fn names(m: &Members) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sees_join_leave_and_expiry() {
    let t = Target::start("group").await;
    let watcher = t.client().await;
    let group = Group::new(&watcher, &t.path("workers"));
    let mut w = group.watch().await.unwrap();
    assert!(w.next().await.unwrap().is_empty());

    let a = t.client().await;
    let alice = Group::new(&a, &t.path("workers"))
        .join("alice", b"a-data")
        .await
        .unwrap();
    members_until(&mut w, "alice", |m| names(m) == ["alice"]).await;
    assert_eq!(w.last().unwrap()["alice"], b"a-data");

    // Behind a proxy, so that the test can expire its session.
    let proxy = Proxy::start(&t.addr).await;
    let b = support::connect(&proxy.addr, SHORT_SESSION).await;
    let bob_group = Group::new(&b, &t.path("workers"));
    let bob = bob_group.join("bob", b"b-data").await.unwrap();
    members_until(&mut w, "alice and bob", |m| names(m) == ["alice", "bob"]).await;
    // Names are unique across sessions.
    assert!(Group::new(&a, &t.path("workers"))
        .join("bob", b"impostor")
        .await
        .is_err());

    alice.leave().await.unwrap();
    members_until(&mut w, "alice gone", |m| names(m) == ["bob"]).await;

    // An expired member disappears, and its holder learns it lost the membership.
    expire_behind(&proxy, &t.addr, &b).await;
    members_until(&mut w, "bob expired", |m| m.is_empty()).await;
    tokio::time::timeout(Duration::from_secs(5), bob.lost())
        .await
        .expect("member told of the lost session");
    assert!(group.members().await.unwrap().is_empty());
}

fn instance(id: &str, address: &str) -> ServiceInstance {
    ServiceInstance {
        name: "api".into(),
        id: id.into(),
        address: address.into(),
        payload: format!("payload of {id}").into_bytes(),
    }
}

async fn ids_until(w: &mut InstanceWatch, want: &[&str]) {
    let r = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            let v = w.next().await.unwrap();
            if v.iter().map(|i| i.id.as_str()).collect::<Vec<_>>() == want {
                return v;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "timed out waiting for instances {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_sees_instances_come_and_go() {
    let t = Target::start("registry").await;
    let base = t.path("services");
    let d = t.client().await;
    let discovery = ServiceRegistry::new(&d, &base);
    let mut w = discovery.watch("api").await.unwrap();
    assert!(w.next().await.unwrap().is_empty());

    let c1 = t.client().await;
    let r1 = ServiceRegistry::new(&c1, &base)
        .register(&instance("i1", "10.0.0.1:80"))
        .await
        .unwrap();
    let proxy = Proxy::start(&t.addr).await;
    let c2 = support::connect(&proxy.addr, SHORT_SESSION).await;
    let r2 = ServiceRegistry::new(&c2, &base)
        .register(&instance("i2", "10.0.0.2:80"))
        .await
        .unwrap();
    ids_until(&mut w, &["i1", "i2"]).await;
    let all = discovery.instances("api").await.unwrap();
    assert_eq!(
        all,
        vec![instance("i1", "10.0.0.1:80"), instance("i2", "10.0.0.2:80")]
    );
    assert_eq!(discovery.services().await.unwrap(), ["api"]);

    // Round-robin visits every instance in turn; random only picks existing ones.
    let rr = discovery.provider("api", Strategy::RoundRobin);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(rr.pick().await.unwrap().unwrap().id);
    }
    assert_eq!(got, ["i1", "i2", "i1", "i2"]);
    let random = discovery.provider("api", Strategy::Random);
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        seen.insert(random.pick().await.unwrap().unwrap().id);
    }
    assert_eq!(seen, BTreeSet::from(["i1".to_string(), "i2".to_string()]));

    // i2 is kept registered across sessions: after its session expires it comes back.
    let addr = t.addr.clone();
    let kept = r2.keep_registered(move || {
        let addr = addr.clone();
        async move { Some(support::connect(&addr, SHORT_SESSION).await) }
    });
    r1.unregister().await.unwrap();
    ids_until(&mut w, &["i2"]).await;
    expire_behind(&proxy, &t.addr, &c2).await;
    ids_until(&mut w, &[]).await;
    ids_until(&mut w, &["i2"]).await;
    support::eventually(Duration::from_secs(5), "kept registration path", || async {
        kept.path().is_some()
    })
    .await;
    kept.unregister().await.unwrap();
    ids_until(&mut w, &[]).await;
    assert_eq!(
        discovery
            .provider("api", Strategy::RoundRobin)
            .pick()
            .await
            .unwrap(),
        None
    );
}
