//! The daemon's TOML configuration (`/etc/blit/config.toml`).
//!
//! ```toml
//! [daemon]
//! listen_addr = "127.0.0.1:50051"   # control plane (gRPC)
//! data_port = 50052                 # TCP data plane, same address
//! auth = "token"                    # or "none", on a loopback address only
//! token_file = "/var/lib/blit/tokens.toml"
//! max_connections = 0               # concurrent operations; 0 = unlimited
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
//! list = true                       # false: hidden from non-admin listings
//! hosts_allow = ["10.0.0.0/8", "fd00::/8"]  # or hosts_deny = [...]
//! max_connections = 4               # concurrent operations; 0 = unlimited
//! exclude = ["*.key", "/private/"]  # never listed, pulled, written or deleted
//! ```
//!
//! `hosts_allow` and `hosts_deny` follow rsyncd's `hosts allow` and `hosts
//! deny`. A peer that matches `hosts_allow` is admitted, and otherwise one
//! that matches `hosts_deny` is rejected. A peer that matches neither list
//! is rejected only when `hosts_allow` is set and `hosts_deny` is not (see
//! [`hosts::is_admitted`]).
//!
//! An unknown key is an error that names the key and its line, so a typo
//! never silently changes what the daemon serves.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use blit_core::{Error, ErrorKind, Filter, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::hosts::{self, HostPattern};

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
    /// Maximum number of concurrent operations (push and pull sessions,
    /// lists and purges) in all modules together, or 0 for no limit.
    pub max_connections: u32,
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

/// One `[[modules]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleConfig {
    /// Name used in addresses: letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// Absolute path of the exported directory.
    pub path: PathBuf,
    /// Reject writes and deletions.
    pub read_only: bool,
    /// Free-form description shown by `blit list`.
    pub comment: String,
    /// Whether the module appears in the module list for callers without
    /// the admin permission. A hidden module stays usable by name.
    pub list: bool,
    /// Peers always admitted; see [`ModuleConfig::admits`].
    pub hosts_allow: Vec<HostPattern>,
    /// Peers rejected unless `hosts_allow` admits them.
    pub hosts_deny: Vec<HostPattern>,
    /// Maximum number of concurrent operations in this module, or 0 for no
    /// limit.
    pub max_connections: u32,
    /// Paths, relative to the module's root, that clients can neither see
    /// nor change.
    pub exclude: ExcludeRules,
}

impl ModuleConfig {
    /// Returns whether the module accepts requests from `peer`, with
    /// rsyncd's `hosts allow` and `hosts deny` rules.
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        hosts::is_admitted(&self.hosts_allow, &self.hosts_deny, peer)
    }

    /// Returns whether the module restricts peers by address.
    pub fn has_host_rules(&self) -> bool {
        !self.hosts_allow.is_empty() || !self.hosts_deny.is_empty()
    }
}

/// A module's `exclude` patterns, compiled with rsync's rules (see
/// [`blit_core::filter`]) relative to the module's root.
#[derive(Debug, Clone)]
pub struct ExcludeRules {
    patterns: Vec<String>,
    /// The patterns as written, which hide entries from list, pull and purge
    /// and check the paths that those requests name.
    filter: Filter,
    /// The same patterns with the trailing `/` of directory-only patterns
    /// removed, used where a push writes or deletes. A push must not
    /// replace an excluded directory with a file or symlink of the same
    /// name, and the receiver judges an incoming entry by its own kind, not
    /// by the kind of what it would replace.
    write_filter: Filter,
}

impl ExcludeRules {
    /// Compiles the patterns.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] naming the first invalid
    /// pattern.
    pub fn new(patterns: Vec<String>) -> Result<ExcludeRules> {
        let filter = Filter::new(&patterns)?;
        let widened: Vec<&str> = patterns
            .iter()
            .map(|pattern| pattern.strip_suffix('/').unwrap_or(pattern))
            .collect();
        let write_filter = Filter::new(&widened)?;
        Ok(ExcludeRules {
            patterns,
            filter,
            write_filter,
        })
    }

    /// Returns the patterns as the config gives them.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Returns whether no pattern is set.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Returns the filter for reading: list and pull leave out what it
    /// excludes.
    pub fn read_filter(&self) -> &Filter {
        &self.filter
    }

