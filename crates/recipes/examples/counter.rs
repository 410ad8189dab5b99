//! A shared counter from the command line.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example counter -- --server 127.0.0.1:2181 \
//!     [--path /examples/counter] [race [WORKERS] [EACH] | get | add N | set N | cas EXPECTED NEW]
//! ```
//!
//! `race` (the default) runs WORKERS sessions (4) that each increment EACH (25) times at once,
//! and shows that no increment was lost.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::Counter;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path"], &[])?;
    let server = args.server();
    let path = args.string("path", "/examples/counter");
    let num = |i: usize, default: i64| args.word_value(i, default);
    let cmd = args.word(0).unwrap_or("race");
    let (a, b) = match cmd {
        "race" => (num(1, 4)?, num(2, 25)?),
        "add" | "set" => (num(1, 1)?, 0),
        "cas" => (num(1, 0)?, num(2, 0)?),
        _ => (0, 0),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let counter = Counter::new(&client, &path);
        match cmd {
            "race" => {
                let before = counter.get().await?;
                let mut tasks = Vec::new();
                for _ in 0..a {
                    let c = Client::connect(&server, Duration::from_secs(10)).await?;
                    let counter = Counter::new(&c, &path);
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..b {
                            counter.increment().await?;
                        }
                        c.close().await;
                        Ok::<_, paddock_recipes::RecipeError>(())
                    }));
                }
                for t in tasks {
                    t.await??;
                }
                let after = counter.get().await?;
                println!(
                    "{a} workers x {b} increments: {before} -> {after} (+{}, expected +{})",
                    after - before,
                    a * b
                );
            }
            "get" => println!("{path} = {}", counter.get().await?),
            "add" => println!("{path} = {}", counter.add(a).await?),
            "set" => {
                counter.set(a).await?;
                println!("{path} = {a}");
            }
            "cas" => {
                let done = counter.compare_and_set(a, b).await?;
                let now = counter.get().await?;
                println!("compare-and-set {a} -> {b}: {done}; {path} = {now}");
            }
            _ => println!(
                "usage: counter [--server host:port] [--path p] \
                 [race [WORKERS] [EACH] | get | add N | set N | cas EXPECTED NEW]"
            ),
        }
        client.close().await;
        Ok(())
    })
}
