//! The accelerator router's health, read at scrape time: `tessera_accel_breaker_state{backend}`
//! and `tessera_accel_fallbacks_total`.

use std::sync::{Arc, RwLock};

use accel_api::AutoRouter;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
}

/// The router whose health is exported, once the wiring installs one.
#[derive(Debug, Default)]
pub(crate) struct RouterWatch(RwLock<Option<Arc<AutoRouter>>>);

impl RouterWatch {
    /// Exports `router`'s health from the next scrape on.
    pub(crate) fn set(&self, router: Arc<AutoRouter>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(router);
    }
}

impl Collector for RouterWatch {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(router) = self.0.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "tessera_accel_breaker_state",
            "Circuit breaker of each routed accelerator backend (0 closed, 1 open, 2 half-open).",
            None,
            MetricType::Gauge,
        )?;
        for (backend, state) in router.breaker_states() {
            let labels = BackendLabels {
                backend: backend.as_str(),
            };
            ConstGauge::new(state.as_gauge()).encode(family.encode_family(&labels)?)?;
        }
        let fallbacks = ConstCounter::new(router.fallbacks());
        let metric = encoder.encode_descriptor(
            "tessera_accel_fallbacks",
            "Accelerator calls re-run on the CPU backend after a backend error.",
            None,
            fallbacks.metric_type(),
        )?;
        fallbacks.encode(metric)
    }
}
