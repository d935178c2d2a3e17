//! The service's Prometheus series on `prometheus-client`, and the [`Observer`] adapter.

use std::sync::Arc;
use std::time::Duration;

use accel_api::{AutoRouter, BackendId, Curve, Op};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use service_core::{BreakerState, Observer, PresignSource, Queue, Scheme};

use crate::breaker::RouterWatch;
use crate::process::ProcessCollector;

/// The `Content-Type` of [`Metrics::render`]'s output: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A histogram family whose histograms all share one bucket layout.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latency and accelerator call time: 50 µs · 2^i, 18 buckets (50 µs … 6.6 s).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// CPU time per request: 10 µs · 2^i, 20 buckets (10 µs … 5.2 s).
fn cpu_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

/// Peer RPC time on a LAN: 100 µs · 2^i, 18 buckets (100 µs … 13.1 s).
fn peer_call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

/// Items per batch: 1 · 2^i, 13 buckets (1 … 4096).
fn batch_size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Queue delay of a batch's oldest item: 5 µs · 2^i, 18 buckets (5 µs … 655 ms).
fn queue_delay_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_005, 2.0, 18))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    rpc: &'static str,
    scheme: &'static str,
    backend: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
    scheme: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BatchLabels {
    op: &'static str,
    scheme: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AccelLabels {
    backend: &'static str,
    curve: &'static str,
    op: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SchemeLabels {
    scheme: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// A peer call: `peer` is the party id, encoded as its decimal string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PeerCallLabels {
    peer: u16,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PeerLabels {
    peer: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

/// Facts about the running build, exported as the labels of `tessera_build_info` (value 1).
/// Keep every value fixed for the life of a build: each distinct value is a new series. An
/// empty value is the same as an absent label to Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BuildInfo {
    /// The service's version (e.g. `env!("CARGO_PKG_VERSION")`).
    pub version: String,
    /// The compiler that built it (e.g. `1.95.0`).
    pub rustc: String,
    /// The enabled cargo features, comma-separated in a fixed order.
    pub features: String,
}

/// Every series the service exports, on one `prometheus-client` registry.
///
/// Recording is lock-free apart from `prometheus-client`'s per-family read lock (a write lock
/// only the first time a label combination is seen). Labels carry only public,
/// low-cardinality values (rpc, scheme, backend, outcome, op, curve, source, peer, kind, step)
/// — never key material, messages or key ids. Peer ids are bounded by the cluster's size.
///
/// Share it as `Arc<Metrics>`: it is the service's [`Observer`] and the sink of [`Metered`].
///
/// [`Metered`]: crate::Metered
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    request_duration: Histograms<RequestLabels>,
    request_cpu: Histograms<RpcLabels>,
    batch_size: Histograms<BatchLabels>,
    batch_queue_delay: Histograms<BatchLabels>,
    accel_op: Histograms<AccelLabels>,
    signatures: Family<SchemeLabels, Counter>,
    queue_depth: Gauge,
    presignatures_ready: Gauge,
    presignatures_used: Family<SourceLabels, Counter>,
    peer_call: Histograms<PeerCallLabels>,
    peer_breaker_state: Family<PeerLabels, Gauge>,
    saga_compensations: Family<StepLabels, Counter>,
    pending_key_shares: Gauge,
    router: Arc<RouterWatch>,
}

impl Metrics {
    /// Every series registered and empty; `tessera_build_info` carries `build`. The process
    /// start time is read now (see the crate docs).
    pub fn new(build: &BuildInfo) -> Self {
        let mut registry = Registry::default();
        // `prometheus-client` appends a full stop to each help text, and `_total` to counters.
        let request_duration = Histograms::<RequestLabels>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "tessera_request_duration_seconds",
            "Wall-clock time of each API request (gRPC or REST)",
            request_duration.clone(),
        );
        let request_cpu =
            Histograms::<RpcLabels>::new_with_constructor(cpu_histogram as fn() -> Histogram);
        registry.register(
            "tessera_request_cpu_seconds",
            "Worker-thread CPU time of the batch work done for each request, apportioned over the batches it rode in",
            request_cpu.clone(),
        );
        let batch_size = Histograms::<BatchLabels>::new_with_constructor(
            batch_size_histogram as fn() -> Histogram,
        );
        registry.register(
            "tessera_batch_size",
            "Items per batch run by the dynamic batcher",
            batch_size.clone(),
        );
        let batch_queue_delay = Histograms::<BatchLabels>::new_with_constructor(
            queue_delay_histogram as fn() -> Histogram,
        );
        registry.register(
            "tessera_batch_queue_delay_seconds",
            "How long the oldest item of each batch waited in the queue",
            batch_queue_delay.clone(),
        );
        let accel_op =
            Histograms::<AccelLabels>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "tessera_accel_op_seconds",
            "Time of each accelerator call",
            accel_op.clone(),
        );
        let signatures = Family::<SchemeLabels, Counter>::default();
        registry.register(
            "tessera_signatures",
            "Signatures issued",
            signatures.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "tessera_queue_depth",
            "Items waiting in the batcher queues",
            queue_depth.clone(),
        );
        let presignatures_ready = Gauge::default();
        registry.register(
            "tessera_presignatures_ready",
            "Threshold-ECDSA presignatures pooled over all keys",
            presignatures_ready.clone(),
        );
        let presignatures_used = Family::<SourceLabels, Counter>::default();
        registry.register(
            "tessera_presignatures_used",
            "Threshold-ECDSA presignatures consumed, by source (pool or on_demand)",
            presignatures_used.clone(),
        );
        let peer_call = Histograms::<PeerCallLabels>::new_with_constructor(
            peer_call_histogram as fn() -> Histogram,
        );
        registry.register(
            "tessera_peer_call_duration_seconds",
            "Time of each call to a peer node in distributed mode, by call kind and outcome (ok or error)",
            peer_call.clone(),
        );
        let peer_breaker_state = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "tessera_peer_breaker_state",
            "Circuit breaker of each peer node in distributed mode (0 closed, 1 open, 2 half-open)",
            peer_breaker_state.clone(),
        );
        let saga_compensations = Family::<StepLabels, Counter>::default();
        registry.register(
            "tessera_saga_compensations",
            "Distributed sessions that failed at a step (dkg, commit, ecdsa_sign, key_creation) and were compensated by aborting them on their parties",
            saga_compensations.clone(),
        );
        let pending_key_shares = Gauge::default();
        registry.register(
            "tessera_pending_key_shares",
            "Shares of new keys this node holds pending until the node that created the key settles them (distributed mode)",
            pending_key_shares.clone(),
        );
        let build_info = Family::<BuildInfo, Gauge>::default();
        build_info.get_or_create(build).set(1);
        registry.register(
            "tessera_build_info",
            "Build facts of the running service, as labels; the value is always 1",
            build_info,
        );
        let router = Arc::new(RouterWatch::default());
        registry.register_collector(Box::new(Arc::clone(&router)));
        registry.register_collector(Box::new(ProcessCollector::new()));
        Self {
            registry,
            request_duration,
            request_cpu,
            batch_size,
            batch_queue_delay,
            accel_op,
            signatures,
            queue_depth,
            presignatures_ready,
            presignatures_used,
            peer_call,
            peer_breaker_state,
            saga_compensations,
            pending_key_shares,
            router,
        }
    }

    /// Records one gRPC request's wall-clock time in
    /// `tessera_request_duration_seconds{rpc,scheme,backend,outcome}`.
    pub fn observe_request(
        &self,
        rpc: &'static str,
        scheme: &'static str,
        backend: &'static str,
        outcome: &'static str,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            rpc,
            scheme,
            backend,
            outcome,
        };
        self.request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Records the worker-thread CPU time apportioned to one request in
    /// `tessera_request_cpu_seconds{rpc,scheme}`.
    pub fn observe_request_cpu(&self, rpc: &'static str, scheme: &'static str, seconds: f64) {
        self.request_cpu
            .get_or_create(&RpcLabels { rpc, scheme })
            .observe(seconds);
    }

    /// Records one accelerator call in `tessera_accel_op_seconds{backend,curve,op}`
    /// ([`Metered`](crate::Metered) calls this for every call it wraps).
    pub fn observe_accel_op(&self, backend: BackendId, curve: Curve, op: Op, seconds: f64) {
        let labels = AccelLabels {
            backend: backend.as_str(),
            curve: curve.as_str(),
            op: op.as_str(),
        };
        self.accel_op.get_or_create(&labels).observe(seconds);
    }

    /// Publishes `router`'s health, read at every scrape: `tessera_accel_breaker_state{backend}`
    /// (0 closed, 1 open, 2 half-open) for each routed backend and
    /// `tessera_accel_fallbacks_total` (calls re-run on the reference backend after an error).
    /// Until a router is watched neither series is exported; watching another replaces it.
    pub fn watch_router(&self, router: Arc<AutoRouter>) {
        self.router.set(router);
    }

    /// The text exposition of every series (Prometheus text format 0.0.4; serve it with
    /// [`CONTENT_TYPE`]). Process metrics and the router's health are read now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a `String` cannot fail, and neither can this crate's collectors.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Observer for Metrics {
    fn queue_depth(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn batch_started(&self, queue: Queue, size: usize, oldest_wait: Duration) {
        let labels = BatchLabels {
            op: queue.op(),
            scheme: queue.scheme().as_str(),
        };
        self.batch_size.get_or_create(&labels).observe(size as f64);
        self.batch_queue_delay
            .get_or_create(&labels)
            .observe(oldest_wait.as_secs_f64());
    }

    fn presignatures_ready(&self, delta: i64) {
        self.presignatures_ready.inc_by(delta);
    }

    fn presignature_used(&self, source: PresignSource) {
        self.presignatures_used
            .get_or_create(&SourceLabels {
                source: source.as_str(),
            })
            .inc();
    }

    fn signatures_issued(&self, scheme: Scheme, count: u64) {
        self.signatures
            .get_or_create(&SchemeLabels {
                scheme: scheme.as_str(),
            })
            .inc_by(count);
    }

    fn peer_call(&self, peer: u16, kind: &'static str, elapsed: Duration, ok: bool) {
        let labels = PeerCallLabels {
            peer,
            kind,
            outcome: if ok { "ok" } else { "error" },
        };
        self.peer_call
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    fn breaker_state(&self, peer: u16, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.peer_breaker_state
            .get_or_create(&PeerLabels { peer })
            .set(value);
    }

    fn saga_compensated(&self, step: &'static str) {
        self.saga_compensations
            .get_or_create(&StepLabels { step })
            .inc();
    }

    fn pending_key_shares(&self, count: usize) {
        self.pending_key_shares
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}