    /// Returns the filter for writing, which also applies directory-only
    /// patterns to files and symlinks: push neither writes nor deletes
    /// what it excludes.
    pub fn write_filter(&self) -> &Filter {
        &self.write_filter
    }
}

impl PartialEq for ExcludeRules {
    fn eq(&self, other: &ExcludeRules) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for ExcludeRules {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    modules: Vec<RawModule>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen_addr: Option<String>,
    data_port: Option<u16>,
    auth: Option<AuthMode>,
    token_file: Option<PathBuf>,
    tls: Option<TlsConfig>,
    max_connections: Option<u32>,
}

/// A `[[modules]]` entry as written. The list entries keep their position
/// in the text, so that an invalid one is reported with its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: String,
    path: PathBuf,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    comment: String,
    #[serde(default = "default_list")]
    list: bool,
    #[serde(default)]
    hosts_allow: Vec<Spanned<String>>,
    #[serde(default)]
    hosts_deny: Vec<Spanned<String>>,
    #[serde(default)]
    max_connections: u32,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
}

fn default_list() -> bool {
    true
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
        let mut modules = Vec::with_capacity(raw.modules.len());
        for module in raw.modules {
            let module = build_module(module, text, origin)?;
            validate_module(&module).map_err(&invalid)?;
            if !names.insert(module.name.clone()) {
                return Err(invalid(format!(
                    "module name {:?} is used twice; module names must be unique",
                    module.name
                )));
            }
            modules.push(module);
        }

        Ok(Config {
            daemon: DaemonConfig {
                listen_addr,
                data_port,
                auth,
                token_file: raw.daemon.token_file,
                tls: raw.daemon.tls,
                max_connections: raw.daemon.max_connections.unwrap_or(0),
            },
            modules,
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

/// Parses the host rules and exclude patterns of a module. An invalid entry
/// is an error that names the file, the entry's line, the module, the entry
/// and the fix.
fn build_module(raw: RawModule, text: &str, origin: &Path) -> Result<ModuleConfig> {
    let name = raw.name;
    let invalid_at = |span: std::ops::Range<usize>, message: String| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{}:{}: module {name:?}: {message}",
                origin.display(),
                line_of(text, span.start)
            ),
        )
        .with_path(origin)
    };
    let host_rules = |key: &str, entries: Vec<Spanned<String>>| -> Result<Vec<HostPattern>> {
        entries
            .into_iter()
            .map(|entry| {
                let span = entry.span();
                HostPattern::parse(entry.get_ref()).map_err(|why| {
                    invalid_at(
                        span,
                        format!(
                            "{key} entry {:?} is invalid: {why}; give an IP address such as \
                             \"192.0.2.7\" or \"::1\", or a CIDR range such as \"10.0.0.0/8\" or \
                             \"fd00::/8\"",
                            entry.get_ref()
                        ),
                    )
                })
            })
            .collect()
    };
    let hosts_allow = host_rules("hosts_allow", raw.hosts_allow)?;
    let hosts_deny = host_rules("hosts_deny", raw.hosts_deny)?;
    let mut patterns = Vec::with_capacity(raw.exclude.len());
    for entry in raw.exclude {
        let span = entry.span();
        // Compiling each pattern alone finds the one to report.
        if let Err(err) = Filter::new(std::slice::from_ref(entry.get_ref())) {
            return Err(invalid_at(
                span,
                format!(
                    "exclude: {}; write rsync-style patterns such as \"*.key\", \"/private/\" \
                     or \"**/cache\"",
                    err.message()
                ),
            ));
        }
        patterns.push(entry.into_inner());
    }
    let exclude = ExcludeRules::new(patterns).map_err(|err| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{}: module {name:?}: exclude: {}",
                origin.display(),
                err.message()
            ),
        )
        .with_path(origin)
    })?;
    Ok(ModuleConfig {
        name,
        path: raw.path,
        read_only: raw.read_only,
        comment: raw.comment,
        list: raw.list,
        hosts_allow,
        hosts_deny,
        max_connections: raw.max_connections,
        exclude,
    })
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
        assert_eq!(config.daemon.max_connections, 0);
    }

    /// Parses a config with one module `m` whose table ends with `keys`.
    fn parse_module(keys: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[daemon]\nauth = \"none\"\n[[modules]]\nname = \"m\"\npath = {:?}\n{keys}\n",
            dir.path()
        );
        parse(&text)
    }

    #[test]
    fn module_access_keys_default() {
        let config = parse_module("").unwrap();
        let module = config.module("m").unwrap();
        assert!(module.list);
        assert!(module.hosts_allow.is_empty());
        assert!(module.hosts_deny.is_empty());
        assert!(!module.has_host_rules());
        assert_eq!(module.max_connections, 0);
        assert!(module.exclude.is_empty());
        assert!(module.admits("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn module_access_keys_parse() {
        let config = parse_module(
            "list = false\nhosts_allow = [\"10.0.0.0/8\", \"::1\"]\n\
             hosts_deny = [\"127.0.0.0/8\", \"fd00::/8\"]\nmax_connections = 3\n\
             exclude = [\"*.key\", \"/private/\"]",
        )
        .unwrap();
        let module = config.module("m").unwrap();
        assert!(!module.list);
        let allow: Vec<String> = module.hosts_allow.iter().map(|p| p.to_string()).collect();
        assert_eq!(allow, ["10.0.0.0/8", "::1/128"]);
        let deny: Vec<String> = module.hosts_deny.iter().map(|p| p.to_string()).collect();
        assert_eq!(deny, ["127.0.0.0/8", "fd00::/8"]);
        assert_eq!(module.max_connections, 3);
        assert_eq!(module.exclude.patterns(), ["*.key", "/private/"]);
        assert!(module.admits("10.1.2.3".parse().unwrap()));
        assert!(!module.admits("127.0.0.1".parse().unwrap()));
        assert!(!module.admits("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn exclude_write_filter_widens_dir_patterns() {
        let config = parse_module("exclude = [\"cache/\"]").unwrap();
        let exclude = &config.module("m").unwrap().exclude;
        let cache = Path::new("cache");
        assert!(!exclude.read_filter().is_excluded(cache, false));
        assert!(exclude.read_filter().is_excluded(cache, true));
        assert!(exclude.write_filter().is_excluded(cache, false));
        assert!(exclude.write_filter().is_excluded(cache, true));
    }

    #[test]
    fn daemon_max_connections_parses() {
        let config = parse("[daemon]\nauth = \"none\"\nmax_connections = 8\n").unwrap();
        assert_eq!(config.daemon.max_connections, 8);
        let err = parse("[daemon]\nauth = \"none\"\nmax_connections = -1\n").unwrap_err();
        assert!(err.message().contains("test.toml:3"), "{}", err.message());
    }

    #[test]
    fn invalid_host_entries_name_module_entry_and_line() {
        let cases = [
            (
                "hosts_allow = [\"10.0.0.0/33\"]",
                "hosts_allow entry \"10.0.0.0/33\"",
            ),
            (
                "hosts_deny = [\"::1\",\n  \"example.com\"]",
                "hosts_deny entry \"example.com\"",
            ),
        ];
        for (keys, expected) in cases {
            let err = parse_module(keys).unwrap_err();
            let message = err.message();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("module \"m\""), "{message}");
            assert!(message.contains("CIDR range such as"), "{message}");
            let line = 6 + keys.matches('\n').count();
            assert!(message.contains(&format!("test.toml:{line}:")), "{message}");
        }
    }

    #[test]
    fn invalid_exclude_pattern_names_module_and_line() {
        let err = parse_module("exclude = [\"*.tmp\", \"a[b\"]").unwrap_err();
        let message = err.message();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(message.contains("test.toml:6:"), "{message}");
        assert!(message.contains("module \"m\""), "{message}");
        assert!(message.contains("\"a[b\""), "{message}");
        assert!(message.contains("rsync-style"), "{message}");
        let err = parse_module("exclude = [\"/\"]").unwrap_err();
        assert!(
            err.message().contains("matches no name"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn wrong_types_of_access_keys_rejected() {
        let cases = [
            "list = \"no\"",
            "hosts_allow = \"10.0.0.0/8\"",
            "max_connections = -2",
            "max_connections = 1.5",
            "exclude = \"*.key\"",
        ];
        for keys in cases {
            let err = parse_module(keys).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{keys}");
            assert!(
                err.message().contains("test.toml:6"),
                "{keys}: {}",
                err.message()
            );
        }
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
