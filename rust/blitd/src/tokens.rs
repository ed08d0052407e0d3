//! The token store: named bearer tokens, kept on disk only as BLAKE3
//! hashes, each scoped to modules and permissions and optionally expiring.
//!
//! `blitd token create|list|revoke` edit the store under an exclusive file
//! lock and replace it atomically (write, fsync, rename, fsync directory),
//! so concurrent commands never lose an entry and a crash never leaves a
//! torn file. A running daemon reloads the store when it changes.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blit_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// Prefix of every token, so that secret scanners and people recognize one.
pub const TOKEN_PREFIX: &str = "blit_";

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// A permission that a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// List and pull.
    Read,
    /// Push.
    Write,
    /// Mirror deletions and purge.
    Delete,
    /// Daemon-wide operations: listing every module and the daemon status.
    Admin,
}

impl Permission {
    /// Returns the lowercase name used in commands and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Delete => "delete",
            Permission::Admin => "admin",
        }
    }

    /// Parses a comma-separated permission list such as `read,write`.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] naming an unknown permission.
    pub fn parse_list(text: &str) -> Result<BTreeSet<Permission>> {
        let mut permissions = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let permission = match part {
                "read" => Permission::Read,
                "write" => Permission::Write,
                "delete" => Permission::Delete,
                "admin" => Permission::Admin,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("unknown permission {other:?}; use read, write, delete or admin"),
                    ));
                }
            };
            permissions.insert(permission);
        }
        if permissions.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "no permissions given; use a list such as read,write",
            ));
        }
        Ok(permissions)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored token: everything but the token itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Unique name, used in logs and to revoke the token.
    pub name: String,
    /// `blake3:` and the hex BLAKE3 hash of the token.
    pub hash: String,
    /// Module names, or `["*"]` for every module, present and future.
    pub modules: Vec<String>,
    /// Granted permissions.
    pub permissions: BTreeSet<Permission>,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Expiry time, seconds since the Unix epoch; absent for no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

// The hash is left out on purpose: no log or message shows it.
impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("name", &self.name)
            .field("modules", &self.modules)
            .field("permissions", &self.permissions)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Returns whether the token covers `module`.
    pub fn covers_module(&self, module: &str) -> bool {
        self.modules.iter().any(|m| m == "*" || m == module)
    }

    /// Returns whether the token has expired at `now` (seconds since the
    /// Unix epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    #[serde(default)]
    tokens: Vec<TokenRecord>,
}

/// The tokens of a store file, as loaded.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    records: Vec<TokenRecord>,
}

/// Returns the current time in seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Returns the stored form of a token's hash.
fn hash_token(token: &str) -> String {
    format!("blake3:{}", blake3::hash(token.as_bytes()).to_hex())
}

impl TokenStore {
    /// Reads a store file; a missing file is an empty store.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] naming the file for invalid
    /// contents, or the I/O error.
    pub fn load(path: &Path) -> Result<TokenStore> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TokenStore::default());
            }
            Err(err) => return Err(Error::io("cannot read token store", path, err)),
        };
        let file: StoreFile = toml::from_str(&text).map_err(|err| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "token store {} is invalid: {}",
                    path.display(),
                    err.message()
                ),
            )
        })?;
        Ok(TokenStore {
            records: file.tokens,
        })
    }

    /// Returns the stored tokens, in creation order.
    pub fn records(&self) -> &[TokenRecord] {
        &self.records
    }

    /// Returns the record of a presented token that exists and has not
    /// expired at `now`. Every stored hash is compared in constant time, so
    /// the time taken does not depend on how much of a hash matched.
    pub fn authenticate(&self, presented: &str, now: u64) -> Option<&TokenRecord> {
        let presented_hash = hash_token(presented);
        let mut found = None;
        for record in &self.records {
            if constant_time_eq(record.hash.as_bytes(), presented_hash.as_bytes()) {
                found = Some(record);
            }
        }
        found.filter(|record| !record.is_expired(now))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request of `blitd token create`.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Unique name.
    pub name: String,
    /// Module names, or `*`.
    pub modules: Vec<String>,
    /// Granted permissions.
    pub permissions: BTreeSet<Permission>,
    /// Expiry time, seconds since the Unix epoch.
    pub expires: Option<u64>,
    /// Replace an existing token of the same name.
    pub replace: bool,
}

/// Creates a token, stores its hash and returns the token, which is shown
/// once and never stored.
///
/// # Errors
///
/// Returns [`ErrorKind::Conflict`] when the name exists and `replace` is
/// not set, [`ErrorKind::InvalidArgument`] for an invalid name or module
/// list, or an I/O error naming the store.
pub fn create(store_path: &Path, request: &NewToken) -> Result<String> {
    validate_name(&request.name)?;
    if request.modules.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "no modules given; name modules such as backups,photos or '*' for all",
        ));
    }
    let mut random = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut random).map_err(|err| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot read the OS random source: {err}"),
        )
    })?;
    let token = format!("{TOKEN_PREFIX}{}", hex(&random));
    let record = TokenRecord {
        name: request.name.clone(),
        hash: hash_token(&token),
        modules: request.modules.clone(),
        permissions: request.permissions.clone(),
        created: unix_now(),
        expires: request.expires,
    };
    update(store_path, |records| {
        if let Some(index) = records.iter().position(|r| r.name == record.name) {
            if !request.replace {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "a token named {:?} exists; revoke it first or pass --replace",
                        record.name
                    ),
                ));
            }
            records[index] = record.clone();
        } else {
            records.push(record.clone());
        }
        Ok(())
    })?;
    Ok(token)
}

