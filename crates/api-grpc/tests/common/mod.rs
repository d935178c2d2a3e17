//! The in-process harness: the `App` wired exactly as `tessera serve` wires it, over an
//! in-memory store and the single-threaded CPU backend, behind a `GrpcApi` whose trait methods
//! the tests call directly (no network, no process), plus the assertions the tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use api_grpc::GrpcApi;
use api_proto as pb;
use api_proto::signer_service_server::SignerService;
use service_core::audit::Event;
use service_core::batcher::BatcherConfig;
use service_core::memory::MemoryStore;
use service_core::{App, AppSetup, AuditLog, Auth, Kek, Limits, Observer, PresignPool};
use telemetry::{BuildInfo, Metered, Metrics};
use tonic::{Code, Request, Status};

/// The KEK of every harness.
pub const KEK: [u8; 32] = [7; 32];

/// What a harness may vary.
#[derive(Clone, Debug)]
pub struct Options {
    /// `batcher.max_queue`.
    pub max_queue: usize,
    /// The ECDSA presignature pool.
    pub pool: PresignPool,
    /// Authentication (off by default).
    pub auth: Auth,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_queue: 16384,
            pool: PresignPool {
                target: 4,
                batch: 2,
            },
            auth: Auth::none(),
        }
    }
}

/// An `App` behind a `GrpcApi`, with its store and metrics at hand.
pub struct Harness {
    /// The API under test.
    pub api: GrpcApi,
    /// The storage the App writes to.
    pub store: Arc<MemoryStore>,
    /// The metrics the API and the App record into.
    pub metrics: Arc<Metrics>,
    /// The API key sent as `authorization: Bearer`, if any.
    pub bearer: Option<String>,
}

impl Harness {
    /// The default harness.
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    /// A harness with `opts`.
    pub fn with(opts: Options) -> Self {
        Self::over(Arc::new(MemoryStore::new()), opts)
    }

    /// A harness over an existing `store` (the App's KEK is always [`KEK`]).
    pub fn over(store: Arc<MemoryStore>, opts: Options) -> Self {
        let metrics = Arc::new(Metrics::new(&BuildInfo::default()));
        let accel: Arc<dyn accel_api::Accelerator> = Arc::new(Metered::new(
            Arc::new(backend_cpu::CpuBackend::single_threaded()),
            Arc::clone(&metrics),
        ));
        let app = Arc::new(
            App::embedded(AppSetup {
                store: Arc::clone(&store) as Arc<dyn service_core::Store>,
                sealer: Arc::new(Kek::from_bytes(KEK)),
                accel,
                observer: Arc::clone(&metrics) as Arc<dyn Observer>,
                batcher: BatcherConfig {
                    max_batch_size: 64,
                    max_queue_delay_us: 200,
                    max_queue: opts.max_queue,
                    workers: 2,
                },
                probe: telemetry::last_backend,
                chains: None,
                broadcaster: None,
                limits: Limits {
                    max_message_bytes: 65536,
                    max_batch_messages: 4096,
                    max_parties_frost: 64,
                    max_parties_ecdsa: 16,
                    max_concurrent_keygen: 4,
                    max_batch_items_in_flight: 8192,
                },
                pool: opts.pool,
                backend: "cpu".to_owned(),
                auth: opts.auth,
            })
            .expect("embedded app"),
        );
        Self {
            api: GrpcApi::new(app, Arc::clone(&metrics)),
            store,
            metrics,
            bearer: None,
        }
    }

    /// The same API, called with `api_key` as the bearer credential.
    pub fn as_client(&self, api_key: &str) -> Self {
        Self {
            api: self.api.clone(),
            store: Arc::clone(&self.store),
            metrics: Arc::clone(&self.metrics),
            bearer: Some(api_key.to_owned()),
        }
    }

