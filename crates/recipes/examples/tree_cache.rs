//! Mirrors a subtree and prints every change of it.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example tree_cache -- --server 127.0.0.1:2181 /app
//! ```

use paddock_client::Client;
use paddock_recipes::{TreeCache, TreeEvent};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut server = "127.0.0.1:2181".to_string();
    let mut root = "/".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" | "-server" => server = args.next().ok_or("--server needs host:port")?,
            p => root = p.to_string(),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let (cache, mut events) = TreeCache::start(&client, &root).await?;
        while let Some(ev) = events.recv().await {
            match ev {
                TreeEvent::Added { path, node } => {
                    println!("added   {path} = {:?}", String::from_utf8_lossy(&node.data))
                }
                TreeEvent::Updated { path, node } => {
                    println!("updated {path} = {:?}", String::from_utf8_lossy(&node.data))
                }
                TreeEvent::Removed { path } => println!("removed {path}"),
                TreeEvent::Initialized => {
                    println!("initialized: {} nodes", cache.snapshot().len())
                }
            }
        }
        println!("session lost");
        Ok(())
    })
}
