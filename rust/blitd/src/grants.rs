//! Data-plane grants: one-time tokens that admit TCP connections to a
//! session.
//!
//! A push or pull handler registers its session with
//! [`GrantRegistry::register`], issues tokens with [`DataSession::issue`] or
//! [`DataSession::issue_grant`], and sends them to the client. Each data
//! connection starts with one 32-byte token; the data-plane listener redeems
//! it here and hands the connection to the session's
//! [`DataSession::next_connection`].
//!
//! Tokens come from the OS's secure random source and are stored only as
//! their BLAKE3 hashes. A lookup compares hashes, so how long it takes
//! depends on the hash of the presented bytes, which reveals nothing about
//! any stored token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use blit_core::{Error, ErrorKind, Result};
use blit_proto::v2::DataGrant;
use bytes::Bytes;
use tokio::sync::mpsc;

pub use crate::data_stream::{BlockingDataStream, DataStream};

/// Length in bytes of a data-plane token.
pub const TOKEN_LEN: usize = 32;

/// A data-plane token: 256 random bits, single use.
pub type DataToken = [u8; TOKEN_LEN];

/// Maximum tokens issued in one call.
pub const MAX_TOKENS_PER_ISSUE: usize = 256;

/// Maximum tokens stored at once, used or not, across all sessions. Issuing
/// more fails with [`ErrorKind::ResourceExhausted`] until some expire.
pub const MAX_STORED_TOKENS: usize = 65_536;

/// Lifetime of tokens that handlers issue when they have no reason to pick
/// another.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);

/// A data-plane connection that presented a valid token.
#[derive(Debug)]
pub struct DataConnection {
    /// The connection, positioned just after the token.
    pub stream: DataStream,
    /// The client's address.
    pub peer: SocketAddr,
}

impl DataConnection {
    /// Converts the connection into its blocking form, for the blocking
    /// transfer engine and, on plain TCP, zero-copy system calls.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Network`] if the socket cannot be switched to
    /// blocking mode.
    pub fn into_blocking(self) -> Result<BlockingDataStream> {
        let peer = self.peer;
        self.stream.into_blocking().map_err(|err| {
            Error::new(
                ErrorKind::Network,
                format!("cannot set up the data connection from {peer}: {err}"),
            )
        })
    }
}

/// Reason for rejecting a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// No such token was issued, or it expired and was already forgotten.
    Unknown,
    /// The token admitted a connection before.
    Reused,
    /// The token's lifetime ended before it was presented.
    Expired,
    /// The session ended after the token was issued.
    SessionEnded,
}

impl RejectReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RejectReason::Unknown => "unknown token",
            RejectReason::Reused => "token already used",
            RejectReason::Expired => "token expired",
            RejectReason::SessionEnded => "session already ended",
        }
    }
}

/// A rejected token, with the session that it was issued to when the
/// registry still remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) reason: RejectReason,
    pub(crate) session_id: Option<Arc<str>>,
}

/// A redeemed token: the session that it admits and where to send the
/// connection.
pub(crate) struct Redemption {
    pub(crate) session_id: Arc<str>,
    sender: mpsc::UnboundedSender<DataConnection>,
}

impl Redemption {
    /// Hands the connection to the session, or returns it if the session has
    /// just ended.
    pub(crate) fn deliver(
        self,
        connection: DataConnection,
    ) -> std::result::Result<(), DataConnection> {
        self.sender.send(connection).map_err(|err| err.0)
    }
}

struct TokenEntry {
    session_id: Arc<str>,
    expires_at: Instant,
    /// Set on first use. The entry is kept until it expires so that a replay
    /// is logged as such rather than as an unknown token.
    used: bool,
}

#[derive(Default)]
struct RegistryState {
    /// Channel on which each registered session receives its connections.
    /// The queue is unbounded, but only a connection with an unused token
    /// enters it, so it never contains more than the session's tokens.
    sessions: HashMap<Arc<str>, mpsc::UnboundedSender<DataConnection>>,
    /// Token entries keyed by the BLAKE3 hash of the token.
    tokens: HashMap<[u8; 32], TokenEntry>,
}

