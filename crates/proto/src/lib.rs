//! The ZooKeeper client wire protocol as Paddock speaks it: jute encoding, every record, opcode,
//! error code, event type and state of ZooKeeper 3.8, and the framing of the client port.
//! No IO lives here, so the server, clients, tools and fuzzers share one codec.

pub mod codes;
pub mod frame;
pub mod fuzzing;
pub mod jute;
pub mod path;
pub mod records;
pub mod request;
pub mod sasl;

pub use codes::{
    add_watch_mode, event, op, perms, protocol, state, watcher_type, xid, CreateMode, ErrorCode,
};
pub use jute::{DecodeError, Field, JuteWrite, Reader, Record};
pub use records::*;
pub use request::{
    decode_multi_response, encode_multi_response, linearizable_body, Create, CreateKind, MultiOp,
    OpResult, ReadOp, Request,
};
