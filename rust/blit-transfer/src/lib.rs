//! Both ends of a networked transfer, independent of the transport.
//!
//! A sender walks its tree into a manifest ([`manifest`]) and, for the
//! entries that the receiver requests, writes their bytes as frames
//! ([`frame`]) to data connections ([`sender`]). A receiver applies each
//! manifest batch to its destination as it arrives, replies with the
//! indices it needs, and writes incoming frames to files ([`receiver`]).
//! The daemon and the client drive these over gRPC and TCP; every peer path
//! is checked by [`paths`] before it touches the file system.

#![deny(missing_docs)]

pub mod chunks;
pub mod frame;
pub mod manifest;
pub mod paths;
pub mod receiver;
pub mod sender;

pub use manifest::{Entry, EntryKind};
