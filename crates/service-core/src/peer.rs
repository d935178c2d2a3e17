//! The peer port of the distributed deployment: the messages nodes exchange ([`PeerRequest`],
//! [`PeerReply`]), their one wire encoding, and [`PeerLink`], the port a transport adapter
//! implements (the gRPC one is `peer-grpc`: mutual TLS, coalesced envelopes, deadlines).
//!
//! Every request names the session it belongs to; the receiving node learns who sent it from
//! the transport (the peer's certificate), never from the message.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::coordinator::BoxFuture;
use crate::{Error, Scheme};

/// A node's party id (`1..=n`): its Shamir evaluation point for every key of the cluster.
pub type PartyId = u16;

/// Identifies one protocol session (a DKG, or one signer's nonces) across the nodes.
pub type SessionId = [u8; 16];

/// A key being created: everything a node needs to store its share under the same id as the
/// others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    /// The key id every node stores its share under.
    pub key_id: String,
    /// The scheme.
    pub scheme: Scheme,
    /// The signing threshold t.
    pub threshold: u16,
    /// The number of parties n.
    pub parties: u16,
    /// The caller's label.
    pub label: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The client that asked for the key (empty when authentication is off).
    pub owner: String,
}

/// A request from one node to another. Its `Debug` names the kind only: a DKG delivery
/// carries a secret share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PeerRequest {
    /// A liveness probe (the half-open probe of a circuit breaker).
    Ping,
    /// DKG round 1: draw a polynomial, answer with the round-1 broadcast package.
    DkgStart {
        /// The DKG session.
        session: SessionId,
        /// The key being made.
        key: NewKey,
        /// The 32-byte DKG session id every proof of knowledge is bound to.
        dkg_id: [u8; 32],
    },
    /// DKG round 2: every party's round-1 package; check the proofs, then deliver each other
    /// party its private share directly ([`PeerRequest::DkgDeliver`]) and answer when every
    /// delivery was acknowledged.
    DkgShares {
        /// The DKG session.
        session: SessionId,
        /// `(party, round-1 package)` for every party.
        round1: Vec<(PartyId, Vec<u8>)>,
    },
    /// DKG round 2, party to party: the sender's private share for the receiver (sent only
    /// over the authenticated, encrypted peer channel; never through a coordinator).
    DkgDeliver {
        /// The DKG session.
        session: SessionId,
        /// The step the message belongs to (1 for the round-2 shares; threshold-ECDSA key
        /// generation runs its pairwise base OTs in the steps after it).
        step: u8,
        /// The message: a FROST share, or a threshold-ECDSA key-generation message (wiped on
        /// drop).
        share: Zeroizing<Vec<u8>>,
    },
    /// DKG next step: check what the other parties delivered in the last step, then deliver
    /// this step's messages and answer `Done`, or, once this party's key generation is
    /// complete, answer with the confirmation hash. FROST confirms at the first call;
    /// threshold ECDSA first runs the four further flows of its pairwise base OTs.
    DkgConfirm {
        /// The DKG session.
        session: SessionId,
    },
    /// DKG finish: compare every confirmation; on success seal and store this node's share.
    DkgFinish {
        /// The DKG session.
        session: SessionId,
        /// `(party, confirmation)` for every party.
        confirmations: Vec<(PartyId, [u8; 32])>,
    },
    /// Compensation: forget a session's secrets (DKG state, or unused nonces).
    Abort {
        /// The sessions.
        sessions: Vec<SessionId>,
    },
    /// Signing round 1: `count` fresh nonce pairs for `key_id`, kept in memory only.
    Commit {
        /// The key.
        key_id: String,
        /// How many.
        count: u32,
    },
    /// Signing round 2: one signature share per item, each consuming its nonces.
    SignShares {
        /// The key.
        key_id: String,
        /// `(nonce session, encoded signing package)`.
        items: Vec<(SessionId, Vec<u8>)>,
        /// The client the coordinating node authenticated (empty when authentication is off):
        /// this node checks its own policy for that client before it signs.
        client: String,
    },
    /// Threshold-ECDSA presigning, round 1, for the signer set `signers` (this node among
    /// them): start one presignature per session and deliver the round-1 messages to the
    /// other signers directly ([`PeerRequest::PresignDeliver`]).
    PresignStart {
        /// The key.
        key_id: String,
        /// The signer set, ascending.
        signers: Vec<PartyId>,
        /// One session per presignature.
        sessions: Vec<SessionId>,
    },
    /// Threshold-ECDSA presigning, party to party: one round's messages for the receiver.
    PresignDeliver {
        /// The key.
        key_id: String,
        /// The round (1 or 2).
        round: u8,
        /// `(session, encoded message)`.
        items: Vec<(SessionId, Vec<u8>)>,
    },
    /// Threshold-ECDSA presigning, round 2: check the round-1 messages received, deliver
    /// the round-2 messages directly.
    PresignRound2 {
        /// The key.
        key_id: String,
        /// The sessions.
        sessions: Vec<SessionId>,
    },
    /// Threshold-ECDSA presigning, end: check the round-2 messages received and keep the
    /// presignatures (memory only, single use); answer with each one's nonce point `R`.
    PresignFinish {
        /// The key.
        key_id: String,
        /// The sessions.
        sessions: Vec<SessionId>,
    },
    /// Threshold-ECDSA online round: one signature share per item, each consuming its
    /// presignature.
    EcdsaSign {
        /// The key.
        key_id: String,
        /// `(presignature session, 32-byte prehash)`.
        items: Vec<(SessionId, [u8; 32])>,
        /// The client the coordinating node authenticated (checked against this node's
        /// policy, as for [`PeerRequest::SignShares`]).
        client: String,
    },
    /// Threshold ECDSA: a fresh base OT between the sender and this party for `key_id`, run
    /// after one of them discarded its OT state with the other (the selective-abort defence
    /// of DKLs23). Three calls (`round` 1 to 3) carry the sender's next flows of
    /// `dkls23::keygen::PairSetup` (one in round 1, two after) and are answered with this
    /// party's ([`PeerReply::PairFlows`]).
    PairRefresh {
        /// The key.
        key_id: String,
        /// The refresh session.
        session: SessionId,
        /// 1, 2 or 3.
        round: u8,
        /// The sender's flows for this round.
        flows: Vec<Vec<u8>>,
    },
    /// `ImportKey` across nodes: this party's share of a key split by the coordinating node
    /// (which held the secret while it split it), to check and store under `key.key_id`.
    ImportShare {
        /// The key being imported.
        key: NewKey,
        /// This party's part of the key, encoded as the node stores it (secret; wiped on drop).
        share: Zeroizing<Vec<u8>>,
    },
    /// Threshold ECDSA after an import: run a fresh base OT with each of `peers` (replacing
    /// the OT state the dealer made), in the background.
    RefreshPairs {
        /// The key.
        key_id: String,
        /// The peers.
        peers: Vec<PartyId>,
    },
    /// A `Sign` request with an idempotency key, forwarded to the node that owns the key's
    /// idempotency records (its home), which signs it as if it had received it.
    SignFor {
        /// The key.
        key_id: String,
        /// The message.
        message: Vec<u8>,
        /// BIP340 Taproot option, as in the API.
        taproot_merkle_root: Option<Vec<u8>>,
        /// The idempotency key.
        idempotency_key: String,
        /// The client the forwarding node authenticated (recorded with the signature).
        client: String,
    },
    /// From the node that created `key_id` (ran its key generation or import): it stored its
    /// own share (`committed`), so the share this node holds pending becomes a key; or it did
    /// not, so that share is deleted.
    KeySettled {
        /// The key.
        key_id: String,
        /// Whether the creator stored its share.
        committed: bool,
    },
    /// To the node that created `key_id`: how its creation stands
    /// ([`PeerReply::Creation`]), asked by a node that holds a pending share of it.
    CreationState {
        /// The key.
        key_id: String,
    },
}

