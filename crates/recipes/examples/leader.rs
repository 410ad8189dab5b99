//! Takes part in a leader election.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example leader -- --server 127.0.0.1:2181 \
//!     [--path /examples/election] [--id me] [--term 3] [--latch]
//! ```
//!
//! By default a `LeaderSelector` that leads for `--term` seconds, then requeues; with
//! `--latch` a `LeaderLatch` that stays in the election and prints every change of
//! leadership. Stop with Ctrl-C. Run several to watch leadership move between them.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::{LatchEvent, LeaderLatch, LeaderSelector};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path", "id", "term"], &["latch"])?;
    let server = args.server();
    let path = args.string("path", "/examples/election");
    let id = args.string("id", &format!("pid-{}", std::process::id()));
    let term: u64 = args.value("term", 3)?;
    let client = Client::connect(&server, Duration::from_secs(10)).await?;

    if args.flag("latch") {
        let latch = LeaderLatch::start(client.clone(), &path, &id).await?;
        let mut events = latch.subscribe();
        println!("{id}: in the latch at {path}");
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                ev = events.recv() => match ev? {
                    LatchEvent::Gained(token) => println!("{id}: leader, token {token}"),
                    LatchEvent::Lost { token, why } => {
                        println!("{id}: no longer leader (token {token}): {why:?}")
                    }
                },
            }
        }
        latch.close().await?;
    } else {
        let selector = LeaderSelector::new(client.clone(), &path, &id).requeue(true);
        let run = selector.run(|leadership| {
            let id = id.clone();
            async move {
                println!("{id}: leading with token {}", leadership.token());
                tokio::time::sleep(Duration::from_secs(term)).await;
                println!("{id}: relinquishing");
            }
        });
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            r = run => println!("{id}: election ended: {r:?}"),
        }
    }
    client.close().await;
    Ok(())
}
