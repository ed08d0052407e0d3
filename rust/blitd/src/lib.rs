//! blitd, the blit daemon: its configuration now; the gRPC service and the
//! data plane build on it.

#![deny(missing_docs)]

pub mod config;
