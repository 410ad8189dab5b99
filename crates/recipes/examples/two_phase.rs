//! A two-phase commit between a coordinator and participants.
//!
//! ```text
//! cargo run --release -p paddock-recipes --example two_phase -- --server 127.0.0.1:2181 \
//!     [--path /examples/2pc] [--participants db,search,cache] [--abort search] [--within 10]
//! ```
//!
//! Each participant runs on a session of its own: it waits for the proposal, votes commit
//! (or abort, if named by `--abort`), and waits for the outcome. The coordinator decides
//! within `--within` seconds, prints its decision and removes the transaction.

mod common;

use common::Args;
use paddock_client::Client;
use paddock_recipes::two_phase::Vote;
use paddock_recipes::{Coordinator, Participant};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_logging();
    let args = Args::parse(&["path", "participants", "abort", "within"], &[])?;
    let server = args.server();
    let base = args.string("path", "/examples/2pc");
    let names = args.string("participants", "db,search,cache");
    let names: Vec<String> = names.split(',').map(str::to_string).collect();
    let abort = args.string("abort", "");
    let within = Duration::from_secs(args.value("within", 10)?);
    let id = format!("tx-{}", std::process::id());

    // Participants first: they wait for the proposal to appear.
    let mut tasks = Vec::new();
    for name in &names {
        let client = Client::connect(&server, Duration::from_secs(10)).await?;
        let p = Participant::new(&client, &base, &id, name);
        let name = name.clone();
        let vote = if name == abort {
            Vote::Abort
        } else {
            Vote::Commit
        };
        tasks.push(tokio::spawn(async move {
            let proposal = p.proposal(within).await?;
            println!(
                "{name}: proposal {:?}, voting {vote:?}",
                String::from_utf8_lossy(&proposal)
            );
            p.vote(vote).await?;
            let outcome = p.outcome(within).await?;
            println!("{name}: outcome {outcome:?}");
            client.close().await;
            Ok::<_, paddock_recipes::RecipeError>(())
        }));
    }

    let client = Client::connect(&server, Duration::from_secs(10)).await?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tx = Coordinator::new(&client, &base)
        .begin(&id, &refs, b"rename user 7 to ada")
        .await?;
    println!("coordinator: proposed {} to {names:?}", tx.path());
    let decision = tx.decide(within).await?;
    println!(
        "coordinator: {decision:?}, outcome {:?}",
        decision.outcome()
    );
    for t in tasks {
        t.await??;
    }
    tx.remove().await?;
    println!("coordinator: removed {}", tx.path());
    client.close().await;
    Ok(())
}