    /// `msg` as a request carrying the harness's credential.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(k) = &self.bearer {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {k}").parse().unwrap());
        }
        r
    }

    /// CreateKey.
    pub async fn create(&self, req: pb::CreateKeyRequest) -> Result<pb::KeyInfo, Status> {
        self.api
            .create_key(self.req(req))
            .await
            .map(tonic::Response::into_inner)
    }

    /// ImportKey.
    pub async fn import(&self, req: pb::ImportKeyRequest) -> Result<pb::KeyInfo, Status> {
        self.api
            .import_key(self.req(req))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sign.
    pub async fn sign(&self, req: pb::SignRequest) -> Result<pb::SignResponse, Status> {
        self.api
            .sign(self.req(req))
            .await
            .map(tonic::Response::into_inner)
    }

    /// SignBatch.
    pub async fn sign_batch(
        &self,
        req: pb::SignBatchRequest,
    ) -> Result<pb::SignBatchResponse, Status> {
        self.api
            .sign_batch(self.req(req))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Verify.
    pub async fn verify(&self, req: pb::VerifyRequest) -> Result<bool, Status> {
        self.api
            .verify(self.req(req))
            .await
            .map(|r| r.into_inner().valid)
    }

    /// GetKey.
    pub async fn get_key(&self, key_id: &str) -> Result<pb::KeyInfo, Status> {
        self.api
            .get_key(self.req(pb::GetKeyRequest {
                key_id: key_id.to_owned(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// ListKeys.
    pub async fn list(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListKeysResponse, Status> {
        self.api
            .list_keys(self.req(pb::ListKeysRequest {
                page_size,
                page_token: page_token.to_owned(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// GetStatus.
    pub async fn status(&self) -> pb::GetStatusResponse {
        self.api
            .get_status(self.req(pb::GetStatusRequest {}))
            .await
            .unwrap()
            .into_inner()
    }

    /// Every key, by one ListKeys call.
    pub async fn keys(&self) -> Vec<pb::KeyInfo> {
        let page = self.list(1000, "").await.unwrap();
        assert!(page.next_page_token.is_empty());
        page.keys
    }

    /// A 2-of-3 key of `scheme` labelled `label`.
    pub async fn key(&self, scheme: pb::Scheme, label: &str) -> pb::KeyInfo {
        self.create(create_req(scheme as i32, 2, 3, label))
            .await
            .unwrap()
    }

    /// Every audit event, after checking the hash chain.
    pub fn events(&self) -> Vec<Event> {
        let n = self.store.verify_audit_chain().unwrap();
        let events = self.store.events(None, usize::MAX).unwrap();
        assert_eq!(events.len() as u64, n);
        events.into_iter().map(|(_, e)| e).collect()
    }

    /// `SignatureIssued` events in the audit log.
    pub fn signature_events(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::SignatureIssued { .. }))
            .count()
    }

    /// `KeyCreated` events in the audit log.
    pub fn key_events(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::KeyCreated { .. }))
            .count()
    }

    /// The metrics text exposition.
    pub fn scrape(&self) -> String {
        self.metrics.render()
    }

    /// What a request that must change nothing may not change.
    pub async fn snapshot(&self) -> Snapshot {
        Snapshot {
            keys: self.keys().await,
            key_count: self.status().await.key_count,
            events: self.events(),
            signatures_metric: sum_samples(&self.scrape(), "tessera_signatures_total", &[]),
        }
    }

    /// Asserts that nothing changed since `before`: the same keys (ListKeys and GetStatus),
    /// no audit event (no key created, nothing signed) and no signature counted.
    pub async fn assert_unchanged(&self, before: &Snapshot) {
        let now = self.snapshot().await;
        assert_eq!(now.keys, before.keys, "ListKeys changed");
        assert_eq!(
            now.key_count, before.key_count,
            "GetStatus key_count changed"
        );
        assert_eq!(now.events, before.events, "audit log changed");
        assert_eq!(
            now.signatures_metric, before.signatures_metric,
            "tessera_signatures_total changed"
        );
    }
}

/// The observable state a refused request must leave as it was.
#[derive(Debug)]
pub struct Snapshot {
    /// ListKeys.
    pub keys: Vec<pb::KeyInfo>,
    /// GetStatus key_count.
    pub key_count: u64,
    /// The audit log.
    pub events: Vec<Event>,
    /// Sum of `tessera_signatures_total`.
    pub signatures_metric: f64,
}

/// Sum of the samples of `name` whose line holds every one of `labels` (`source="pool"`) in a
/// text exposition.
pub fn sum_samples(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A CreateKeyRequest without an idempotency key.
pub fn create_req(scheme: i32, threshold: u32, parties: u32, label: &str) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest {
        scheme,
        threshold,
        parties,
        label: label.to_owned(),
        idempotency_key: String::new(),
    }
}

/// A SignRequest without idempotency key or Taproot root.
pub fn sign_req(key_id: &str, message: Vec<u8>) -> pb::SignRequest {
    pb::SignRequest {
        key_id: key_id.to_owned(),
        message,
        idempotency_key: String::new(),
        taproot_merkle_root: None,
    }
}

/// Asserts the status code and that the message holds every word.
pub fn assert_status(s: &Status, code: Code, words: &[&str]) {
    assert_eq!(s.code(), code, "{s:?}");
    for w in words {
        assert!(
            s.message().contains(w),
            "message {:?} lacks {w:?}",
            s.message()
        );
    }
}

/// Asserts INVALID_ARGUMENT whose message holds every word and whose `google.rpc.BadRequest`
/// detail names `field` (as its only violation).
pub fn assert_invalid(s: &Status, field: &str, words: &[&str]) {
    assert_status(s, Code::InvalidArgument, words);
    let bad = tonic_types::StatusExt::get_details_bad_request(s)
        .unwrap_or_else(|| panic!("no BadRequest detail in {s:?}"));
    let fields: Vec<&str> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, [field], "BadRequest of {s:?}");
    assert!(
        !bad.field_violations[0].description.is_empty(),
        "the violation describes the problem"
    );
}

/// Checks a Schnorr signature with the independent verifiers.
pub fn schnorr_ok(scheme: pb::Scheme, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match scheme {
        pb::Scheme::Ed25519 => test_support::ed25519_ok(public_key, message, signature),
        pb::Scheme::Bip340 => test_support::bip340_ok(public_key, message, signature),
        other => panic!("not a Schnorr scheme: {other:?}"),
    }
}