/// The daemon's table of issued data-plane tokens and of the sessions that
/// wait for connections.
pub struct GrantRegistry {
    state: Mutex<RegistryState>,
}

impl GrantRegistry {
    /// Creates an empty registry.
    pub fn new() -> Arc<GrantRegistry> {
        Arc::new(GrantRegistry {
            state: Mutex::new(RegistryState::default()),
        })
    }

    /// Registers a session so that tokens can be issued to it, and returns
    /// the handle on which its connections arrive. Dropping the handle
    /// unregisters the session and revokes its unused tokens.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Conflict`] if the session id is registered
    /// already.
    pub fn register(self: &Arc<Self>, session_id: &str) -> Result<DataSession> {
        let mut state = self.lock();
        if state.sessions.contains_key(session_id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("session {session_id} already has a data-plane registration"),
            ));
        }
        let session_id: Arc<str> = session_id.into();
        let (sender, receiver) = mpsc::unbounded_channel();
        state.sessions.insert(Arc::clone(&session_id), sender);
        Ok(DataSession {
            registry: Arc::clone(self),
            session_id,
            receiver,
        })
    }

    /// Issues `count` single-use tokens for a registered session, each valid
    /// for `ttl` from now.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::NotFound`] if the session is not registered,
    /// [`ErrorKind::InvalidArgument`] if `count` is 0 or above
    /// [`MAX_TOKENS_PER_ISSUE`], [`ErrorKind::ResourceExhausted`] if the
    /// registry would store more than [`MAX_STORED_TOKENS`], and
    /// [`ErrorKind::Internal`] if the OS random source fails.
    pub fn issue(&self, session_id: &str, count: usize, ttl: Duration) -> Result<Vec<DataToken>> {
        self.issue_at(session_id, count, ttl, Instant::now())
    }

    fn issue_at(
        &self,
        session_id: &str,
        count: usize,
        ttl: Duration,
        now: Instant,
    ) -> Result<Vec<DataToken>> {
        if count == 0 || count > MAX_TOKENS_PER_ISSUE {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "cannot issue {count} data-plane tokens for session {session_id}; \
                     issue between 1 and {MAX_TOKENS_PER_ISSUE}"
                ),
            ));
        }
        let mut state = self.lock();
        let Some((registered_id, _)) = state.sessions.get_key_value(session_id) else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("session {session_id} is not registered for data-plane tokens"),
            ));
        };
        let registered_id = Arc::clone(registered_id);

        state.tokens.retain(|_, entry| entry.expires_at > now);
        if state.tokens.len() + count > MAX_STORED_TOKENS {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "cannot issue {count} data-plane tokens for session {session_id}: \
                     {} of at most {MAX_STORED_TOKENS} are outstanding; retry when some expire",
                    state.tokens.len()
                ),
            ));
        }

        // An overflowing `ttl` means "never expires" for practical purposes.
        let expires_at = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        let mut tokens = Vec::with_capacity(count);
        while tokens.len() < count {
            let token = random_token()?;
            let key = token_key(&token);
            // A collision of 256 random bits does not happen in practice, but
            // overwriting another token's entry would be wrong if it did.
            if state.tokens.contains_key(&key) {
                continue;
            }
            state.tokens.insert(
                key,
                TokenEntry {
                    session_id: Arc::clone(&registered_id),
                    expires_at,
                    used: false,
                },
            );
            tokens.push(token);
        }
        Ok(tokens)
    }

    /// Consumes a presented token.
    pub(crate) fn redeem(&self, token: &DataToken) -> std::result::Result<Redemption, Rejection> {
        self.redeem_at(token, Instant::now())
    }

    fn redeem_at(
        &self,
        token: &DataToken,
        now: Instant,
    ) -> std::result::Result<Redemption, Rejection> {
        let mut state = self.lock();
        let Some(entry) = state.tokens.get_mut(&token_key(token)) else {
            return Err(Rejection {
                reason: RejectReason::Unknown,
                session_id: None,
            });
        };
        let session_id = Arc::clone(&entry.session_id);
        let reject = |reason| Rejection {
            reason,
            session_id: Some(Arc::clone(&session_id)),
        };
        if entry.used {
            return Err(reject(RejectReason::Reused));
        }
        if entry.expires_at <= now {
            return Err(reject(RejectReason::Expired));
        }
        entry.used = true;
        match state.sessions.get(&session_id) {
            Some(sender) => Ok(Redemption {
                sender: sender.clone(),
                session_id,
            }),
            None => Err(reject(RejectReason::SessionEnded)),
        }
    }

    /// Removes a session and every token issued to it.
    fn unregister(&self, session_id: &str) {
        let mut state = self.lock();
        state.sessions.remove(session_id);
        state
            .tokens
            .retain(|_, entry| &*entry.session_id != session_id);
    }

    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        // Every critical section leaves both maps consistent before it can
        // panic, so a poisoned lock still guards valid state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for GrantRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("GrantRegistry")
            .field("sessions", &state.sessions.len())
            .field("tokens", &state.tokens.len())
            .finish()
    }
}

