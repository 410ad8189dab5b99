//! Takes a distributed lock, holds it for a while, releases it.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example mutex -- --server 127.0.0.1:2181 \
//!     [--path /examples/lock] [--hold 5]
//! ```
//!
//! Run two at once: the second waits for the first, and gets a larger fencing token.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::{Connection, LockLost, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path", "hold"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/lock");
    let hold: u64 = args.value("hold", 5)?;
    let client = Client::connect(&server, Duration::from_secs(10)).await?;

    let lock = Mutex::new(client.clone(), &path);
    println!("waiting for {path}");
    let token = lock.acquire().await?;
    println!(
        "holding {path} as {} with fencing token {token}",
        lock.node().unwrap_or_default()
    );

    // Work while the lock holds: stop at once if it is lost, pause while suspended.
    let mut monitor = lock.monitor();
    let work = tokio::time::sleep(Duration::from_secs(hold));
    tokio::pin!(work);
    loop {
        tokio::select! {
            _ = &mut work => break,
            why = lock.lost() => {
                if why != LockLost::NotHeld {
                    println!("lock lost ({why:?}): stopping");
                    return Ok(());
                }
            }
            c = monitor.changed() => match c {
                Connection::Suspended => println!("connection suspended: pausing"),
                Connection::Connected => println!("reconnected: resuming"),
                Connection::Lost => println!("session lost"),
            },
        }
    }
    lock.release().await?;
    println!("released");
    client.close().await;
    Ok(())
}
