//! A FIFO queue from the command line.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example queue -- --server 127.0.0.1:2181 offer a b c
//! cargo run --release -p paddock-recipes --example queue -- --server 127.0.0.1:2181 take 3
//! ```
//! Items live under `/examples/queue` (`--path` to change it).

use paddock_client::Client;
use paddock_recipes::DistributedQueue;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut server = "127.0.0.1:2181".to_string();
    let mut path = "/examples/queue".to_string();
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" | "-server" => server = args.next().ok_or("--server needs host:port")?,
            "--path" => path = args.next().ok_or("--path needs a path")?,
            _ => rest.push(a),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let queue = DistributedQueue::new(&client, &path);
        match rest.split_first() {
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