/// A session's registration with the data plane: it issues the session's
/// tokens and receives the connections that present them.
///
/// Dropping it unregisters the session: its unused tokens stop working and
/// later connections that present them are closed.
#[derive(Debug)]
pub struct DataSession {
    registry: Arc<GrantRegistry>,
    session_id: Arc<str>,
    receiver: mpsc::UnboundedReceiver<DataConnection>,
}

impl DataSession {
    /// Returns the session id that this registration serves.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Issues `count` single-use tokens for this session, each valid for
    /// `ttl`.
    ///
    /// # Errors
    ///
    /// As for [`GrantRegistry::issue`].
    pub fn issue(&self, count: usize, ttl: Duration) -> Result<Vec<DataToken>> {
        self.registry.issue(&self.session_id, count, ttl)
    }

    /// Issues `count` tokens and packs them into the `DataGrant` message that
    /// the client receives, naming `data_port` as the port to connect to.
    ///
    /// # Errors
    ///
    /// As for [`GrantRegistry::issue`].
    pub fn issue_grant(&self, count: usize, ttl: Duration, data_port: u16) -> Result<DataGrant> {
        let tokens = self.issue(count, ttl)?;
        Ok(DataGrant {
            session_id: self.session_id.to_string(),
            data_port: u32::from(data_port),
            tokens: tokens
                .iter()
                .map(|token| Bytes::copy_from_slice(token))
                .collect(),
            expires_in_seconds: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
            ..DataGrant::default()
        })
    }

    /// Waits for the next connection that presented one of this session's
    /// tokens. The registry keeps the sending side while the session is
    /// registered, so this waits until a connection arrives; bound the wait
    /// with `tokio::time::timeout`.
    pub async fn next_connection(&mut self) -> Option<DataConnection> {
        self.receiver.recv().await
    }

    /// Returns a connection that has arrived already, without waiting.
    pub fn try_next_connection(&mut self) -> Option<DataConnection> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for DataSession {
    fn drop(&mut self) {
        self.registry.unregister(&self.session_id);
    }
}

fn random_token() -> Result<DataToken> {
    let mut token = [0u8; TOKEN_LEN];
    getrandom::fill(&mut token).map_err(|err| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot read the OS random source for a data-plane token: {err}"),
        )
    })?;
    Ok(token)
}

