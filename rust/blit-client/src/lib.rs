//! A blocking client for `blitd`, shared by the Python module, the CLI and
//! the C ABI so that all of them behave alike.
//!
//! [`Client`] owns a small tokio runtime and one gRPC channel; its methods
//! block the calling thread and may be called from several threads at once.

mod cancel_watch;
mod connector;
mod data_stream;
mod pull;
mod push;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blit_core::{Error, ErrorKind, RemoteAddress, Result};
use blit_proto::convert::{entry_from_proto, error_from_status};
use blit_proto::v2;
use blit_proto::v2::blit_client::BlitClient;
use blit_transfer::Entry;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::connector::{Connector, connect_error};
use crate::tls::{ClientTls, ConnectFailure, host_port};

pub use pull::pull;
pub use push::push;

/// Environment variable that supplies the token when none is given.
pub const TOKEN_ENV: &str = "BLIT_TOKEN";

/// How long connecting to the control or the data port may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests that a push or pull may queue for the daemon. A request can
/// hold a manifest batch or, on the gRPC data path, a data chunk of up to
/// 1 MiB each, so this bounds the queued bytes to about 8 MiB. A queue of
/// 64 let the fallback's client grow past 100 MiB.
pub(crate) const MESSAGE_QUEUE: usize = 8;

/// Options that every request of a client shares. Its `Debug` output
/// hides the token.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Bearer token; `None` reads [`TOKEN_ENV`].
    pub token: Option<String>,
    /// PEM file of CA certificates to trust, besides the system's, for a
    /// `blits://` address; rejected for `blit://`.
    pub tls_ca: Option<PathBuf>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

/// Options of a push or pull.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// Delete destination entries that the source lacks.
    pub mirror: bool,
    /// Compare files of equal size by BLAKE3 hash.
    pub checksum: bool,
    /// Exclude patterns with rsync's rules.
    pub exclude: Vec<String>,
    /// Fsync files and directories before reporting success.
    pub fsync: bool,
    /// Change nothing; count and list what would change.
    pub dry_run: bool,
    /// Carry file bytes inside the gRPC stream instead of the data plane.
    pub force_grpc_data: bool,
}

impl TransferOptions {
    pub(crate) fn to_proto(&self) -> v2::TransferOptions {
        v2::TransferOptions {
            mirror: self.mirror,
            checksum: self.checksum,
            exclude: self.exclude.clone(),
            fsync: self.fsync,
            dry_run: self.dry_run,
            force_grpc_data: self.force_grpc_data,
        }
    }
}

/// The daemon's reply to a status request.
#[derive(Debug, Clone)]
pub struct DaemonStatus {
    /// blitd's version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_seconds: u64,
    /// Sessions running now.
    pub active_sessions: u32,
    /// Modules that the caller may read.
    pub modules: Vec<ModuleInfo>,
}

/// One module that a daemon exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Name used in addresses.
    pub name: String,
    /// Free-form description.
    pub comment: String,
    /// Whether the module rejects writes and deletions.
    pub read_only: bool,
}

impl From<v2::ModuleInfo> for ModuleInfo {
    fn from(module: v2::ModuleInfo) -> ModuleInfo {
        ModuleInfo {
            name: module.name,
            comment: module.comment,
            read_only: module.read_only,
        }
    }
}

