//! The exposition: every series with its type, help and bucket layout, the observer port, the
//! process metrics and the router's health.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use accel_api::curves::k256::Scalar as SecpScalar;
use accel_api::{Accelerator, BackendId, Curve, Op, Policy};
use common::{DEV, Dev, flat, router, sum_samples};
use service_core::{BreakerState, Observer, PresignSource, Queue, Scheme};
use telemetry::{BuildInfo, CONTENT_TYPE, Metrics};

fn build() -> BuildInfo {
    BuildInfo {
        version: "1.2.3".into(),
        rustc: "1.95.0".into(),
        features: "gpu,simd".into(),
    }
}

/// Metrics with one observation in every series, and a watched router.
fn observed() -> Metrics {
    let m = Metrics::new(&build());
    m.observe_request("Sign", "ed25519", "cpu", "ok", 0.002);
    m.observe_request_cpu("Sign", "ed25519", 0.001);
    m.observe_accel_op(BackendId::Cpu, Curve::Ed25519, Op::MulBase, 0.0001);
    m.queue_depth(3);
    m.batch_started(Queue::Sign(Scheme::Ed25519), 8, Duration::from_micros(40));
    m.presignatures_ready(5);
    m.presignature_used(PresignSource::Pool);
    m.signatures_issued(Scheme::Bip340, 2);
    m.peer_call(2, "commit", Duration::from_micros(700), true);
    m.breaker_state(3, BreakerState::Open);
    m.saga_compensated("dkg");
    m.pending_key_shares(2);
    m.watch_router(router(
        flat(0.0, 1.0),
        Dev::failing(0),
        flat(0.0, 1.0),
        Policy::Cheapest,
    ));
    m
}