fn token_key(token: &DataToken) -> [u8; 32] {
    *blake3::hash(token).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn rejection(result: std::result::Result<Redemption, Rejection>) -> Rejection {
        match result {
            Ok(redemption) => panic!("token admitted session {}", redemption.session_id),
            Err(rejection) => rejection,
        }
    }

    #[test]
    fn token_admits_its_session() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let tokens = session.issue(3, TTL).unwrap();
        assert_eq!(tokens.len(), 3);
        for token in &tokens {
            let redemption = registry.redeem(token).expect("token rejected");
            assert_eq!(&*redemption.session_id, "s1");
        }
    }

    #[test]
    fn tokens_are_distinct() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let mut tokens = session.issue(MAX_TOKENS_PER_ISSUE, TTL).unwrap();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), MAX_TOKENS_PER_ISSUE);
    }

    #[test]
    fn token_single_use() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let token = session.issue(1, TTL).unwrap()[0];
        assert!(registry.redeem(&token).is_ok());
        let second = rejection(registry.redeem(&token));
        assert_eq!(second.reason, RejectReason::Reused);
        assert_eq!(second.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn token_expires() {
        let registry = GrantRegistry::new();
        let _session = registry.register("s1").unwrap();
        let now = Instant::now();
        let ttl = Duration::from_secs(5);
        let tokens = registry.issue_at("s1", 2, ttl, now).unwrap();

        let before = now + ttl - Duration::from_millis(1);
        assert!(registry.redeem_at(&tokens[0], before).is_ok());

        let at_expiry = rejection(registry.redeem_at(&tokens[1], now + ttl));
        assert_eq!(at_expiry.reason, RejectReason::Expired);
        assert_eq!(at_expiry.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn expired_tokens_are_swept() {
        let registry = GrantRegistry::new();
        let _session = registry.register("s1").unwrap();
        let now = Instant::now();
        let old = registry
            .issue_at("s1", 1, Duration::from_secs(1), now)
            .unwrap();
        registry
            .issue_at("s1", 1, TTL, now + Duration::from_secs(2))
            .unwrap();
        assert_eq!(registry.lock().tokens.len(), 1);
        let swept = rejection(registry.redeem_at(&old[0], now + Duration::from_secs(2)));
        assert_eq!(swept.reason, RejectReason::Unknown);
    }

    #[test]
    fn unknown_token_rejected() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let token = session.issue(1, TTL).unwrap()[0];
        let mut forged = token;
        forged[0] ^= 1;
        let unknown = rejection(registry.redeem(&forged));
        assert_eq!(unknown.reason, RejectReason::Unknown);
        assert_eq!(unknown.session_id, None);
        assert!(
            registry.redeem(&token).is_ok(),
            "a forged token used up the real one"
        );
    }

    #[test]
    fn dropped_session_revokes_tokens() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let token = session.issue(1, TTL).unwrap()[0];
        drop(session);
        let revoked = rejection(registry.redeem(&token));
        assert_eq!(revoked.reason, RejectReason::Unknown);
        assert!(registry.lock().sessions.is_empty());
        assert!(registry.lock().tokens.is_empty());
    }

    #[test]
    fn issue_checks_arguments() {
        let registry = GrantRegistry::new();
        let _session = registry.register("s1").unwrap();
        let zero = registry.issue("s1", 0, TTL).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidArgument);
        let too_many = registry
            .issue("s1", MAX_TOKENS_PER_ISSUE + 1, TTL)
            .unwrap_err();
        assert_eq!(too_many.kind(), ErrorKind::InvalidArgument);
        let unregistered = registry.issue("s2", 1, TTL).unwrap_err();
        assert_eq!(unregistered.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn register_twice_rejected() {
        let registry = GrantRegistry::new();
        let _session = registry.register("s1").unwrap();
        let err = registry.register("s1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn stored_tokens_bounded() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        for _ in 0..MAX_STORED_TOKENS / MAX_TOKENS_PER_ISSUE {
            session.issue(MAX_TOKENS_PER_ISSUE, TTL).unwrap();
        }
        let err = session.issue(1, TTL).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
    }

    #[test]
    fn grant_message_carries_tokens() {
        let registry = GrantRegistry::new();
        let session = registry.register("s1").unwrap();
        let grant = session.issue_grant(2, TTL, 50052).unwrap();
        assert_eq!(grant.session_id, "s1");
        assert_eq!(grant.data_port, 50052);
        assert_eq!(grant.expires_in_seconds, 60);
        assert_eq!(grant.tokens.len(), 2);
        let token: DataToken = grant.tokens[0].as_ref().try_into().unwrap();
        assert!(registry.redeem(&token).is_ok());
    }
}
