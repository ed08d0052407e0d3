//! Rust types and tonic service stubs generated from `proto/blit.proto`
//! (package `blit.v2`). Every message and RPC is documented there.

#![allow(missing_docs)]

/// The `blit.v2` protocol.
pub mod v2 {
    tonic::include_proto!("blit.v2");
}