/// Removes the token named `name`.
///
/// # Errors
///
/// Returns [`ErrorKind::NotFound`] when no token has that name.
pub fn revoke(store_path: &Path, name: &str) -> Result<()> {
    update(store_path, |records| {
        let before = records.len();
        records.retain(|r| r.name != name);
        if records.len() == before {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no token named {name:?}; run 'blitd token list' to see the names"),
            ));
        }
        Ok(())
    })
}

fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "invalid token name {name:?}; use 1 to 64 letters, digits, '.', '_', '-' or '@'"
            ),
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies `change` to the store's records under an exclusive lock and
/// replaces the file atomically.
fn update(
    store_path: &Path,
    change: impl FnOnce(&mut Vec<TokenRecord>) -> Result<()>,
) -> Result<()> {
    let _lock = lock(store_path)?;
    let mut records = TokenStore::load(store_path)?.records;
    change(&mut records)?;
    let text = toml::to_string(&StoreFile { tokens: records }).map_err(|err| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot encode the token store: {err}"),
        )
    })?;
    let header = "# blit token store, written by 'blitd token'. It holds hashes, never tokens.\n";
    write_atomic(store_path, &format!("{header}{text}"))
}

/// An exclusive lock on `<store>.lock`, released on drop.
struct StoreLock {
    _file: File,
}

fn lock_path(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

fn lock(store_path: &Path) -> Result<StoreLock> {
    let path = lock_path(store_path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|err| Error::io("cannot create directory", parent, err))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| Error::io("cannot open lock file", &path, err))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|err| Error::io("cannot lock", &path, err.into()))?;
    Ok(StoreLock { _file: file })
}

/// Writes `text` to a temporary file beside `path`, fsyncs it, renames it
/// over `path` and fsyncs the directory. The file is readable by its owner
/// only.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic_with_mode(path, text, 0o600)
}

/// Writes `text` as [`write_atomic`] does, creating the file with the
/// permission bits `mode` (before the umask).
pub(crate) fn write_atomic_with_mode(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = path.as_os_str().to_os_string();
    temp_name.push(format!(".tmp{}", std::process::id()));
    let temp = PathBuf::from(temp_name);
    let write = || -> std::io::Result<()> {
        // A temporary file left by a crashed run may have looser permission
        // bits; `mode` applies only to a file that this call creates.
        match std::fs::remove_file(&temp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = File::options()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&temp)?;
        // Keep the existing file's owner, so that root running `blitd token`
        // does not make the store unreadable for a daemon running as another
        // user. Only root may change owners; others keep their own.
        // The existing mode is kept too, such as a key made group-readable
        // for the daemon's group.
        if let Ok(existing) = std::fs::metadata(path) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let _ = std::os::unix::fs::fchown(&file, Some(existing.uid()), Some(existing.gid()));
            file.set_permissions(std::fs::Permissions::from_mode(existing.mode() & 0o7777))?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(&directory)?.sync_all()
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        Error::io("cannot write", path, err)
    })
}

