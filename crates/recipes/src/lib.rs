//! Coordination recipes on the Paddock client, for Paddock and Apache ZooKeeper alike.
//!
//! ZooKeeper offers mechanisms (ephemeral and sequential nodes, watches, versions), not locks or
//! elections; this crate builds those on [`paddock_client::Client`].
//!
//! # What every recipe guarantees, and what none can
//!
//! - Locks and elections hand out a [`FencingToken`]: the zxid that created the holder's node.
//!   Tokens grow from one holder to the next. Mutual exclusion holds *in ZooKeeper's order of
//!   events*; a process paused (GC, SIGSTOP, a slow disk) can still believe it holds a lock its
//!   expired session lost long ago. No lock service prevents that; the protected resource must
//!   check the token and refuse one lower than the highest it has seen.
//! - Every recipe follows its session ([`SessionMonitor`]): **suspended** (disconnected, the
//!   session may live on) and **lost** (expired, closed, or unreachable for a whole session
//!   timeout, the client's `PresumedLost`). Holders are told of both; on *lost* they must stop.
//! - A create whose reply is lost (CONNECTIONLOSS) is not blindly repeated: the node name
//!   carries the session id and a nonce ([`Protection`]), and the recipe looks for it first.

pub mod connection;
pub mod election;
pub mod error;
pub mod latch;
pub mod mutex;
pub mod nodes;
pub mod rwlock;
pub mod semaphore;
mod sequential;

pub use connection::{Connection, SessionMonitor};
pub use election::{LeaderSelector, Leadership, TermEnd};
pub use error::{RecipeError, Result};
pub use latch::{LatchEvent, LatchLoss, LatchOptions, LatchState, LeaderLatch};
pub use mutex::{LockLost, Mutex};
pub use nodes::{FencingToken, Protection};
pub use rwlock::RwLock;
pub use semaphore::{Lease, Semaphore};

// Barriers, queues, counters, membership, discovery, caches and two-phase commit.
pub mod barrier;
pub mod config_watch;
pub mod counter;
pub mod double_barrier;
pub mod group;
pub mod queue;
pub mod registry;
pub mod tree_cache;
pub mod two_phase;
mod watching;

pub use barrier::Barrier;
pub use config_watch::ConfigWatch;
pub use counter::Counter;
pub use double_barrier::DoubleBarrier;
pub use group::{Group, Membership, MembershipWatch};
pub use queue::{DistributedQueue, PriorityQueue};
pub use registry::{ServiceInstance, ServiceRegistry, Strategy};
pub use tree_cache::{TreeCache, TreeEvent};
pub use two_phase::{Coordinator, Participant, Transaction};
