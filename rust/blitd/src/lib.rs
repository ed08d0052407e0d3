//! blitd, the blit daemon: serves the modules of a config file over a gRPC
//! control plane and a TCP data plane.
//!
//! The `blitd` binary calls [`main_with_args`] and the Python extension's
//! console script calls [`run_with_args`]. Tests and embedders start a
//! [`Server`] directly:
//!
//! ```no_run
//! # async fn example(config: blitd::config::Config) -> blit_core::Result<()> {
//! let server = blitd::Server::start(config, blitd::ServerOptions::default()).await?;
//! println!("control plane on {}", server.control_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod auth;
mod browse;
mod cli;
pub mod config;
mod data_plane;
mod data_stream;
pub mod grants;
pub mod hosts;
mod limits;
mod log_limit;
mod modules;
mod pull;
mod push;
mod server;
mod service;
mod sessions;
mod signals;
mod state;
mod tls;
mod tls_cli;
mod token_cli;
pub mod tokens;

pub use cli::{DEFAULT_CONFIG_PATH, main_with_args, run_with_args};
pub use server::{
    DEFAULT_DATA_TOKEN_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, Server, ServerOptions, ShutdownOutcome,
    check_servable,
};
pub use service::{BlitService, ResponseStream};
pub use sessions::SessionGuard;
pub use signals::ShutdownSignals;
pub use state::DaemonState;
