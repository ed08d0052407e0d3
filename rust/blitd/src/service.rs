//! The gRPC service `blit.v2.Blit`.

use std::pin::Pin;
use std::sync::Arc;

use blit_proto::convert::status_from_error;
use blit_proto::v2::blit_server::Blit;
use blit_proto::v2::{
    ListModulesRequest, ListModulesResponse, ListRequest, ListResponse, PullRequest, PullResponse,
    PurgeRequest, PurgeResponse, PushRequest, PushResponse, StatusRequest, StatusResponse,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::state::DaemonState;

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
}

#[tonic::async_trait]
impl Blit for BlitService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let state = &self.state;
        Ok(Response::new(StatusResponse {
            version: blit_core::VERSION.to_string(),
            uptime_seconds: state.uptime().as_secs(),
            active_sessions: u32::try_from(state.active_sessions()).unwrap_or(u32::MAX),
            modules: state.module_infos(),
        }))
    }

    async fn list_modules(
        &self,
        _request: Request<ListModulesRequest>,
    ) -> Result<Response<ListModulesResponse>, Status> {
        Ok(Response::new(ListModulesResponse {
            modules: self.state.module_infos(),
        }))
    }

    type ListStream = ResponseStream<ListResponse>;

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (responses, stream) = mpsc::channel(16);
        crate::browse::list(&self.state, request.into_inner(), responses)
            .map_err(|err| status_from_error(&err))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    type PushStream = ResponseStream<PushResponse>;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let peer = request.remote_addr();
        let (responses, stream) = mpsc::channel(64);
        crate::push::start(
            Arc::clone(&self.state),
            peer,
            request.into_inner(),
            responses,
        )
        .await
        .map_err(|err| {
            tracing::warn!(peer = ?peer, error = %err, "push rejected");
            status_from_error(&err)
        })?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    type PullStream = ResponseStream<PullResponse>;

    async fn pull(
        &self,
        request: Request<Streaming<PullRequest>>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let peer = request.remote_addr();
        let (responses, stream) = mpsc::channel(64);
        crate::pull::start(
            Arc::clone(&self.state),
            peer,
            request.into_inner(),
            responses,
        )
        .await
        .map_err(|err| {
            tracing::warn!(peer = ?peer, error = %err, "pull rejected");
            status_from_error(&err)
        })?;
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    async fn purge(
        &self,
        request: Request<PurgeRequest>,
    ) -> Result<Response<PurgeResponse>, Status> {
        let peer = request.remote_addr();
        let state = Arc::clone(&self.state);
        let request = request.into_inner();
        let deleted = tokio::task::spawn_blocking(move || crate::browse::purge(&state, &request))
            .await
            .map_err(|err| Status::internal(format!("purge task failed: {err}")))?
            .map_err(|err| {
                tracing::warn!(peer = ?peer, error = %err, "purge failed");
                status_from_error(&err)
            })?;
        Ok(Response::new(PurgeResponse { deleted }))
    }
}
