//! Group membership, and service registration and discovery on top of it.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example registry -- --server 127.0.0.1:2181 \
//!     [--path /examples/services] \
//!     [demo | register SERVICE ID ADDRESS | list [SERVICE] | watch SERVICE]
//! ```
//!
//! - `demo` (the default): members join and leave a group while a watcher prints the member
//!   set; then three instances of a service register, a client picks among them round-robin,
//!   and one instance's session is closed: it disappears and, kept registered, comes back on
//!   a new session.
//! - `register`: registers one instance and keeps it registered until Ctrl-C.
//! - `list`: the services, or one service's instances. `watch`: prints a service's instances
//!   each time they change, until Ctrl-C.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::{Group, ServiceInstance, ServiceRegistry, Strategy};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn connect(server: &str) -> Result<Client, BoxError> {
    Ok(Client::connect(server, Duration::from_secs(10)).await?)
}

fn instance(service: &str, id: &str, address: &str) -> ServiceInstance {
    ServiceInstance {
        name: service.to_string(),
        id: id.to_string(),
        address: address.to_string(),
        payload: Vec::new(),
    }
}

fn show(list: &[ServiceInstance]) -> String {
    let v: Vec<String> = list
        .iter()
        .map(|i| format!("{}@{}", i.id, i.address))
        .collect();
    format!("[{}]", v.join(", "))
}

async fn group_demo(server: &str, dir: &str) -> Result<(), BoxError> {
    println!("-- group {dir}");
    let observer = connect(server).await?;
    let mut watch = Group::new(&observer, dir).watch().await?;
    let printer = tokio::spawn(async move {
        loop {
            match watch.next().await {
                Ok(m) => println!("members: {:?}", m.keys().collect::<Vec<_>>()),
                Err(e) => return println!("group watch ended: {e}"),
            }
        }
    });
    let mut members = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let c = connect(server).await?;
        let m = Group::new(&c, dir).join(name, name.as_bytes()).await?;
        println!("{name} joined");
        members.push((c, m));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (c, m) = members.remove(0);
    m.leave().await?;
    println!("alpha left");
    c.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (c, m) = members.remove(0);
    c.close().await;
    m.lost().await;
    println!("beta's session closed: its membership is gone");
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "members now: {:?}",
        Group::new(&observer, dir)
            .members()
            .await?
            .keys()
            .collect::<Vec<_>>()
    );
    printer.abort();
    for (c, m) in members {
        m.leave().await?;
        c.close().await;
    }
    observer.close().await;
    Ok(())
}

async fn registry_demo(server: &str, base: &str) -> Result<(), BoxError> {
    println!("-- service registry {base}");
    let observer = connect(server).await?;
    let registry = ServiceRegistry::new(&observer, base);
    let mut watch = registry.watch("api").await?;
    let printer = tokio::spawn(async move {
        loop {
            match watch.next().await {
                Ok(list) => println!("api instances: {}", show(&list)),
                Err(e) => return println!("instance watch ended: {e}"),
            }
        }
    });

    let mut plain = Vec::new();
    for (id, addr) in [("api-1", "10.0.0.1:8080"), ("api-2", "10.0.0.2:8080")] {
        let c = connect(server).await?;
        let r = ServiceRegistry::new(&c, base)
            .register(&instance("api", id, addr))
            .await?;
        plain.push((c, r));
    }
    // api-3 is kept registered: a lost session is replaced by a new one.
    let first = connect(server).await?;
    let server_for_new = server.to_string();
    let kept = ServiceRegistry::new(&first, base)
        .register(&instance("api", "api-3", "10.0.0.3:8080"))
        .await?
        .keep_registered(move || {
            let server = server_for_new.clone();
            async move {
                println!("api-3: session lost, registering on a new session");
                Client::connect(&server, Duration::from_secs(10)).await.ok()
            }
        });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let provider = registry.provider("api", Strategy::RoundRobin);
    for _ in 0..4 {
        if let Some(i) = provider.pick().await? {
            println!("round-robin pick: {} at {}", i.id, i.address);
        }
    }

    println!("closing api-3's session");
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while kept.path().is_none() || registry.instances("api").await?.len() < 3 {
        if tokio::time::Instant::now() > deadline {
            return Err("api-3 did not come back".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "api-3 registered again at {}",
        kept.path().unwrap_or_default()
    );

    kept.unregister().await?;
    for (c, r) in plain {
        r.unregister().await?;
        c.close().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    printer.abort();
    println!(
        "service directories (empty ones too): {:?}",
        registry.services().await?
    );
    observer.close().await;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    common::init_logging();
    let args = Args::parse(&["path"], &[])?;
    let server = args.server();
    let base = args.string("path", "/examples/services");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let words: Vec<&str> = args.rest().iter().map(String::as_str).collect();
        match words.as_slice() {
            [] | ["demo"] => {
                group_demo(&server, &format!("{base}-group")).await?;
                registry_demo(&server, &base).await?;
            }
            ["register", service, id, address] => {
                let client = connect(&server).await?;
                let reg = ServiceRegistry::new(&client, &base)
                    .register(&instance(service, id, address))
                    .await?;
                println!("registered {}; Ctrl-C to unregister", reg.path());
                let server = server.clone();
                let kept = reg.keep_registered(move || {
                    let server = server.clone();
                    async move { Client::connect(&server, Duration::from_secs(10)).await.ok() }
                });
                tokio::signal::ctrl_c().await?;
                kept.unregister().await?;
                println!("unregistered");
            }
            ["list"] => {
                let client = connect(&server).await?;
                println!(
                    "{:?}",
                    ServiceRegistry::new(&client, &base).services().await?
                );
            }
            ["list", service] => {
                let client = connect(&server).await?;
                let list = ServiceRegistry::new(&client, &base)
                    .instances(service)
                    .await?;
                println!("{service}: {}", show(&list));
            }
            ["watch", service] => {
                let client = connect(&server).await?;
                let mut watch = ServiceRegistry::new(&client, &base).watch(service).await?;
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => break,
                        list = watch.next() => println!("{service}: {}", show(&list?)),
                    }
                }
            }
            _ => println!(
                "usage: registry [--server host:port] [--path base] \
                 [demo | register SERVICE ID ADDRESS | list [SERVICE] | watch SERVICE]"
            ),
        }
        Ok(())
    })
}
