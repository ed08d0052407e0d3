//! The daemon's TOML configuration (`/etc/blit/config.toml`).
//!
//! ```toml
//! [daemon]
//! listen_addr = "127.0.0.1:50051"   # control plane (gRPC)
//! data_port = 50052                 # TCP data plane, same address
//! auth = "token"                    # or "none", on a loopback address only
//! token_file = "/var/lib/blit/tokens.toml"
//!
//! [daemon.tls]
//! cert = "/etc/blit/cert.pem"
//! key = "/etc/blit/key.pem"
//!
//! [[modules]]
//! name = "backups"
//! path = "/srv/backups"
//! read_only = false
//! comment = "nightly backups"
//! ```
//!
//! An unknown key is an error that names the key and its line, so a typo
//! never silently changes what the daemon serves.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use blit_core::{Error, ErrorKind, Result};
use serde::Deserialize;

/// Control-plane address used when the config names none.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";

/// Data-plane port used when the config names none.
pub const DEFAULT_DATA_PORT: u16 = 50052;

/// A validated daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Settings of the daemon as a whole.
    pub daemon: DaemonConfig,
    /// Exported directories, in config order.
    pub modules: Vec<ModuleConfig>,
}

/// The `[daemon]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Address and port of the gRPC control plane.
    pub listen_addr: SocketAddr,
    /// TCP port of the data plane, on the control plane's address.
    pub data_port: u16,
    /// Client authentication mode.
    pub auth: AuthMode,
    /// Token store path; required when `auth` is [`AuthMode::Token`].
    pub token_file: Option<PathBuf>,
    /// Certificate and key for TLS, if configured.
    pub tls: Option<TlsConfig>,
}

/// The way the daemon authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every RPC carries a bearer token from the token store.
    Token,
    /// No authentication; accepted only on a loopback `listen_addr`.
    None,
}

