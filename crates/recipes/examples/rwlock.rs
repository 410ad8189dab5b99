//! Readers sharing a read/write lock, writers taking it alone.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example rwlock -- --server 127.0.0.1:2181 \
//!     [--path /examples/rwlock] [--readers 4] [--writers 2] [--hold 500]
//! ```
//!
//! Queues half the readers, one writer, the other readers and the other writers, each on a
//! session of its own; each holds the lock for `--hold` milliseconds. The output shows the
//! readers of each group overlapping, every writer alone, and everyone served in the order
//! they queued, each with its fencing token.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path", "readers", "writers", "hold"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/rwlock");
    let readers: usize = args.value("readers", 4)?;
    let writers: usize = args.value("writers", 2)?;
    let hold = Duration::from_millis(args.value("hold", 500)?);

    // How many hold the lock in this process right now (readers and writers).
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Queue order: half the readers, a writer, the other readers, the other writers.
    let half = readers.div_ceil(2);
    let order = (0..half)
        .map(|i| ("reader", i))
        .chain((0..writers.min(1)).map(|i| ("writer", i)))
        .chain((half..readers).map(|i| ("reader", i)))
        .chain((1..writers).map(|i| ("writer", i)));
    for (kind, i) in order {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let rw = RwLock::new(client.clone(), &path);
        let inside = inside.clone();
        let name = format!("{kind} {i}");
        let lock = if kind == "reader" {
            rw.read_lock()
        } else {
            rw.write_lock()
        };
        tasks.push(tokio::spawn(async move {
            let token = lock.acquire().await?;
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            println!("{name}: in (token {token}), {n} holding");
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                why = lock.lost() => println!("{name}: lock lost ({why:?}), stopping"),
            }
            inside.fetch_sub(1, Ordering::SeqCst);
            println!("{name}: out");
            lock.release().await?;
            client.close().await;
            Ok::<_, paddock_recipes::RecipeError>(())
        }));
        // Let each contender queue before the next, so the order is the one above.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.await??;
    }
    println!("done");
    Ok(())
}
