//! Parsing of the addresses that commands take: a local path, or a daemon
//! address `blit://HOST[:PORT]/MODULE[/PATH]` (`blits://` for TLS).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};

/// The control-plane port that a remote address uses when it names none.
pub const DEFAULT_PORT: u16 = 50051;

/// The source or destination of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A path on this machine.
    Local(PathBuf),
    /// A module, or the daemon itself, on a `blitd` server.
    Remote(RemoteAddress),
}

/// A parsed `blit://` or `blits://` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAddress {
    /// Whether the address uses `blits://` (TLS).
    pub tls: bool,
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    /// Control-plane port.
    pub port: u16,
    /// Module name; `None` when the address names the daemon itself.
    pub module: Option<String>,
    /// Path inside the module, without a leading `/` but with a trailing
    /// `/` if the address had one; empty for the root.
    pub path: String,
}

impl fmt::Display for RemoteAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "blits" } else { "blit" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{host}:{}/", self.port)?;
        if let Some(module) = &self.module {
            f.write_str(module)?;
            if !self.path.is_empty() {
                write!(f, "/{}", self.path)?;
            }
        }
        Ok(())
    }
}

impl Address {
    /// Parses a command-line or API address.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] for an empty address, a
    /// malformed `blit://` address, or a v1-style `HOST:MODULE/PATH`, whose
    /// message gives the v2 form to use instead.
    pub fn parse(text: &OsStr) -> Result<Address> {
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "empty address: give a local path or blit://HOST/MODULE/PATH",
            ));
        }
        for (scheme, tls) in [("blit://", false), ("blits://", true)] {
            if let Some(rest) = bytes.strip_prefix(scheme.as_bytes()) {
                let rest = std::str::from_utf8(rest).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "invalid address {}: a remote address must be valid UTF-8",
                            text.to_string_lossy()
                        ),
                    )
                })?;
                return parse_remote(rest, tls).map(Address::Remote);
            }
        }
        let first_component = bytes.split(|&b| b == b'/').next().unwrap_or_default();
        if first_component.contains(&b':') {
            return Err(v1_address_error(text));
        }
        Ok(Address::Local(PathBuf::from(OsString::from(text))))
    }
}

fn v1_address_error(text: &OsStr) -> Error {
    let shown = text.to_string_lossy();
    let without_scheme = shown.strip_prefix("rsync://").unwrap_or(&shown);
    let (host, rest) = match without_scheme.split_once("::") {
        Some(split) => split,
        None => without_scheme
            .split_once(':')
            .or_else(|| without_scheme.split_once('/'))
            .unwrap_or((without_scheme, "")),
    };
    let host = host.split(':').next().unwrap_or(host);
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{shown:?} looks like a v1 address (HOST:MODULE/PATH); use \
             blit://{host}/{rest} for a daemon, or ./{shown} for a local path"
        ),
    )
}

fn parse_remote(rest: &str, tls: bool) -> Result<RemoteAddress> {
    let scheme = if tls { "blits" } else { "blit" };
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid address {scheme}://{rest}: {why}"),
        )
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash + 1..]),
        None => (rest, ""),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 host needs a closing ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("expected ':PORT' after the IPv6 host")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(invalid("put an IPv6 host in brackets, as [::1]")),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the host is missing"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(invalid("the port must be a number from 1 to 65535")),
        },
    };
    let mut parts = path.splitn(2, '/');
    let module = parts.next().filter(|m| !m.is_empty()).map(str::to_string);
    // A trailing '/' is kept: for a single-file push it means "into this
    // directory".
    let path = parts
        .next()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    Ok(RemoteAddress {
        tls,
        host: host.to_string(),
        port,
        module,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Address> {
        Address::parse(OsStr::new(text))
    }

    #[test]
    fn plain_paths_are_local() {
        for text in ["a", "/tmp/x", "./a:b", "dir/a:b", "a b"] {
            assert_eq!(parse(text).unwrap(), Address::Local(PathBuf::from(text)));
        }
    }

    #[test]
    fn v1_address_rejected_with_v2_form() {
        let err = parse("host:module/path").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message().contains("blit://host/module/path"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("./host:module/path"),
            "{}",
            err.message()
        );
        let err = parse("host::module/dir").unwrap_err();
        assert!(
            err.message().contains("blit://host/module/dir"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn remote_address_parts() {
        let Address::Remote(remote) = parse("blit://example.org:7000/data/a/b/").unwrap() else {
            panic!("expected a remote address");
        };
        assert_eq!(remote.host, "example.org");
        assert_eq!(remote.port, 7000);
        assert_eq!(remote.module.as_deref(), Some("data"));
        assert_eq!(remote.path, "a/b/");
        assert!(!remote.tls);
    }

    #[test]
    fn remote_defaults_and_ipv6() {
        let Address::Remote(remote) = parse("blits://[::1]/").unwrap() else {
            panic!("expected a remote address");
        };
        assert_eq!(remote.host, "::1");
        assert_eq!(remote.port, DEFAULT_PORT);
        assert_eq!(remote.module, None);
        assert!(remote.tls);
        assert_eq!(remote.to_string(), "blits://[::1]:50051/");
    }

    #[test]
    fn malformed_remote_rejected() {
        for text in [
            "blit://",
            "blit://h:0/m",
            "blit://h:x/m",
            "blit://::1/m",
            "blit://[::1/m",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{text}");
        }
    }
}
