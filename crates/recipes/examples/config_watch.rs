//! Prints a node's data every time it changes (or is deleted / re-created).
//!
//! ```text
//! cargo run --release -p paddock-recipes --example config_watch -- --server 127.0.0.1:2181 /app/config
//! ```

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::ConfigWatch;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&[], &[])?;
    let server = args.server();
    // Any other word names the node; the last one wins.
    let path = args
        .rest()
        .last()
        .map_or("/examples/config", String::as_str)
        .to_string();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let watch = ConfigWatch::start(&client, &path).await?;
        let mut rx = watch.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Some((data, stat)) => println!(
                    "{path} = {:?} (version {})",
                    String::from_utf8_lossy(data),
                    stat.version
                ),
                None => println!("{path} does not exist"),
            }
            if rx.changed().await.is_err() {
                println!("session lost");
                return Ok(());
            }
        }
    })
}