/// Every exported series and its type.
const SERIES: [(&str, &str); 21] = [
    ("tessera_request_duration_seconds", "histogram"),
    ("tessera_request_cpu_seconds", "histogram"),
    ("tessera_batch_size", "histogram"),
    ("tessera_batch_queue_delay_seconds", "histogram"),
    ("tessera_accel_op_seconds", "histogram"),
    ("tessera_signatures_total", "counter"),
    ("tessera_queue_depth", "gauge"),
    ("tessera_presignatures_ready", "gauge"),
    ("tessera_presignatures_used_total", "counter"),
    ("tessera_accel_breaker_state", "gauge"),
    ("tessera_accel_fallbacks_total", "counter"),
    ("tessera_peer_call_duration_seconds", "histogram"),
    ("tessera_peer_breaker_state", "gauge"),
    ("tessera_saga_compensations_total", "counter"),
    ("tessera_pending_key_shares", "gauge"),
    ("tessera_build_info", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
];

/// Whether `text` has a sample line of exactly the metric `name`.
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

#[test]
fn every_series_is_rendered_with_its_type() {
    let text = observed().render();
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    for (name, kind) in SERIES {
        if cfg!(not(target_os = "linux")) && name.starts_with("process_") {
            continue;
        }
        assert!(
            text.contains(&format!("\n# TYPE {name} {kind}\n")),
            "no TYPE line for {name} {kind}:\n{text}"
        );
        let sample = if kind == "histogram" {
            format!("{name}_count")
        } else {
            name.to_owned()
        };
        assert!(has_sample(&text, &sample), "no sample of {sample}:\n{text}");
    }
}

#[test]
fn counters_end_in_total_exactly_once() {
    let text = observed().render();
    assert!(!text.contains("_total_total"), "{text}");
    for (name, kind) in SERIES {
        let stem = name.strip_suffix("_total");
        assert_eq!(kind == "counter", stem.is_some(), "{name}");
        if let Some(stem) = stem {
            // The bare stem is never a metric of its own.
            assert!(!text.contains(&format!(" {stem} ")), "{text}");
            assert!(!has_sample(&text, stem), "{text}");
        }
    }
}

#[test]
fn help_texts_are_kept_with_one_full_stop() {
    let text = observed().render();
    for line in [
        "# HELP tessera_request_duration_seconds Wall-clock time of each API request (gRPC or REST).\n",
        "# HELP tessera_signatures_total Signatures issued.\n",
        "# HELP tessera_accel_breaker_state Circuit breaker of each routed accelerator backend (0 closed, 1 open, 2 half-open).\n",
        "# HELP tessera_accel_fallbacks_total Accelerator calls re-run on the CPU backend after a backend error.\n",
        "# HELP tessera_peer_call_duration_seconds Time of each call to a peer node in distributed mode, by call kind and outcome (ok or error).\n",
        "# HELP tessera_peer_breaker_state Circuit breaker of each peer node in distributed mode (0 closed, 1 open, 2 half-open).\n",
        "# HELP tessera_saga_compensations_total Distributed sessions that failed at a step (dkg, commit, ecdsa_sign, key_creation) and were compensated by aborting them on their parties.\n",
        "# HELP tessera_pending_key_shares Shares of new keys this node holds pending until the node that created the key settles them (distributed mode).\n",
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
    ] {
        assert!(text.contains(line), "missing {line:?}:\n{text}");
    }
    assert!(!text.contains(".."), "{text}");
}

#[test]
fn histograms_keep_their_bucket_layouts() {
    let text = observed().render();
    for (series, buckets, first, last) in [
        ("tessera_request_duration_seconds", 18, "5e-05", "6.5536"),
        ("tessera_request_cpu_seconds", 20, "1e-05", "5.24288"),
        ("tessera_batch_size", 13, "1", "4096"),
        ("tessera_batch_queue_delay_seconds", 18, "5e-06", "0.65536"),
        ("tessera_accel_op_seconds", 18, "5e-05", "6.5536"),
        (
            "tessera_peer_call_duration_seconds",
            18,
            "0.0001",
            "13.1072",
        ),
    ] {
        let bounds: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{series}_bucket{{")))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(bounds.len(), buckets + 1, "{series}: {bounds:?}");
        assert_eq!(bounds[0], first, "{series}");
        assert_eq!(bounds[buckets - 1], last, "{series}");
        assert_eq!(bounds[buckets], "+Inf", "{series}");
    }
}

/// A sample name, labels its samples must carry, and the expected sum over them.
type Expected = (&'static str, &'static [(&'static str, &'static str)], f64);

#[test]
fn recordings_land_in_their_series_with_their_labels() {
    let text = observed().render();
    let rows: [Expected; 13] = [
        (
            "tessera_request_duration_seconds_count",
            &[
                ("rpc", "Sign"),
                ("scheme", "ed25519"),
                ("backend", "cpu"),
                ("outcome", "ok"),
            ],
            1.0,
        ),
        (
            "tessera_request_cpu_seconds_sum",
            &[("rpc", "Sign"), ("scheme", "ed25519")],
            0.001,
        ),
        (
            "tessera_accel_op_seconds_count",
            &[("backend", "cpu"), ("curve", "ed25519"), ("op", "mul_base")],
            1.0,
        ),
        ("tessera_queue_depth", &[], 3.0),
        (
            "tessera_batch_size_sum",
            &[("op", "sign"), ("scheme", "ed25519")],
            8.0,
        ),
        (
            "tessera_batch_queue_delay_seconds_sum",
            &[("op", "sign"), ("scheme", "ed25519")],
            0.000_04,
        ),
        ("tessera_presignatures_ready", &[], 5.0),
        (
            "tessera_presignatures_used_total",
            &[("source", "pool")],
            1.0,
        ),
        ("tessera_signatures_total", &[("scheme", "bip340")], 2.0),
        (
            "tessera_peer_call_duration_seconds_sum",
            &[("peer", "2"), ("kind", "commit"), ("outcome", "ok")],
            0.000_7,
        ),
        ("tessera_peer_breaker_state", &[("peer", "3")], 1.0),
        ("tessera_saga_compensations_total", &[("step", "dkg")], 1.0),
        ("tessera_pending_key_shares", &[], 2.0),
    ];
    for (name, labels, want) in rows {
        let got = sum_samples(&text, name, labels);
        assert!(
            (got - want).abs() < 1e-12,
            "{name}{labels:?}: {got} != {want}"
        );
    }
    assert!(
        text.contains(
            "tessera_build_info{version=\"1.2.3\",rustc=\"1.95.0\",features=\"gpu,simd\"} 1\n"
        ),
        "{text}"
    );
}

#[test]
fn presignature_gauge_follows_deltas_and_queue_depth_is_set() {
    let m = Metrics::new(&BuildInfo::default());
    m.presignatures_ready(10);
    m.presignatures_ready(-4);
    m.queue_depth(7);
    m.queue_depth(2);
    let text = m.render();
    assert_eq!(sum_samples(&text, "tessera_presignatures_ready", &[]), 6.0);
    assert_eq!(sum_samples(&text, "tessera_queue_depth", &[]), 2.0);
    assert!(!text.contains("tessera_accel_breaker_state"), "{text}");
    assert!(!text.contains("tessera_accel_fallbacks"), "{text}");
}

#[test]
fn process_cpu_seconds_increase_after_burning_cpu() {
    let m = Metrics::new(&BuildInfo::default());
    let before = sum_samples(&m.render(), "process_cpu_seconds_total", &[]);
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(200) {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
    let after = sum_samples(&m.render(), "process_cpu_seconds_total", &[]);
    assert!(after > before, "{before} -> {after}");
    assert!(after - before >= 0.05, "{before} -> {after}");
}

#[cfg(target_os = "linux")]
#[test]
fn process_memory_fds_and_start_time_are_read_from_proc() {
    let text = Metrics::new(&BuildInfo::default()).render();
    assert!(
        sum_samples(&text, "process_resident_memory_bytes", &[]) > 0.0,
        "{text}"
    );
    let open = sum_samples(&text, "process_open_fds", &[]);
    assert!(open >= 3.0, "{text}");
    // Absent only when the soft limit is unlimited.
    if has_sample(&text, "process_max_fds") {
        assert!(sum_samples(&text, "process_max_fds", &[]) >= open, "{text}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = sum_samples(&text, "process_start_time_seconds", &[]);
    assert!(start <= now && start > now - 86_400.0, "{start} vs {now}");
}

#[test]
fn breaker_state_and_fallbacks_are_read_at_every_scrape() {
    let m = Metrics::new(&BuildInfo::default());
    let dev = Dev::failing(1);
    let r = router(
        flat(1e9, 1e9),
        Arc::clone(&dev),
        flat(0.0, 0.0),
        Policy::Prefer(DEV),
    );
    m.watch_router(Arc::clone(&r));
    let text = m.render();
    assert!(
        text.contains("tessera_accel_breaker_state{backend=\"cpu\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tessera_accel_breaker_state{{backend=\"{DEV}\"}} 0\n"
        )),
        "{text}"
    );
    assert!(text.contains("tessera_accel_fallbacks_total 0\n"), "{text}");
    // The dev backend fails once: the router re-runs the call on the CPU and opens its breaker.
    r.secp256k1_mul_base(&[SecpScalar::ONE]).unwrap();
    let text = m.render();
    assert!(
        text.contains(&format!(
            "tessera_accel_breaker_state{{backend=\"{DEV}\"}} 1\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("tessera_accel_breaker_state{backend=\"cpu\"} 0\n"),
        "{text}"
    );
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", &[]),
        1.0
    );
}

#[test]
fn peer_calls_breakers_and_compensations_are_recorded_per_label() {
    let m = Metrics::new(&BuildInfo::default());
    // Nothing is exported for peers until distributed mode reports something.
    let text = m.render();
    assert!(!has_sample(&text, "tessera_peer_breaker_state"), "{text}");
    assert!(
        !has_sample(&text, "tessera_peer_call_duration_seconds_count"),
        "{text}"
    );
    assert!(
        !has_sample(&text, "tessera_saga_compensations_total"),
        "{text}"
    );

    m.peer_call(2, "sign_shares", Duration::from_millis(3), true);
    m.peer_call(2, "sign_shares", Duration::from_millis(5), true);
    m.peer_call(2, "sign_shares", Duration::from_secs(2), false);
    m.peer_call(4, "ping", Duration::from_micros(150), true);
    m.breaker_state(3, BreakerState::Closed);
    m.breaker_state(3, BreakerState::Open);
    m.breaker_state(5, BreakerState::Open);
    m.breaker_state(5, BreakerState::HalfOpen);
    m.breaker_state(6, BreakerState::Open);
    m.breaker_state(6, BreakerState::HalfOpen);
    m.breaker_state(6, BreakerState::Closed);
    m.saga_compensated("commit");
    m.saga_compensated("commit");
    m.saga_compensated("dkg");
    let text = m.render();

    for line in [
        "tessera_peer_call_duration_seconds_count{peer=\"2\",kind=\"sign_shares\",outcome=\"ok\"} 2\n",
        "tessera_peer_call_duration_seconds_count{peer=\"2\",kind=\"sign_shares\",outcome=\"error\"} 1\n",
        "tessera_peer_call_duration_seconds_count{peer=\"4\",kind=\"ping\",outcome=\"ok\"} 1\n",
        // 150 µs lands above the first bound (100 µs) and within the second (200 µs).
        "tessera_peer_call_duration_seconds_bucket{peer=\"4\",kind=\"ping\",outcome=\"ok\",le=\"0.0001\"} 0\n",
        "tessera_peer_call_duration_seconds_bucket{peer=\"4\",kind=\"ping\",outcome=\"ok\",le=\"0.0002\"} 1\n",
        "tessera_peer_breaker_state{peer=\"3\"} 1\n",
        "tessera_peer_breaker_state{peer=\"5\"} 2\n",
        "tessera_peer_breaker_state{peer=\"6\"} 0\n",
        "tessera_saga_compensations_total{step=\"commit\"} 2\n",
        "tessera_saga_compensations_total{step=\"dkg\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line:?}:\n{text}");
    }
    let sum = sum_samples(
        &text,
        "tessera_peer_call_duration_seconds_sum",
        &[("peer", "2"), ("kind", "sign_shares"), ("outcome", "ok")],
    );
    assert!((sum - 0.008).abs() < 1e-12, "{sum}");
    assert_eq!(
        sum_samples(
            &text,
            "tessera_peer_call_duration_seconds_count",
            &[("peer", "2")]
        ),
        3.0
    );
}