/// A node's answer to a [`PeerRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PeerReply {
    /// Done, nothing to return.
    Done,
    /// The round-1 broadcast package.
    Round1(Vec<u8>),
    /// The round-3 confirmation hash.
    Confirmation([u8; 32]),
    /// The DKG finished; the group public key.
    Finished(Vec<u8>),
    /// `(nonce session, encoded commitments)` per requested nonce pair.
    Commitments(Vec<(SessionId, Vec<u8>)>),
    /// One 32-byte signature share (or the failure) per item, in order.
    Shares(Vec<Result<Vec<u8>, String>>),
    /// A forwarded request's signature.
    Signed(crate::Signature),
    /// Per presigning session, the nonce point `R` (SEC1 compressed) or the failure.
    Presigned(Vec<Result<Vec<u8>, String>>),
    /// This party's flows of a pairwise base-OT refresh.
    PairFlows(Vec<Vec<u8>>),
    /// The request failed at the peer.
    Failed(RemoteFailure),
    /// How the creation of a key stands at the node that creates it.
    Creation(Creation),
}

/// How the creation of a key stands at the node that creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Creation {
    /// The key is still being made: not settled yet.
    Running,
    /// The creator stored its share: the key exists.
    Committed,
    /// The creator holds no such key and is not making it: it failed, or the creator
    /// stopped before it stored its share.
    Abandoned,
}

/// A failure reported by a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFailure {
    /// What failed (no secret material).
    pub message: String,
    /// Parties the peer's checks blamed.
    pub culprits: Vec<PartyId>,
    /// The failure's class at the peer (a forwarded request's caller gets the same).
    pub kind: RemoteKind,
}

