//! Workers sharing a few leases of a counting semaphore.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example semaphore -- --server 127.0.0.1:2181 \
//!     [--path /examples/semaphore] [--leases 2] [--workers 5] [--hold 1]
//! ```
//!
//! Starts `--workers` workers, each on a session of its own; each takes one lease, holds it
//! for `--hold` seconds and returns it. Never more than `--leases` hold one at a time (run
//! several copies at once with the same `--leases`: the limit holds across them too).

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::Semaphore;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path", "leases", "workers", "hold"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/semaphore");
    let leases: u32 = args.value("leases", 2)?;
    let workers: usize = args.value("workers", 5)?;
    let hold: u64 = args.value("hold", 1)?;
    println!("{workers} workers, {leases} leases under {path}");

    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let semaphore = Semaphore::new(client.clone(), &path, leases);
            let mut monitor = semaphore.monitor();
            let mut got = semaphore.acquire(1).await?;
            let lease = got.remove(0);
            println!(
                "worker {w}: got a lease (token {}), {} of {leases} held",
                lease.token(),
                semaphore.held().await?
            );
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(hold)) => {}
                // The lease is gone with the session: stop using the resource at once.
                _ = monitor.lost() => {
                    println!("worker {w}: session lost, lease gone");
                    return Ok(());
                }
            }
            lease.release().await?;
            println!("worker {w}: returned its lease");
            client.close().await;
            Ok::<_, paddock_recipes::RecipeError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("all workers done");
    Ok(())
}
