//! The gRPC service `blit.v2.Blit`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use blit_core::{Error, ErrorKind};
use blit_proto::convert::status_from_error;
use blit_proto::v2::ModuleInfo;
use blit_proto::v2::blit_server::Blit;
use blit_proto::v2::{
    ListModulesRequest, ListModulesResponse, ListRequest, ListResponse, PullRequest, PullResponse,
    PurgeRequest, PurgeResponse, PushRequest, PushResponse, StatusRequest, StatusResponse,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Identity;
use crate::log_limit::PeerAddr;
use crate::state::DaemonState;
use crate::tokens::Permission;

/// Responses that a push or pull session may queue for its client. A
/// response can hold a manifest batch or a data chunk of up to 1 MiB each,
/// so this bounds a session's queued bytes to about 8 MiB.
const SESSION_QUEUE: usize = 8;

/// The response stream type of the streaming RPCs.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The handlers of the `Blit` service, sharing one [`DaemonState`].
#[derive(Debug, Clone)]
pub struct BlitService {
    state: Arc<DaemonState>,
}

impl BlitService {
    /// Creates the service over a daemon's state.
    pub fn new(state: Arc<DaemonState>) -> BlitService {
        BlitService { state }
    }

    /// Returns the state that the handlers share.
    pub fn state(&self) -> &Arc<DaemonState> {
        &self.state
    }

    /// Returns the modules that the caller may read, or all of them for an
    /// admin, leaving out modules whose host rules reject the peer and, for
    /// callers without an admin token, modules with `list = false`. A
    /// module is read-only to a caller whose token lacks the write
    /// permission there, so that the list shows what a push would meet.
    fn visible_modules(&self, identity: &Identity, peer: Option<SocketAddr>) -> Vec<ModuleInfo> {
        let show_unlisted = identity.has_admin_token();
        self.state
            .config()
            .modules
            .iter()
            .filter(|module| identity.is_admin() || identity.may(&module.name, Permission::Read))
            .filter(|module| self.state.is_listed_for(module, peer, show_unlisted))
            .map(|module| {
                let mut info = crate::state::module_info(module);
                info.read_only |= !identity.may(&module.name, Permission::Write);
                info
            })
            .collect()
    }

    /// Logs a rejected request and converts its error to a status.
    /// Permission denials go through the rate-limited denial log, and
    /// RESOURCE_EXHAUSTED errors, such as a `max_connections` limit,
    /// through a log of their own with the same rate limit.
    fn rejected(
        &self,
        peer: Option<SocketAddr>,
        identity: &Identity,
        rpc: &str,
        err: &Error,
    ) -> Status {
        if err.kind() == ErrorKind::PermissionDenied {
            self.state
                .auth()
                .log_denial(peer, identity.name(), rpc, err.message());
        } else if err.kind() == ErrorKind::ResourceExhausted {
            self.state
                .limits()
                .log_rejection(peer, identity.name(), rpc, err.message());
        } else {
            tracing::warn!(peer = %PeerAddr(peer), token = identity.name(), rpc, error = %err, "request rejected");
        }
        status_from_error(err)
    }
}

#[tonic::async_trait]
impl Blit for BlitService {
    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let identity = self.state.auth().authenticate(&request, "Status")?;
        let peer = request.remote_addr();
        let state = &self.state;
        Ok(Response::new(StatusResponse {
            version: blit_core::VERSION.to_string(),
            uptime_seconds: state.uptime().as_secs(),
            active_sessions: u32::try_from(state.active_sessions()).unwrap_or(u32::MAX),
            modules: self.visible_modules(&identity, peer),
        }))
    }

    async fn list_modules(
        &self,
        request: Request<ListModulesRequest>,
    ) -> Result<Response<ListModulesResponse>, Status> {
        let identity = self.state.auth().authenticate(&request, "ListModules")?;
        let peer = request.remote_addr();
        Ok(Response::new(ListModulesResponse {
            modules: self.visible_modules(&identity, peer),
        }))
    }

    type ListStream = ResponseStream<ListResponse>;

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let identity = self.state.auth().authenticate(&request, "List")?;
        let peer = request.remote_addr();
        let (responses, stream) = mpsc::channel(16);
        crate::browse::list(
            &self.state,
            &identity,
            peer,
            request.into_inner(),
            responses,
        )
        .map_err(|err| self.rejected(peer, &identity, "List", &err))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    type PushStream = ResponseStream<PushResponse>;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let identity = self.state.auth().authenticate(&request, "Push")?;
        let peer = request.remote_addr();
        let (responses, stream) = mpsc::channel(SESSION_QUEUE);
        let state = Arc::clone(&self.state);
        crate::push::start(
            state,
            peer,
            identity.clone(),
            request.into_inner(),
            responses,
        )
        .await
        .map_err(|err| self.rejected(peer, &identity, "Push", &err))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    type PullStream = ResponseStream<PullResponse>;

    async fn pull(
        &self,
        request: Request<Streaming<PullRequest>>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let identity = self.state.auth().authenticate(&request, "Pull")?;
        let peer = request.remote_addr();
        let (responses, stream) = mpsc::channel(SESSION_QUEUE);
        let state = Arc::clone(&self.state);
        crate::pull::start(
            state,
            peer,
            identity.clone(),
            request.into_inner(),
            responses,
        )
        .await
        .map_err(|err| self.rejected(peer, &identity, "Pull", &err))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    async fn purge(
        &self,
        request: Request<PurgeRequest>,
    ) -> Result<Response<PurgeResponse>, Status> {
        let identity = self.state.auth().authenticate(&request, "Purge")?;
        let peer = request.remote_addr();
        let state = Arc::clone(&self.state);
        let request = request.into_inner();
        let caller = identity.clone();
        let deleted = tokio::task::spawn_blocking(move || {
            crate::browse::purge(&state, &caller, peer, &request)
        })
        .await
        .map_err(|err| Status::internal(format!("purge task failed: {err}")))?
        .map_err(|err| self.rejected(peer, &identity, "Purge", &err))?;
        Ok(Response::new(PurgeResponse { deleted }))
    }
}