/// A connection to one daemon.
pub struct Client {
    pub(crate) runtime: Arc<tokio::runtime::Runtime>,
    pub(crate) channel: Channel,
    pub(crate) address: RemoteAddress,
    /// TLS settings of a `blits://` address, shared by both planes.
    pub(crate) tls: Option<Arc<ClientTls>>,
    /// Reason that connections fail, when the transport error does not
    /// explain it.
    connect_failure: Arc<ConnectFailure>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to the daemon that `address` names (its module and path are
    /// ignored here). A `blits://` address connects with TLS. The daemon's
    /// certificate must then be valid for the address's host and chain to
    /// the system's trust roots or to `options.tls_ca`, and no option skips
    /// this check.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Network`] naming the address when the daemon
    /// cannot be reached or its certificate cannot be verified (the message
    /// says to pass `--tls-ca` when the issuer is unknown), and
    /// [`ErrorKind::InvalidArgument`] for a token that is not printable
    /// ASCII, a CA file that cannot be used, `tls_ca` with a `blit://`
    /// address, or a `blits://` address of a daemon that does not serve
    /// TLS. A `blit://` address of a daemon that requires TLS connects, but
    /// its first request fails with [`ErrorKind::InvalidArgument`] and a
    /// message naming the `blits://` address to use.
    pub fn connect(address: &RemoteAddress, options: &ClientOptions) -> Result<Client> {
        if !address.tls && options.tls_ca.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{address}: a TLS CA file applies only to blits:// addresses; use blits:// \
                     to connect with TLS, or drop the CA file"
                ),
            ));
        }
        let token = bearer_token(options)?;
        let tls = if address.tls {
            Some(Arc::new(ClientTls::new(
                address,
                options.tls_ca.as_deref(),
            )?))
        } else {
            None
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blit-client")
            .enable_all()
            .build()
            .map_err(|err| {
                Error::new(
                    ErrorKind::ResourceExhausted,
                    format!("cannot start the client runtime: {err}"),
                )
            })?;

        // The connector runs TLS itself, so the URI stays http:// for
        // either scheme.
        let endpoint = Endpoint::from_shared(format!("http://{}", host_port(address)))
            .map_err(|err| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("invalid address {address}: {err}"),
                )
            })?
            .connect_timeout(CONNECT_TIMEOUT);
        let connect_failure = Arc::new(ConnectFailure::default());
        let connector = Connector::new(address.clone(), tls.clone(), Arc::clone(&connect_failure));
        let channel = runtime
            .block_on(endpoint.connect_with_connector(connector))
            .map_err(|err| connect_error(address, &connect_failure, &err))?;

        Ok(Client {
            runtime: Arc::new(runtime),
            channel,
            address: address.clone(),
            tls,
            connect_failure,
            token,
        })
    }

    pub(crate) fn rpc(&self) -> BlitClient<Channel> {
        BlitClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// Wraps a message in a request with the authorization header.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }

    /// Converts a failed RPC's status into an error, preferring the
    /// recorded reason when connections to the daemon fail.
    pub(crate) fn error(&self, status: &tonic::Status) -> Error {
        if let Some(err) = self.connect_failure.error() {
            return err;
        }
        error_from_status(
            status,
            &format!("{}:{}", self.address.host, self.address.port),
        )
    }

    /// Returns the daemon's version, uptime, sessions and modules.
    ///
    /// # Errors
    ///
    /// Returns the daemon's error, or [`ErrorKind::Network`].
    pub fn status(&self) -> Result<DaemonStatus> {
        let mut rpc = self.rpc();
        let response = self
            .runtime
            .block_on(rpc.status(self.request(v2::StatusRequest {})))
            .map_err(|status| self.error(&status))?
            .into_inner();
        Ok(DaemonStatus {
            version: response.version,
            uptime_seconds: response.uptime_seconds,
            active_sessions: response.active_sessions,
            modules: response.modules.into_iter().map(ModuleInfo::from).collect(),
        })
    }

    /// Lists the modules that the caller may read.
    ///
    /// # Errors
    ///
    /// Returns the daemon's error, or [`ErrorKind::Network`].
    pub fn list_modules(&self) -> Result<Vec<ModuleInfo>> {
        let mut rpc = self.rpc();
        let response = self
            .runtime
            .block_on(rpc.list_modules(self.request(v2::ListModulesRequest {})))
            .map_err(|status| self.error(&status))?
            .into_inner();
        Ok(response.modules.into_iter().map(ModuleInfo::from).collect())
    }

    /// Lists the entries under `path` in `module`, one level or the whole
    /// subtree.
    ///
    /// # Errors
    ///
    /// Returns the daemon's error ([`ErrorKind::NotFound`] for a missing
    /// module or path), or [`ErrorKind::Network`].
    pub fn list(&self, module: &str, path: &[u8], recursive: bool) -> Result<Vec<Entry>> {
        let mut rpc = self.rpc();
        let request = self.request(v2::ListRequest {
            module: module.to_string(),
            path: path.to_vec().into(),
            recursive,
        });
        self.runtime.block_on(async {
            let mut stream = rpc
                .list(request)
                .await
                .map_err(|status| self.error(&status))?
                .into_inner();
            let mut entries = Vec::new();
            while let Some(batch) = stream
                .message()
                .await
                .map_err(|status| self.error(&status))?
            {
                for entry in batch.entries {
                    entries.push(entry_from_proto(entry)?);
                }
            }
            Ok(entries)
        })
    }

    /// Deletes `paths` (files or whole trees) inside `module`. Returns the
    /// number of entries deleted.
    ///
    /// # Errors
    ///
    /// Returns the daemon's error: [`ErrorKind::PermissionDenied`] for a
    /// read-only module, [`ErrorKind::InvalidArgument`] for the module root
    /// or an escaping path, [`ErrorKind::NotFound`] for a missing path.
    pub fn purge(&self, module: &str, paths: &[Vec<u8>]) -> Result<u64> {
        let mut rpc = self.rpc();
        let request = self.request(v2::PurgeRequest {
            module: module.to_string(),
            paths: paths.iter().map(|p| p.clone().into()).collect(),
        });
        let response = self
            .runtime
            .block_on(rpc.purge(request))
            .map_err(|status| self.error(&status))?
            .into_inner();
        Ok(response.deleted)
    }
}

/// Returns the `authorization` header value for the token of `options`, or
/// of [`TOKEN_ENV`] when `options` has none.
fn bearer_token(options: &ClientOptions) -> Result<Option<MetadataValue<tonic::metadata::Ascii>>> {
    let token = match options
        .token
        .clone()
        .or_else(|| std::env::var(TOKEN_ENV).ok())
    {
        None => None,
        Some(token) => {
            let token = token.trim().to_string();
            let value = format!("Bearer {token}").parse().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    "the token contains characters that are not printable ASCII; check the \
                     token file or BLIT_TOKEN",
                )
            })?;
            Some(value)
        }
    };
    Ok(token)
}

/// Joins an error and its sources into one line, since transport errors
/// keep the useful part (such as "connection refused") in a source.
pub(crate) fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_hides_token() {
        let options = super::ClientOptions {
            token: Some("blit_secret_value".into()),
            tls_ca: None,
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
    }
}
