//! Mirrors a subtree and prints every change of it.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example tree_cache -- --server 127.0.0.1:2181 /app
//! ```

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::{TreeCache, TreeEvent};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&[], &[])?;
    let server = args.server();
    // Any other word names the node; the last one wins.
    let root = args.rest().last().map_or("/", String::as_str).to_string();
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
