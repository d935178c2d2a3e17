//! The server side: the `tessera.peer.v1` service over mutual TLS. A request is answered only
//! when the client's certificate (already checked against the cluster CA by rustls) names one
//! of this node's configured peers; every request of the envelope is then handed to this
//! node's [`Party`] as coming from that peer, concurrently.

use std::future::Future;
use std::sync::Arc;

use api_proto::peer::peer_service_server::{PeerService, PeerServiceServer};
use api_proto::peer::{ExchangeRequest, ExchangeResponse};
use service_core::Party;
use service_core::peer::{PartyId, PeerReply, PeerRequest, RemoteFailure, RemoteKind};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use zeroize::Zeroize;

use crate::tls::{NodeTls, party_of};
use crate::{MAX_MESSAGE_BYTES, client::MAX_ENVELOPE_ITEMS};

/// The peer service of one node.
#[derive(Debug)]
pub struct PeerServer {
    party: Arc<Party>,
    peers: Vec<PartyId>,
}

impl PeerServer {
    /// Answers `peers` (this node's configured peers) with `party`.
    pub fn new(party: Arc<Party>, peers: Vec<PartyId>) -> Self {
        Self { party, peers }
    }

    fn sender<T>(&self, req: &Request<T>) -> Result<PartyId, Status> {
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        party_of(leaf, &self.peers).ok_or_else(|| {
            Status::permission_denied("the certificate names no party configured on this node")
        })
    }
}

#[tonic::async_trait]
impl PeerService for PeerServer {
    async fn exchange(
        &self,
        request: Request<ExchangeRequest>,
    ) -> Result<Response<ExchangeResponse>, Status> {
        let from = match self.sender(&request) {
            Ok(f) => f,
            Err(status) => {
                tracing::warn!(remote = ?request.remote_addr(), message = status.message(), "refused a peer call");
                return Err(status);
            }
        };
        let requests = request.into_inner().requests;
        if requests.len() > MAX_ENVELOPE_ITEMS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_ENVELOPE_ITEMS} requests per envelope"
            )));
        }
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|mut bytes| {
                let party = Arc::clone(&self.party);
                tokio::spawn(async move {
                    let request = PeerRequest::decode(&bytes);
                    // The encoding of a share delivery or an import holds secret bytes.
                    bytes.zeroize();
                    match request {
                        Some(r) => party.handle(from, r).await,
                        None => PeerReply::Failed(RemoteFailure {
                            message: "undecodable request".into(),
                            culprits: vec![from],
                            kind: RemoteKind::InvalidArgument,
                        }),
                    }
                })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for t in tasks {
            let reply = t
                .await
                .map_err(|_| Status::internal("a peer request failed"))?;
            replies.push(
                reply
                    .encode()
                    .map_err(|_| Status::internal("encoding a reply"))?,
            );
        }
        Ok(Response::new(ExchangeResponse { replies }))
    }
}

/// Serves `server` on `listener` with mutual TLS until `shutdown` completes. Accepted
/// connections get TCP_NODELAY; messages are bounded by [`MAX_MESSAGE_BYTES`].
pub async fn serve(
    listener: TcpListener,
    tls: &NodeTls,
    server: PeerServer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let svc = PeerServiceServer::new(server)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Server::builder()
        .tls_config(tls.server())?
        .add_service(svc)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
