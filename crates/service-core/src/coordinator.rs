//! The `Coordinator` port: who runs the parties of a key. Use cases hand it key generation,
//! import and signing and do not know whether the parties run in this process or on peer
//! nodes. [`Embedded`] runs every party in this process (NOT a distributed MPC deployment:
//! for trying the appliance out and for benchmarks); [`crate::Distributed`] runs each party on
//! its own node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use accel_api::Accelerator;
use zeroize::Zeroizing;

use crate::batcher::{Batcher, Done};
use crate::jobs::{self, Job, JobOutput};
use crate::keys::{LoadedKey, Taproot};
use crate::peer::NewKey;
use crate::ports::KeyRecord;
use crate::{Error, Observer, Queue};

/// A boxed future, so the port stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The batcher that runs the service's curve work.
pub type JobBatcher = Batcher<Job, Result<JobOutput, Error>>;

/// One issued signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    /// The signature: 64 bytes for every scheme (ECDSA: `r‖s` with low S).
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
    /// The key it verifies under (Ed25519 point, BIP340 x-only key, ECDSA compressed key).
    #[serde(with = "hex::serde")]
    pub verifying_key: Vec<u8>,
    /// ECDSA recovery id (0 or 1); 0 for the Schnorr schemes.
    pub recovery_id: u8,
}

/// What a piece of work cost and where it ran.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Worker-thread CPU seconds spent for this request.
    pub cpu_seconds: f64,
    /// The accelerator backend that did the work, when known.
    pub backend: Option<&'static str>,
}

impl Cost {
    fn add(&mut self, done_cpu: f64, backend: Option<&'static str>) {
        self.cpu_seconds += done_cpu;
        if backend.is_some() {
            self.backend = backend;
        }
    }
}

/// Threshold-ECDSA presignature pool settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresignPool {
    /// The most presignatures kept ready per key (0 = none: each signature presigns on
    /// demand); each key's own target starts lower and grows with use
    /// (`EcdsaKey::pool_target`).
    pub target: usize,
    /// Presignatures made per refill step (≥ 1).
    pub batch: usize,
}

/// Runs the parties of keys: key generation, import and signing.
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// The deployment mode reported by `GetStatus` (`embedded` or `distributed`).
    fn mode(&self) -> &'static str;

    /// Runs the distributed key generation for `key`; returns this node's part of the key
    /// (embedded: every party's share), which the caller stores under `key.key_id`.
    fn generate(&self, key: &NewKey) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>>;

    /// Splits `secret` among the key's parties (trusted dealer: the whole secret is on this
    /// node while it is split); returns this node's part of the key (embedded: every party's
    /// share), which the caller stores under `key.key_id` (the other nodes store theirs).
    fn import(
        &self,
        key: &NewKey,
        secret: Zeroizing<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>>;

    /// Signs every message with `key` (stored as `record`) for `client` (whose policy the
    /// co-signing nodes check), one signature per message in order.
    fn sign(
        &self,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        taproot: Taproot,
        client: &str,
    ) -> BoxFuture<'_, Result<(Vec<Signature>, Cost), Error>>;

    /// The key `key_id` that [`Coordinator::generate`] or [`Coordinator::import`] made here
    /// was stored (`stored`), or was not: the other nodes keep or delete their shares.
    /// Single-node deployments have nothing to settle.
    fn settle(&self, _key_id: &str, _stored: bool) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// `key` (stored as `key_id`) is loaded and will be used: start its precomputation
    /// (presignatures) if it has run low. Never blocks.
    fn prepare(&self, key_id: &str, key: &Arc<LoadedKey>);

    /// Where the idempotency records of (`scope`, `idempotency_key`) live: `None` here (this
    /// node), else the party id of the node every request with that key must go to, so the
    /// key means the same on every node.
    fn idempotency_home(&self, _scope: &str, _idempotency_key: &str) -> Option<u16> {
        None
    }

    /// Sends a single-message `Sign` with an idempotency key to its home node and returns
    /// the signature made (or replayed) there.
    fn forward_sign(
        &self,
        _home: u16,
        _request: crate::requests::SignRequest,
        _client: &str,
    ) -> BoxFuture<'_, Result<Signature, Error>> {
        Box::pin(async { Err(Error::Internal("forwarding in a single-node deployment")) })
    }
}

/// Runs `f` and returns its result with the calling thread's CPU seconds.
pub(crate) fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = cpu_time::ThreadTime::try_now().ok();
    let out = f();
    (out, start.map_or(0.0, |t| t.elapsed().as_secs_f64()))
}

/// Submits `jobs` to `queue` and waits for every result: the outputs in order, or the first
/// error.
pub(crate) async fn run_jobs(
    batcher: &JobBatcher,
    queue: Queue,
    jobs: Vec<Job>,
) -> Result<(Vec<JobOutput>, Cost), Error> {
    run_jobs_each(batcher, jobs.into_iter().map(|job| (queue, job)).collect()).await
}

