//! `paddock bench`: a pipelined load generator for any ZooKeeper-compatible server.

/// Entry point of `paddock bench <args>`.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("paddock bench is not built yet (args: {args:?})")
}
