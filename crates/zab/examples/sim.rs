//! The simulator's command line without building the whole server:
//! `cargo run --release -p paddock-zab --example sim -- --seeds 100`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(paddock_zab::sim::cli::main(&args));
}
