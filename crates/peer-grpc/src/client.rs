//! The client side: [`GrpcPeers`] implements service-core's [`PeerLink`] over one mutual-TLS
//! channel per peer. Calls to one peer are coalesced: a task per peer takes every request
//! waiting in its outbox (up to [`MAX_ENVELOPE_ITEMS`] / [`MAX_ENVELOPE_BYTES`]) into one
//! `Exchange` envelope, with up to [`MAX_IN_FLIGHT`] envelopes in flight per peer. Every call
//! has a deadline; the envelope's gRPC timeout is the latest deadline of what it carries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_proto::peer::ExchangeRequest;
use api_proto::peer::peer_service_client::PeerServiceClient;
use service_core::BoxFuture;
use service_core::peer::{LinkError, PartyId, PeerLink, PeerReply, PeerRequest};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};

use crate::tls::NodeTls;
use crate::{MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES};

/// Most requests in one envelope.
pub const MAX_ENVELOPE_ITEMS: usize = 1024;
/// Most envelopes in flight to one peer.
pub const MAX_IN_FLIGHT: usize = 32;
/// Most calls waiting in one peer's outbox; beyond it calls fail at once.
pub const MAX_OUTBOX: usize = 65_536;
/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

struct Pending {
    request: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<u8>, LinkError>>,
}

/// The peer link over gRPC. See the module documentation.
#[derive(Debug)]
pub struct GrpcPeers {
    outboxes: BTreeMap<PartyId, mpsc::Sender<Pending>>,
}

impl GrpcPeers {
    /// Channels to every `(id, address)` in `peers` (connected lazily, reconnected after
    /// failures), with `tls` for both ends. Call inside a Tokio runtime.
    pub fn connect(tls: &NodeTls, peers: &[(PartyId, SocketAddr)]) -> Result<Self, LinkError> {
        let mut outboxes = BTreeMap::new();
        for (id, addr) in peers {
            let endpoint = Endpoint::from_shared(format!("https://{addr}"))
                .map_err(|e| LinkError::Transport(e.to_string()))?
                .tls_config(tls.client(*id))
                .map_err(|e| LinkError::Transport(e.to_string()))?
                .tcp_nodelay(true)
                .connect_timeout(CONNECT_TIMEOUT)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            let client = PeerServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            let (tx, rx) = mpsc::channel(MAX_OUTBOX);
            tokio::spawn(run_outbox(*id, client, rx));
            outboxes.insert(*id, tx);
        }
        Ok(Self { outboxes })
    }
}

async fn run_outbox(
    peer: PartyId,
    client: PeerServiceClient<Channel>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut bytes = first.request.len();
        let mut batch = vec![first];
        while batch.len() < MAX_ENVELOPE_ITEMS && bytes < MAX_ENVELOPE_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.request.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let client = client.clone();
        tokio::spawn(async move {
            send_envelope(peer, client, batch).await;
            drop(permit);
        });
    }
}

async fn send_envelope(peer: PartyId, mut client: PeerServiceClient<Channel>, batch: Vec<Pending>) {
    let now = Instant::now();
    let (live, expired): (Vec<Pending>, Vec<Pending>) =
        batch.into_iter().partition(|p| p.deadline > now);
    for p in expired {
        let _caller_gone = p.reply.send(Err(LinkError::Deadline(Duration::ZERO)));
    }
    let Some(latest) = live.iter().map(|p| p.deadline).max() else {
        return;
    };
    let (requests, replies): (Vec<Vec<u8>>, Vec<_>) =
        live.into_iter().map(|p| (p.request, p.reply)).unzip();
    let mut req = tonic::Request::new(ExchangeRequest { requests });
    req.set_timeout(latest.saturating_duration_since(now));
    let outcome = match client.exchange(req).await {
        Ok(resp) => {
            let answers = resp.into_inner().replies;
            if answers.len() == replies.len() {
                Ok(answers)
            } else {
                Err(LinkError::Garbled)
            }
        }
        Err(status) => {
            tracing::debug!(peer, code = ?status.code(), message = status.message(), "peer envelope failed");
            Err(LinkError::Transport(format!(
                "{}: {}",
                api_proto::code_name(status.code()),
                status.message()
            )))
        }
    };
    match outcome {
        Ok(answers) => {
            for (tx, a) in replies.into_iter().zip(answers) {
                let _caller_gone = tx.send(Ok(a));
            }
        }
        Err(e) => {
            for tx in replies {
                let _caller_gone = tx.send(Err(e.clone()));
            }
        }
    }
}

impl PeerLink for GrpcPeers {
    fn call(
        &self,
        peer: PartyId,
        request: PeerRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, LinkError>> {
        Box::pin(async move {
            let outbox = self.outboxes.get(&peer).ok_or(LinkError::UnknownPeer)?;
            let bytes = request
                .encode()
                .map_err(|e| LinkError::Transport(e.to_string()))?;
            if bytes.len() > MAX_ENVELOPE_BYTES {
                return Err(LinkError::Transport("request too large".into()));
            }
            let (tx, rx) = oneshot::channel();
            outbox
                .try_send(Pending {
                    request: bytes,
                    deadline: Instant::now() + deadline,
                    reply: tx,
                })
                .map_err(|_| LinkError::Transport("outbox full".into()))?;
            match tokio::time::timeout(deadline, rx).await {
                Err(_) => Err(LinkError::Deadline(deadline)),
                Ok(Err(_)) => Err(LinkError::Transport("envelope dropped".into())),
                Ok(Ok(Err(e))) => Err(e),
                Ok(Ok(Ok(b))) => PeerReply::decode(&b).ok_or(LinkError::Garbled),
            }
        })
    }
}
