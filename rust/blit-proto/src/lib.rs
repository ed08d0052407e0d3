//! Rust types and tonic service stubs generated from `proto/blit.proto`
//! (package `blit.v2`), and the conversions between them and the core's
//! types that the client and the daemon share.

pub mod convert;

/// The `blit.v2` protocol. Every message and RPC is documented in
/// `proto/blit.proto`.
#[allow(missing_docs)]
pub mod v2 {
    tonic::include_proto!("blit.v2");
}