/// [`run_jobs`] with a queue for each job (queued all or none); outputs in job order.
pub(crate) async fn run_jobs_each(
    batcher: &JobBatcher,
    jobs: Vec<(Queue, Job)>,
) -> Result<(Vec<JobOutput>, Cost), Error> {
    let receivers = batcher.submit_each(jobs)?;
    let mut outs = Vec::with_capacity(receivers.len());
    let mut cost = Cost::default();
    let mut first_err = None;
    for rx in receivers {
        let Done {
            result,
            cpu_seconds,
            backend,
        } = rx.await.map_err(|_| Error::Panicked { task: "batch" })?;
        cost.add(cpu_seconds, backend);
        match result {
            Ok(o) => outs.push(o),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((outs, cost)),
    }
}

/// The embedded adapter: every party of every key in this process, with each round's curve
/// work batched across concurrent requests by the [`JobBatcher`].
#[derive(Debug)]
pub struct Embedded {
    accel: Arc<dyn Accelerator>,
    batcher: Arc<JobBatcher>,
    observer: Arc<dyn Observer>,
    pool: PresignPool,
}

impl Embedded {
    /// An embedded coordinator over `accel` and `batcher`.
    pub fn new(
        accel: Arc<dyn Accelerator>,
        batcher: Arc<JobBatcher>,
        observer: Arc<dyn Observer>,
        pool: PresignPool,
    ) -> Self {
        Self {
            accel,
            batcher,
            observer,
            pool,
        }
    }

    async fn blocking(
        &self,
        task: &'static str,
        f: impl FnOnce(&dyn Accelerator) -> Result<LoadedKey, Error> + Send + 'static,
    ) -> Result<(LoadedKey, Cost), Error> {
        let accel = Arc::clone(&self.accel);
        // Key generation and import: background work (lower CPU priority), see
        // `crate::background`.
        let (key, cpu) = crate::background::run(task, move || {
            let (key, cpu) = with_cpu(|| f(accel.as_ref()));
            key.map(|k| (k, cpu))
        })
        .await?;
        Ok((
            key,
            Cost {
                cpu_seconds: cpu,
                backend: None,
            },
        ))
    }
}

impl Coordinator for Embedded {
    fn mode(&self) -> &'static str {
        "embedded"
    }

    fn generate(&self, key: &NewKey) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>> {
        let (scheme, t, n) = (key.scheme, key.threshold, key.parties);
        Box::pin(self.blocking("key generation", move |accel| {
            LoadedKey::generate(accel, scheme, t, n)
        }))
    }

    fn import(
        &self,
        key: &NewKey,
        secret: Zeroizing<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>> {
        let (scheme, t, n) = (key.scheme, key.threshold, key.parties);
        Box::pin(self.blocking("key import", move |accel| {
            LoadedKey::import(accel, scheme, &secret, t, n)
        }))
    }

    fn sign(
        &self,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        taproot: Taproot,
        _client: &str,
    ) -> BoxFuture<'_, Result<(Vec<Signature>, Cost), Error>> {
        Box::pin(async move {
            if key.is_party_share() {
                return Err(Error::NotInThisMode(
                    "this key is one node's share of a distributed key; start the node with its [cluster] configuration to sign with it",
                ));
            }
            let jobs = match key.as_ref() {
                LoadedKey::Ecdsa(k) => jobs::ecdsa_jobs(&key, k, self.observer.as_ref(), messages),
                _ => messages
                    .into_iter()
                    .map(|message| {
                        let job = Job::Sign {
                            key: Arc::clone(&key),
                            message,
                            taproot,
                        };
                        (Queue::Sign(key.scheme()), job)
                    })
                    .collect(),
            };
            let result = run_jobs_each(&self.batcher, jobs).await;
            self.prepare(&record.key_id, &key);
            let (outs, cost) = result?;
            let signatures = outs
                .into_iter()
                .map(|o| match o {
                    JobOutput::Signature {
                        signature,
                        verifying_key,
                        recovery_id,
                    } => Ok(Signature {
                        signature,
                        verifying_key,
                        recovery_id,
                    }),
                    JobOutput::Valid(_) | JobOutput::Share(_) => {
                        Err(Error::Internal("another job's result for a signing job"))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((signatures, cost))
        })
    }

    fn prepare(&self, _key_id: &str, key: &Arc<LoadedKey>) {
        let LoadedKey::Ecdsa(k) = key.as_ref() else {
            return;
        };
        // As many refills as there are background threads, so presigning uses every core
        // (background threads run at a lower priority than signing).
        while k.claim_refill(self.pool.target, crate::background::threads()) {
            refill_step(
                Arc::clone(&self.accel),
                Arc::clone(&self.observer),
                Arc::clone(key),
                self.pool,
            );
        }
    }
}

/// Queues one step of a key's presignature refill as background work; the step queues the
/// next one while the pool still lacks presignatures.
fn refill_step(
    accel: Arc<dyn Accelerator>,
    observer: Arc<dyn Observer>,
    key: Arc<LoadedKey>,
    pool: PresignPool,
) {
    crate::background::spawn(move || {
        let LoadedKey::Ecdsa(k) = key.as_ref() else {
            return;
        };
        match k.refill_step(accel.as_ref(), observer.as_ref(), pool.target, pool.batch) {
            Ok(true) => refill_step(accel, observer, key, pool),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e.chain(), "presignature refill failed; signatures will presign on demand");
            }
        }
    });
}

/// Processes one batch of the embedded coordinator's jobs (the batcher's `process`).
pub fn process_batch(
    accel: &dyn Accelerator,
    observer: &dyn Observer,
    queue: Queue,
    batch: Vec<Job>,
) -> Vec<Result<JobOutput, Error>> {
    jobs::process(accel, observer, queue, batch)
}

/// What an application is built from (either mode).
#[derive(Debug)]
pub struct AppSetup {
    /// Storage.
    pub store: Arc<dyn crate::Store>,
    /// The KEK.
    pub sealer: Arc<dyn crate::Sealer>,
    /// The (metered) accelerator all curve work goes to.
    pub accel: Arc<dyn Accelerator>,
    /// Metrics.
    pub observer: Arc<dyn Observer>,
    /// The batcher's settings.
    pub batcher: crate::batcher::BatcherConfig,
    /// Names the backend of the batch just run on this thread (see [`Done::backend`]).
    pub probe: fn() -> Option<&'static str>,
    /// Request limits.
    pub limits: crate::Limits,
    /// Threshold-ECDSA presignature pool settings.
    pub pool: PresignPool,
    /// The configured backend name, for `GetStatus`.
    pub backend: String,
    /// Authentication mode and registered clients.
    pub auth: crate::auth::Auth,
    /// The chain adapter, if chain transactions are to be signed.
    pub chains: Option<Arc<dyn crate::chain::Chains>>,
    /// The chains' nodes to broadcast signed transactions to, if any.
    pub broadcaster: Option<Arc<dyn crate::chain::Broadcaster>>,
}

/// What distributed mode adds to an [`AppSetup`].
#[derive(Debug)]
pub struct ClusterSetup {
    /// This node's id and its peers.
    pub settings: crate::ClusterSettings,
    /// The transport to the peers.
    pub link: Arc<dyn crate::peer::PeerLink>,
    /// Test-only instrumentation (off in production).
    pub hooks: crate::TestHooks,
}

impl crate::App {
    fn batcher_of(setup: &AppSetup) -> Result<Arc<JobBatcher>, Error> {
        let accel = Arc::clone(&setup.accel);
        let observer = Arc::clone(&setup.observer);
        Ok(Arc::new(Batcher::new(
            &setup.batcher,
            Arc::clone(&setup.observer),
            move |queue, jobs| process_batch(accel.as_ref(), observer.as_ref(), queue, jobs),
            setup.probe,
        )?))
    }

    /// The embedded-mode application: a batcher whose workers run [`process_batch`] on
    /// `setup.accel`, the [`Embedded`] coordinator over it, and the use cases over both.
    pub fn embedded(setup: AppSetup) -> Result<Self, Error> {
        let batcher = Self::batcher_of(&setup)?;
        let coordinator = Arc::new(Embedded::new(
            setup.accel,
            Arc::clone(&batcher),
            Arc::clone(&setup.observer),
            setup.pool,
        ));
        Ok(Self::new(crate::AppParts {
            store: setup.store,
            sealer: setup.sealer,
            coordinator,
            batcher,
            observer: setup.observer,
            limits: setup.limits,
            backend: setup.backend,
            auth: setup.auth,
            chains: setup.chains,
            broadcaster: setup.broadcaster,
        }))
    }

    /// The distributed-mode application of one node: its [`crate::Party`] (returned too, for
    /// the peer server to answer with), the [`crate::Distributed`] coordinator over the peer
    /// link, and the use cases. Call inside a Tokio runtime.
    pub fn distributed(
        setup: AppSetup,
        cluster: ClusterSetup,
    ) -> Result<(Arc<Self>, Arc<crate::Party>), Error> {
        let batcher = Self::batcher_of(&setup)?;
        let party = Arc::new(crate::Party::new(
            cluster.settings.me,
            cluster.settings.peers.clone(),
            Arc::clone(&setup.accel),
            Arc::clone(&setup.store),
            Arc::clone(&setup.sealer),
            Arc::clone(&cluster.link),
            Arc::clone(&batcher),
            cluster.settings.call_deadline,
            cluster.hooks,
            setup.auth.clone(),
        )?);
        let coordinator = crate::Distributed::start(
            cluster.settings,
            Arc::clone(&party),
            cluster.link,
            Arc::clone(&batcher),
            Arc::clone(&setup.observer),
        );
        let app = Arc::new(Self::new(crate::AppParts {
            store: setup.store,
            sealer: setup.sealer,
            coordinator: Arc::new(coordinator),
            batcher,
            observer: setup.observer,
            limits: setup.limits,
            backend: setup.backend,
            auth: setup.auth,
            chains: setup.chains,
            broadcaster: setup.broadcaster,
        }));
        party.attach(&app);
        Ok((app, party))
    }
}
