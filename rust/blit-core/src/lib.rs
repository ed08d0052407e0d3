//! blit's core: the local copy and mirror engine, addresses, exclude
//! filters, progress and cancellation, and the one error type that the
//! Python module, the CLI, the daemon and the C ABI all map from.
//!
//! The entry point for local transfers is [`run_local`].

#![deny(missing_docs)]

pub mod address;
pub mod error;
pub mod filter;
pub mod fsops;
mod local;
pub mod progress;
pub mod summary;

pub use address::{Address, RemoteAddress};
pub use error::{Error, ErrorKind, Result};
pub use filter::Filter;
pub use local::{LocalOptions, MAX_THREADS, default_threads, run_local};
pub use progress::{CancelToken, Phase, Progress, ProgressSnapshot};
pub use summary::{Change, ChangeKind, Failure, Summary};

/// The version of blit, shared by every surface.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
