//! A barrier and a double barrier.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example barrier -- --server 127.0.0.1:2181 \
//!     [--path /examples/barrier] [demo | set | wait | remove | double N]
//! ```
//!
//! - `demo` (the default): in one process, sets a barrier that three waiters block on and
//!   removes it, then runs three members through a double barrier for three.
//! - `set`, `wait`, `remove`: one step of the barrier at `--path`, to run from several shells.
//! - `double N`: one member of the double barrier at `--path` for N members; start N of them.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::{Barrier, DoubleBarrier, RecipeError};
use std::time::Duration;

async fn connect(server: &str) -> Result<Client, Box<dyn std::error::Error>> {
    Ok(Client::connect(server, Duration::from_secs(10)).await?)
}

/// One member of a double barrier: enter, work a little, leave.
async fn member(client: &Client, path: &str, n: usize, me: &str) -> Result<(), RecipeError> {
    let barrier = DoubleBarrier::new(client, path, n)?;
    println!("{me}: entering");
    barrier.enter().await?;
    println!("{me}: in, all {n} members entered");
    tokio::time::sleep(Duration::from_millis(100 + 200 * rand_ish(me))).await;
    println!("{me}: done, leaving");
    barrier.leave().await?;
    println!("{me}: left, all {n} members are out");
    Ok(())
}

/// A small per-member spread of work times, without a random number generator.
fn rand_ish(s: &str) -> u64 {
    s.bytes().map(u64::from).sum::<u64>() % 4
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/barrier");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = connect(&server).await?;
        let barrier = Barrier::new(&client, &path);
        match args.word(0).unwrap_or("demo") {
            "set" => println!("{path}: set (newly: {})", barrier.set().await?),
            "remove" => {
                barrier.remove().await?;
                println!("{path}: removed");
            }
            "wait" => {
                println!("{path}: waiting (set: {})", barrier.is_set().await?);
                barrier.wait().await?;
                println!("{path}: released");
            }
            "double" => {
                let n: usize = args.word_value(1, 2)?;
                let me = format!("pid {}", std::process::id());
                member(&client, &path, n, &me).await?;
            }
            "demo" => {
                barrier.set().await?;
                println!("barrier {path} set");
                let mut waiters = Vec::new();
                for i in 0..3 {
                    let c = connect(&server).await?;
                    let path = path.clone();
                    waiters.push(tokio::spawn(async move {
                        let r = Barrier::new(&c, &path)
                            .wait_within(Duration::from_secs(30))
                            .await;
                        println!("waiter {i}: released ({r:?})");
                        c.close().await;
                        r
                    }));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                println!("removing the barrier");
                barrier.remove().await?;
                for w in waiters {
                    w.await??;
                }

                let double = format!("{path}-double");
                println!("double barrier {double} for 3 members");
                let mut members = Vec::new();
                for i in 0..3 {
                    let c = connect(&server).await?;
                    let double = double.clone();
                    members.push(tokio::spawn(async move {
                        // Staggered arrivals: nobody gets in before the third.
                        tokio::time::sleep(Duration::from_millis(300 * i)).await;
                        let r = member(&c, &double, 3, &format!("member {i}")).await;
                        c.close().await;
                        r
                    }));
                }
                for m in members {
                    m.await??;
                }
            }
            other => println!(
                "unknown command {other:?}; usage: barrier [--server host:port] [--path p] \
                 [demo | set | wait | remove | double N]"
            ),
        }
        client.close().await;
        Ok(())
    })
}