/// Parses `--expires`: a duration such as `30s`, `90m`, `12h` or `30d`
/// from now, or an RFC 3339 time such as `2027-01-31T00:00:00Z`. Returns
/// seconds since the Unix epoch.
///
/// # Errors
///
/// Returns [`ErrorKind::InvalidArgument`] for anything else, or a time in
/// the past.
pub fn parse_expiry(text: &str, now: u64) -> Result<u64> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "invalid expiry {text:?}; give a duration such as 30s, 90m, 12h or 30d, or an RFC \
                 3339 time such as 2027-01-31T00:00:00Z"
            ),
        )
    };
    let at = if let Ok(duration) = humantime::parse_duration(text) {
        if duration < Duration::from_secs(1) {
            return Err(invalid());
        }
        now.checked_add(duration.as_secs()).ok_or_else(invalid)?
    } else {
        let time = humantime::parse_rfc3339_weak(text).map_err(|_| invalid())?;
        time.duration_since(UNIX_EPOCH)
            .map_err(|_| invalid())?
            .as_secs()
    };
    if at <= now {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("expiry {text:?} is in the past; give a later time"),
        ));
    }
    Ok(at)
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC.
pub fn format_time(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_token(name: &str) -> NewToken {
        NewToken {
            name: name.into(),
            modules: vec!["data".into()],
            permissions: Permission::parse_list("read,write").unwrap(),
            expires: None,
            replace: false,
        }
    }

    #[test]
    fn created_token_authenticates() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");

        let token = create(&store, &new_token("backup")).unwrap();

        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
        let loaded = TokenStore::load(&store).unwrap();
        let record = loaded.authenticate(&token, unix_now()).unwrap();
        assert_eq!(record.name, "backup");
        assert!(loaded.authenticate("blit_wrong", unix_now()).is_none());
    }

    #[test]
    fn store_never_contains_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        let token = create(&store, &new_token("backup")).unwrap();

        let text = std::fs::read_to_string(&store).unwrap();
        let secret = &token[TOKEN_PREFIX.len()..];

        assert!(!text.contains(secret));
        assert!(!text.contains(&secret[..16]));
        assert!(!text.contains(&secret.to_uppercase()));
        let raw: Vec<u8> = (0..secret.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&secret[i..i + 2], 16).unwrap())
            .collect();
        for alphabet in [BASE64_STANDARD, BASE64_URL] {
            let encoded = base64(&raw, alphabet);
            assert!(!text.contains(&encoded[..16]), "base64 form found");
        }
    }

    const BASE64_STANDARD: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const BASE64_URL: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Encodes bytes as unpadded base64 with the given alphabet.
    fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let value = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
                << (8 * (3 - chunk.len()));
            for index in 0..=chunk.len() {
                let sextet = (value >> (18 - 6 * index)) & 0x3f;
                out.push(alphabet[sextet as usize] as char);
            }
        }
        out
    }

    #[test]
    fn rewrite_keeps_owner_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        create(&store, &new_token("first")).unwrap();
        // Only root can give the file to another user; elsewhere the owner
        // is the caller anyway.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let nobody = 65534;
        std::os::unix::fs::chown(&store, Some(nobody), Some(nobody)).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o640)).unwrap();

        create(&store, &new_token("second")).unwrap();

        let meta = std::fs::metadata(&store).unwrap();
        assert_eq!(meta.uid(), nobody);
        assert_eq!(meta.gid(), nobody);
        assert_eq!(meta.mode() & 0o7777, 0o640);
    }

    #[test]
    fn duplicate_name_needs_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        let first = create(&store, &new_token("backup")).unwrap();

        let err = create(&store, &new_token("backup")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);

        let mut replace = new_token("backup");
        replace.replace = true;
        let second = create(&store, &replace).unwrap();
        let loaded = TokenStore::load(&store).unwrap();
        assert_eq!(loaded.records().len(), 1);
        assert!(loaded.authenticate(&first, unix_now()).is_none());
        assert!(loaded.authenticate(&second, unix_now()).is_some());
    }

    #[test]
    fn revoke_removes_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        let token = create(&store, &new_token("backup")).unwrap();

        revoke(&store, "backup").unwrap();

        assert!(
            TokenStore::load(&store)
                .unwrap()
                .authenticate(&token, unix_now())
                .is_none()
        );
        assert_eq!(
            revoke(&store, "backup").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn expired_token_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        let mut request = new_token("short");
        request.expires = Some(unix_now() + 60);
        let token = create(&store, &request).unwrap();
        let loaded = TokenStore::load(&store).unwrap();

        assert!(loaded.authenticate(&token, unix_now()).is_some());
        assert!(loaded.authenticate(&token, unix_now() + 61).is_none());
    }

    #[test]
    fn concurrent_creates_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        std::thread::scope(|scope| {
            for index in 0..16 {
                let store = &store;
                scope.spawn(move || create(store, &new_token(&format!("t{index}"))).unwrap());
            }
        });
        assert_eq!(TokenStore::load(&store).unwrap().records().len(), 16);
    }

    #[test]
    fn expiry_forms_parse() {
        let now = 1_000_000;
        assert_eq!(parse_expiry("30s", now).unwrap(), now + 30);
        assert_eq!(parse_expiry("90m", now).unwrap(), now + 5400);
        assert_eq!(parse_expiry("12h", now).unwrap(), now + 43_200);
        assert_eq!(parse_expiry("30d", now).unwrap(), now + 2_592_000);
        assert_eq!(
            parse_expiry("2027-01-01T00:00:00Z", now).unwrap(),
            1_798_761_600
        );
        assert!(parse_expiry("1970-01-02T00:00:00Z", now).is_err());
        assert!(parse_expiry("soon", now).is_err());
    }

    #[test]
    fn permission_list_parses() {
        let all = Permission::parse_list("read, write,delete,admin").unwrap();
        assert_eq!(all.len(), 4);
        assert!(Permission::parse_list("read,root").is_err());
        assert!(Permission::parse_list("").is_err());
    }

    #[test]
    fn debug_output_hides_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.toml");
        create(&store, &new_token("backup")).unwrap();
        let loaded = TokenStore::load(&store).unwrap();
        let shown = format!("{loaded:?}");
        assert!(!shown.contains("blake3:"), "{shown}");
    }
}