/// The class of a peer's failure, mirroring [`crate::ErrorKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteKind {
    /// The request was malformed.
    InvalidArgument,
    /// The key does not exist.
    NotFound,
    /// The peer is overloaded.
    ResourceExhausted,
    /// The request conflicts with an earlier one (e.g. a reused idempotency key).
    FailedPrecondition,
    /// The peer cannot take work now.
    Unavailable,
    /// A fault of the peer.
    Internal,
    /// The client the request was made for may not do it there.
    PermissionDenied,
}

impl RemoteKind {
    /// The class of `e`.
    pub fn of(e: &Error) -> Self {
        match e.kind() {
            crate::ErrorKind::InvalidArgument => RemoteKind::InvalidArgument,
            crate::ErrorKind::NotFound => RemoteKind::NotFound,
            crate::ErrorKind::ResourceExhausted => RemoteKind::ResourceExhausted,
            crate::ErrorKind::FailedPrecondition => RemoteKind::FailedPrecondition,
            crate::ErrorKind::Unavailable => RemoteKind::Unavailable,
            crate::ErrorKind::PermissionDenied | crate::ErrorKind::Unauthenticated => {
                RemoteKind::PermissionDenied
            }
            _ => RemoteKind::Internal,
        }
    }
}

impl std::fmt::Debug for PeerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerRequest::{}(<redacted>)", self.kind())
    }
}

impl PeerRequest {
    /// The request's encoding on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        postcard::to_stdvec(self).map_err(|_| Error::Internal("encoding a peer request"))
    }
    /// Decodes a request; `None` when the bytes are not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        postcard::from_bytes(b).ok()
    }
    /// The metric label of the request's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerRequest::Ping => "ping",
            PeerRequest::DkgStart { .. } => "dkg_start",
            PeerRequest::DkgShares { .. } => "dkg_shares",
            PeerRequest::DkgDeliver { .. } => "dkg_deliver",
            PeerRequest::DkgConfirm { .. } => "dkg_confirm",
            PeerRequest::DkgFinish { .. } => "dkg_finish",
            PeerRequest::Abort { .. } => "abort",
            PeerRequest::Commit { .. } => "commit",
            PeerRequest::SignShares { .. } => "sign_shares",
            PeerRequest::SignFor { .. } => "sign_for",
            PeerRequest::PresignStart { .. } => "presign_start",
            PeerRequest::PresignDeliver { .. } => "presign_deliver",
            PeerRequest::PresignRound2 { .. } => "presign_round2",
            PeerRequest::PresignFinish { .. } => "presign_finish",
            PeerRequest::EcdsaSign { .. } => "ecdsa_sign",
            PeerRequest::PairRefresh { .. } => "pair_refresh",
            PeerRequest::ImportShare { .. } => "import_share",
            PeerRequest::RefreshPairs { .. } => "refresh_pairs",
            PeerRequest::KeySettled { .. } => "key_settled",
            PeerRequest::CreationState { .. } => "creation_state",
        }
    }
}

impl PeerReply {
    /// The reply's encoding on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        postcard::to_stdvec(self).map_err(|_| Error::Internal("encoding a peer reply"))
    }
    /// Decodes a reply; `None` when the bytes are not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        postcard::from_bytes(b).ok()
    }
}

/// Why a call to a peer produced no reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer is not configured.
    #[error("not a configured peer")]
    UnknownPeer,
    /// The deadline passed first.
    #[error("no answer within {0:?}")]
    Deadline(Duration),
    /// The connection failed or the peer refused the call.
    #[error("transport: {0}")]
    Transport(String),
    /// The peer's answer could not be decoded.
    #[error("undecodable answer")]
    Garbled,
}

/// Sends requests to peer nodes. Adapters must put a deadline on every call, bound message
/// sizes, and may coalesce concurrent calls to one peer into one envelope.
pub trait PeerLink: Send + Sync + std::fmt::Debug {
    /// Sends `request` to `peer` and waits at most `deadline` for its reply.
    fn call(
        &self,
        peer: PartyId,
        request: PeerRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, LinkError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let r = PeerRequest::SignShares {
            key_id: "k".into(),
            items: vec![([7; 16], vec![1, 2, 3])],
            client: "payments".into(),
        };
        assert_eq!(PeerRequest::decode(&r.encode().unwrap()), Some(r));
        let a = PeerReply::Shares(vec![Ok(vec![9; 32]), Err("no nonces".into())]);
        assert_eq!(PeerReply::decode(&a.encode().unwrap()), Some(a));
        assert_eq!(PeerRequest::decode(&[0xff, 0xff, 0xff]), None);
        let secret = PeerRequest::DkgDeliver {
            session: [1; 16],
            step: 1,
            share: Zeroizing::new(vec![0xab; 32]),
        };
        assert!(
            !format!("{secret:?}").contains("171"),
            "the share is not printed"
        );
    }
}