/// The `[daemon.tls]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// One `[[modules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// Name used in addresses: letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// Absolute path of the exported directory.
    pub path: PathBuf,
    /// Reject writes and deletions.
    #[serde(default)]
    pub read_only: bool,
    /// Free-form description shown by `blit list`.
    #[serde(default)]
    pub comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    modules: Vec<ModuleConfig>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen_addr: Option<String>,
    data_port: Option<u16>,
    auth: Option<AuthMode>,
    token_file: Option<PathBuf>,
    tls: Option<TlsConfig>,
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::NotFound`] when the file is missing, and
    /// [`ErrorKind::InvalidArgument`] naming the file, line and problem for
    /// invalid TOML, an unknown key, or an invalid value.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::io("cannot read config file", path, err))?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `origin` names it in messages.
    ///
    /// # Errors
    ///
    /// As for [`Config::load`].
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| line_of(text, span.start));
            let message = err.message().trim_end();
            let location = match line {
                Some(line) => format!("{}:{line}", origin.display()),
                None => origin.display().to_string(),
            };
            Error::new(ErrorKind::InvalidArgument, format!("{location}: {message}"))
                .with_path(origin)
        })?;
        let invalid = |message: String| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{}: {message}", origin.display()),
            )
            .with_path(origin)
        };

        let listen_text = raw
            .daemon
            .listen_addr
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN_ADDR);
        let listen_addr: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(format!(
                "listen_addr {listen_text:?} is not an IP address and port, such as \
                 \"127.0.0.1:50051\" or \"[::1]:50051\""
            ))
        })?;
        let data_port = raw.daemon.data_port.unwrap_or(DEFAULT_DATA_PORT);
        if data_port != 0 && data_port == listen_addr.port() {
            return Err(invalid(format!(
                "data_port {data_port} is the port of listen_addr; give the data plane its own port"
            )));
        }
        let auth = raw.daemon.auth.unwrap_or(AuthMode::Token);
        match auth {
            AuthMode::None if !listen_addr.ip().is_loopback() => {
                return Err(invalid(format!(
                    "auth = \"none\" is accepted only on a loopback listen_addr, not {listen_addr}; \
                     use auth = \"token\" to serve on a network"
                )));
            }
            AuthMode::Token if raw.daemon.token_file.is_none() => {
                return Err(invalid(
                    "auth = \"token\" needs token_file in [daemon], the path of the token store"
                        .to_string(),
                ));
            }
            _ => {}
        }

        let mut names = HashSet::new();
        for module in &raw.modules {
            validate_module(module).map_err(&invalid)?;
            if !names.insert(module.name.as_str()) {
                return Err(invalid(format!(
                    "module name {:?} is used twice; module names must be unique",
                    module.name
                )));
            }
        }

        Ok(Config {
            daemon: DaemonConfig {
                listen_addr,
                data_port,
                auth,
                token_file: raw.daemon.token_file,
                tls: raw.daemon.tls,
            },
            modules: raw.modules,
        })
    }

    /// Returns the module with this name.
    pub fn module(&self, name: &str) -> Option<&ModuleConfig> {
        self.modules.iter().find(|module| module.name == name)
    }
}

/// Returns the 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let prefix = &text.as_bytes()[..offset.min(text.len())];
    prefix.iter().filter(|&&b| b == b'\n').count() + 1
}

fn validate_module(module: &ModuleConfig) -> std::result::Result<(), String> {
    let name = &module.name;
    let valid_name = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_name {
        return Err(format!(
            "module name {name:?} is invalid; use letters, digits, '.', '_' and '-', not \
             starting with '.'"
        ));
    }
    if !module.path.is_absolute() {
        return Err(format!(
            "module {name:?}: path {} is not absolute",
            module.path.display()
        ));
    }
    match std::fs::metadata(&module.path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "module {name:?}: path {} is not a directory",
            module.path.display()
        )),
        Err(err) => Err(format!(
            "module {name:?}: path {} cannot be used: {err}",
            module.path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn full_config_parses() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[daemon]\nlisten_addr = \"127.0.0.1:7000\"\ndata_port = 7001\nauth = \"token\"\n\
             token_file = \"/var/lib/blit/tokens.toml\"\n\n[[modules]]\nname = \"data\"\n\
             path = {:?}\nread_only = true\ncomment = \"a # comment\"\n",
            dir.path()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.daemon.listen_addr, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.daemon.data_port, 7001);
        assert_eq!(config.daemon.auth, AuthMode::Token);
        let module = config.module("data").unwrap();
        assert!(module.read_only);
        assert_eq!(module.comment, "a # comment");
    }

    #[test]
    fn defaults_apply() {
        let config = parse("[daemon]\ntoken_file = \"/t\"\n").unwrap();
        assert_eq!(
            config.daemon.listen_addr,
            DEFAULT_LISTEN_ADDR.parse().unwrap()
        );
        assert_eq!(config.daemon.data_port, DEFAULT_DATA_PORT);
        assert_eq!(config.daemon.auth, AuthMode::Token);
        assert!(config.modules.is_empty());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[daemon]\ntoken_file = \"/t\"\n\nlisten_adr = \"x\"\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("listen_adr"), "{}", err.message());
        assert!(err.message().contains("test.toml:4"), "{}", err.message());
    }

    #[test]
    fn unknown_module_key_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[daemon]\nauth = \"none\"\n[[modules]]\nname = \"m\"\npath = {:?}\nreadonly = true\n",
            dir.path()
        );
        let err = parse(&text).unwrap_err();
        assert!(err.message().contains("readonly"), "{}", err.message());
        assert!(err.message().contains("test.toml:6"), "{}", err.message());
    }

    #[test]
    fn auth_none_needs_loopback() {
        let err =
            parse("[daemon]\nlisten_addr = \"0.0.0.0:50051\"\nauth = \"none\"\n").unwrap_err();
        assert!(err.message().contains("loopback"), "{}", err.message());
        assert!(parse("[daemon]\nlisten_addr = \"[::1]:50051\"\nauth = \"none\"\n").is_ok());
    }

    #[test]
    fn token_auth_needs_token_file() {
        let err = parse("[daemon]\nauth = \"token\"\n").unwrap_err();
        assert!(err.message().contains("token_file"), "{}", err.message());
    }

    #[test]
    fn invalid_modules_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = format!("{:?}", dir.path());
        let cases = [
            (format!("name = \"a/b\"\npath = {path}"), "invalid"),
            (format!("name = \"..\"\npath = {path}"), "invalid"),
            (
                "name = \"m\"\npath = \"relative\"".to_string(),
                "not absolute",
            ),
            (
                "name = \"m\"\npath = \"/nonexistent/blit\"".to_string(),
                "cannot be used",
            ),
        ];
        for (module, expected) in cases {
            let text = format!("[daemon]\nauth = \"none\"\n[[modules]]\n{module}\n");
            let err = parse(&text).unwrap_err();
            assert!(
                err.message().contains(expected),
                "{module}: {}",
                err.message()
            );
        }
        let twice = format!(
            "[daemon]\nauth = \"none\"\n[[modules]]\nname = \"m\"\npath = {path}\n\
             [[modules]]\nname = \"m\"\npath = {path}\n"
        );
        assert!(parse(&twice).unwrap_err().message().contains("used twice"));
    }

    #[test]
    fn same_ports_rejected() {
        let err = parse(
            "[daemon]\nauth = \"none\"\nlisten_addr = \"127.0.0.1:9000\"\ndata_port = 9000\n",
        )
        .unwrap_err();
        assert!(err.message().contains("data_port"), "{}", err.message());
    }
}
