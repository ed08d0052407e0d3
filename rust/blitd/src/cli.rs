//! The `blitd` command line, shared by the native binary and the console
//! script that the Python extension provides.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use blit_core::{ErrorKind, Result};
use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::config::Config;
use crate::server::{DEFAULT_SHUTDOWN_TIMEOUT, Server, ServerOptions, check_servable};
use crate::signals::ShutdownSignals;

/// Config file read when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/blit/config.toml";

/// Time that blocking tasks get to return after the server has stopped,
/// for example to remove the temporary file of a cancelled transfer.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The blit daemon: serves the modules of a config file to blit clients.
///
/// blitd listens for gRPC on the config's listen_addr and for data-plane
/// connections on data_port of the same address. SIGTERM or SIGINT stops it
/// gracefully: it accepts no new requests, gives running transfers
/// --shutdown-timeout seconds to finish, and exits 0. Logs go to stderr.
#[derive(Debug, Parser)]
#[command(name = "blitd", version = blit_core::VERSION)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Config file to serve or check; the token commands read its
    /// token_file.
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// Validate the config file, and the [daemon.tls] certificate and key
    /// that it names, and exit without serving: prints
    /// "config OK: N modules" and exits 0, or prints the error with the
    /// file, line and key, and exits 1.
    #[arg(long)]
    check_config: bool,

    /// Log filter: error, warn, info, debug or trace, or per-target
    /// directives such as "blitd=debug,h2=warn". Overrides the RUST_LOG
    /// environment variable. Default: info.
    #[arg(long, value_name = "FILTER", value_parser = parse_log_filter)]
    log_level: Option<String>,

    /// Seconds that running transfers get to finish after SIGTERM or
    /// SIGINT; those still running then are cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT.as_secs())]
    shutdown_timeout: u64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Manage the bearer tokens that clients authenticate with. The store
    /// is the token_file of the config's [daemon] table; a running daemon
    /// picks up changes within two seconds.
    Token {
        #[command(subcommand)]
        action: crate::token_cli::TokenAction,
    },
    /// Create TLS certificates for [daemon.tls].
    Tls {
        #[command(subcommand)]
        action: crate::tls_cli::TlsAction,
    },
}

/// Runs blitd with the given command line, whose first element is the
/// program name, as in `std::env::args_os()`, and returns the exit status.
///
/// Exit status: 0 after `--help`, `--version`, a valid `--check-config` or a
/// graceful shutdown; 1 when the config is invalid or the daemon cannot
/// start or fails; 2 for invalid arguments.
pub fn run_with_args(args: Vec<OsString>) -> u8 {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(err) => {
            // clap prints help and version to stdout and errors to stderr.
            let _ = err.print();
            return u8::try_from(err.exit_code()).unwrap_or(2);
        }
    };
    match &args.command {
        Some(Command::Token { action }) => return crate::token_cli::run(&args.config, action),
        Some(Command::Tls { action }) => return crate::tls_cli::run(action),
        None => {}
    }
    if args.check_config {
        return check_config(&args.config);
    }

    init_logging(args.log_level.as_deref());
    let options = ServerOptions {
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        ..ServerOptions::default()
    };
    match run(&args.config, options) {
        Ok(()) => 0,
        Err(err) => {
            error!("blitd cannot serve: {err}");
            1
        }
    }
}

/// Runs blitd as [`run_with_args`] does, for a binary's `main`.
pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    ExitCode::from(run_with_args(args))
}

/// Loads the config, serves it until SIGTERM or SIGINT, and stops.
fn run(config_path: &Path, options: ServerOptions) -> Result<()> {
    let config = load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("blitd")
        .build()
        .map_err(|err| {
            blit_core::Error::new(
                ErrorKind::Internal,
                format!("cannot start the tokio runtime: {err}"),
            )
        })?;
    let result = runtime.block_on(async {
        let mut signals = ShutdownSignals::install()?;
        let server = Server::start(config, options).await?;
        server
            .run_until(async move {
                let signal = signals.recv().await;
                info!(signal, "received {signal}; shutting down");
            })
            .await
    });
    runtime.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    result.map(|_outcome| ())
}

fn check_config(path: &Path) -> u8 {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("blitd: {err}");
            return 1;
        }
    };
    if let Err(err) = check_servable(&config) {
        eprintln!("blitd: {err}");
        return 1;
    }
    let count = config.modules.len();
    let noun = if count == 1 { "module" } else { "modules" };
    println!("config OK: {count} {noun}");
    0
}

fn load_config(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|err| {
        if err.kind() == ErrorKind::NotFound {
            let message = format!("{}; pass --config FILE to use another file", err.message());
            blit_core::Error::new(ErrorKind::NotFound, message).with_path(path)
        } else {
            err
        }
    })
}

fn parse_log_filter(directives: &str) -> std::result::Result<String, String> {
    EnvFilter::builder()
        .parse(directives)
        .map(|_| directives.to_string())
        .map_err(|err| {
            format!("invalid log filter: {err}; use a level such as info or debug, or blitd=debug")
        })
}

/// Installs the stderr log subscriber, unless the process has one already
/// (as when the Python extension runs blitd in an interpreter that set one).
fn init_logging(log_level: Option<&str>) {
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    let filter = match log_level {
        // `parse_log_filter` has validated the directives.
        Some(directives) => builder.parse_lossy(directives),
        None => match std::env::var("RUST_LOG") {
            Ok(directives) => builder.parse(&directives).unwrap_or_else(|err| {
                eprintln!("blitd: warning: ignoring invalid RUST_LOG ({err}); logging at info");
                EnvFilter::new("info")
            }),
            Err(_) => builder.parse_lossy(""),
        },
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_definition_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_apply() {
        let args = Args::try_parse_from(["blitd"]).unwrap();
        assert_eq!(args.config, Path::new(DEFAULT_CONFIG_PATH));
        assert!(!args.check_config);
        assert_eq!(args.log_level, None);
        assert_eq!(args.shutdown_timeout, 30);
    }

    #[test]
    fn invalid_log_filter_rejected() {
        let err = Args::try_parse_from(["blitd", "--log-level", "blitd=loud"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("invalid log filter"), "{err}");
    }
}
