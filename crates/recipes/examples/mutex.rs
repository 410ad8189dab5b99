//! Takes a distributed lock, holds it for a while, releases it.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example mutex -- --server 127.0.0.1:2181 \
//!     [--path /examples/lock] [--hold 5]
//! ```
//!
//! Run two at once: the second waits for the first, and gets a larger fencing token.

use paddock_client::Client;
use paddock_recipes::{Connection, LockLost, Mutex};
use std::time::Duration;

/// `--name value` or `-name value`, else the default.
fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a.trim_start_matches('-') == name && a.starts_with('-'))
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let server = arg("server", "127.0.0.1:2181");
    let path = arg("path", "/examples/lock");
    let hold: u64 = arg("hold", "5").parse()?;
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
