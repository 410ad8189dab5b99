//! A FIFO queue from the command line.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example queue -- --server 127.0.0.1:2181 offer a b c
//! cargo run --release -p paddock-recipes --example queue -- --server 127.0.0.1:2181 take 3
//! ```
//! Items live under `/examples/queue` (`--path` to change it).

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::DistributedQueue;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/queue");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let queue = DistributedQueue::new(&client, &path);
        match args.rest().split_first() {
            Some((cmd, items)) if cmd == "offer" => {
                for item in items {
                    println!("offered {}", queue.offer(item.as_bytes()).await?);
                }
            }
            Some((cmd, n)) if cmd == "take" => {
                let n: usize = n.first().map(|s| s.parse()).transpose()?.unwrap_or(1);
                for _ in 0..n {
                    let item = queue.take().await?;
                    println!("took {}", String::from_utf8_lossy(&item));
                }
            }
            _ => println!("usage: queue [--server host:port] [--path p] offer ITEM... | take [N]"),
        }
        client.close().await;
        Ok(())
    })
}
