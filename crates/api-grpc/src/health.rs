//! gRPC health (`grpc.health.v1`) and reflection (v1 and v1alpha).
//!
//! Health says SERVING only while the application's own check passes (the store answers and
//! the KEK opens a stored key) and the server is not shutting down.

use std::sync::Arc;
use std::time::Duration;

use api_proto::signer_service_server::SignerServiceServer;
use service_core::App;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::server::HealthReporter;

use crate::GrpcApi;

/// A reflection service could not be built from the descriptor sets.
#[derive(Debug, thiserror::Error)]
#[error("building the gRPC reflection service")]
pub struct HealthError(#[source] tonic_reflection::server::Error);

/// The health service and the handle that sets its status.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health")
    }
}

impl Health {
    /// A health service reporting NOT_SERVING until the first check passes.
    pub async fn new() -> (Self, HealthServer<impl HealthService>) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let h = Self { reporter };
        h.set(false).await;
        (h, service)
    }

    /// Sets the status of the overall service ("") and of `tessera.v1.SignerService`.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        self.reporter
            .set_service_status(
                <SignerServiceServer<GrpcApi> as tonic::server::NamedService>::NAME,
                status,
            )
            .await;
    }

    /// Runs the application's health check once and sets the status from it; returns
    /// whether it passed.
    pub async fn check_now(&self, app: &App) -> bool {
        let ok = probe(app, true).await;
        self.set(ok).await;
        ok
    }

    /// Re-runs the application's health check every `every`, starting from the status
    /// `serving` set by [`Health::check_now`], until `stop` fires; then reports NOT_SERVING for
    /// good. A failure is logged when the status turns, not at every check.
    pub async fn watch(
        self,
        app: Arc<App>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
        mut serving: bool,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let ok = probe(&app, serving).await;
            if ok != serving {
                self.set(ok).await;
                serving = ok;
            }
        }
        self.set(false).await;
    }
}

/// The application's health check; a failure is logged when `log` is set.
async fn probe(app: &App, log: bool) -> bool {
    match app.check_health().await {
        Ok(()) => true,
        Err(e) => {
            if log {
                tracing::error!(error = %e.chain(), "health check failed: reporting NOT_SERVING");
            }
            false
        }
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(api_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The reflection service, v1.
pub fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    HealthError,
> {
    reflection().build_v1().map_err(HealthError)
}

/// The reflection service, v1alpha (grpcurl and older tools).
pub fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    HealthError,
> {
    reflection().build_v1alpha().map_err(HealthError)
}
