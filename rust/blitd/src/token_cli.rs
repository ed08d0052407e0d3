//! `blitd token create|list|revoke`: manage the token store that the
//! config's `token_file` names.

use std::path::{Path, PathBuf};

use blit_core::{Error, ErrorKind, Result};

use crate::config::Config;
use crate::tokens::{self, NewToken, Permission, TokenStore};

/// The token subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenAction {
    /// Create a token and print it once on stdout. Only its hash is
    /// stored, so it cannot be shown again.
    Create {
        /// Unique name of the token, used in logs and to revoke it.
        #[arg(long)]
        name: String,
        /// Comma-separated module names the token may use, or '*' for
        /// every module, present and future.
        #[arg(long, value_name = "M1,M2|*")]
        modules: String,
        /// Comma-separated permissions: read (list, pull), write (push),
        /// delete (mirror deletions, purge), admin (every module in
        /// listings, daemon status).
        #[arg(long, value_name = "LIST")]
        permissions: String,
        /// Expiry: a duration from now such as 30s, 90m, 12h or 30d, or an
        /// RFC 3339 time such as 2027-01-31T00:00:00Z. Default: never.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// Replace an existing token of the same name, which stops working.
        #[arg(long)]
        replace: bool,
    },
    /// List tokens: name, modules, permissions, creation and expiry. Never
    /// prints a token or its hash.
    List,
    /// Revoke the token named NAME; a running daemon rejects it within two
    /// seconds.
    Revoke {
        /// Name of the token to revoke.
        name: String,
    },
}

/// Runs a token subcommand and returns the exit status: 0 on success, 1 on
/// any error (printed on stderr).
pub(crate) fn run(config_path: &Path, action: &TokenAction) -> u8 {
    match run_action(config_path, action) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("blitd: {err}");
            1
        }
    }
}

fn store_path(config_path: &Path) -> Result<(Config, PathBuf)> {
    let config = Config::load(config_path)?;
    let path = config.daemon.token_file.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} has no token_file in [daemon]; add one, such as token_file = \
                 \"/var/lib/blit/tokens.toml\"",
                config_path.display()
            ),
        )
    })?;
    Ok((config, path))
}

fn run_action(config_path: &Path, action: &TokenAction) -> Result<()> {
    let (config, path) = store_path(config_path)?;
    match action {
        TokenAction::Create {
            name,
            modules,
            permissions,
            expires,
            replace,
        } => {
            let modules: Vec<String> = modules
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            for module in &modules {
                if module != "*" && config.module(module).is_none() {
                    eprintln!(
                        "blitd: warning: module {module:?} is not in {}; the token covers it once \
                         it is added",
                        config_path.display()
                    );
                }
            }
            let now = tokens::unix_now();
            let request = NewToken {
                name: name.clone(),
                modules,
                permissions: Permission::parse_list(permissions)?,
                expires: expires
                    .as_deref()
                    .map(|text| tokens::parse_expiry(text, now))
                    .transpose()?,
                replace: *replace,
            };
            let token = tokens::create(&path, &request)?;
            println!("{token}");
            let expiry = request.expires.map_or_else(
                || "never expires".to_string(),
                |at| format!("expires {}", tokens::format_time(at)),
            );
            eprintln!(
                "blitd: created token {:?} for modules {} with permissions {}; it {expiry}. Store \
                 it now: it is not shown again.",
                request.name,
                request.modules.join(","),
                join_permissions(&request.permissions)
            );
            Ok(())
        }
        TokenAction::List => {
            let store = TokenStore::load(&path)?;
            let now = tokens::unix_now();
            println!(
                "{:<24} {:<24} {:<24} {:<21} EXPIRES",
                "NAME", "MODULES", "PERMISSIONS", "CREATED"
            );
            for record in store.records() {
                let expires = match record.expires {
                    None => "never".to_string(),
                    Some(at) if record.is_expired(now) => {
                        format!("{} (expired)", tokens::format_time(at))
                    }
                    Some(at) => tokens::format_time(at),
                };
                println!(
                    "{:<24} {:<24} {:<24} {:<21} {expires}",
                    record.name,
                    record.modules.join(","),
                    join_permissions(&record.permissions),
                    tokens::format_time(record.created),
                );
            }
            Ok(())
        }
        TokenAction::Revoke { name } => {
            tokens::revoke(&path, name)?;
            eprintln!("blitd: revoked token {name:?}");
            Ok(())
        }
    }
}

fn join_permissions(permissions: &std::collections::BTreeSet<Permission>) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
