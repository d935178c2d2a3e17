//! The tonic handlers: decode, call the use case, encode, and record request metrics.

use std::sync::Arc;
use std::time::Instant;

use api_proto as pb;
use api_proto::signer_service_server::SignerService;
use service_core::app::{CreateKey, ImportKey, SignRequest, VerifyRequest};
use service_core::{App, Scheme, UseCase};
use telemetry::Metrics;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::convert::{key_info, key_page, scheme_from_proto, sign_response, status_response};
use crate::status::{code_name, status_of};

/// The `tessera.v1.SignerService` implementation over an [`App`].
#[derive(Clone, Debug)]
pub struct GrpcApi {
    app: Arc<App>,
    metrics: Arc<Metrics>,
}

impl GrpcApi {
    /// The API over `app`, recording request metrics in `metrics`.
    pub fn new(app: Arc<App>, metrics: Arc<Metrics>) -> Self {
        Self { app, metrics }
    }

    /// Records the request's metrics and turns the use case's result into a response.
    fn finish<T, R>(
        &self,
        rpc: &'static str,
        start: Instant,
        result: UseCase<T>,
        respond: impl FnOnce(T) -> R,
    ) -> Result<Response<R>, Status> {
        let seconds = start.elapsed().as_secs_f64();
        let label = |s: Option<Scheme>| s.map_or("none", Scheme::as_str);
        match result {
            Ok(out) => {
                let scheme = label(out.scheme);
                let backend = out.cost.backend.unwrap_or("none");
                self.metrics
                    .observe_request(rpc, scheme, backend, "OK", seconds);
                if out.cost.cpu_seconds > 0.0 {
                    self.metrics
                        .observe_request_cpu(rpc, scheme, out.cost.cpu_seconds);
                }
                Ok(Response::new(respond(out.value)))
            }
            Err(f) => {
                let status = status_of(rpc, &f.error);
                self.metrics.observe_request(
                    rpc,
                    label(f.scheme),
                    "none",
                    code_name(status.code()),
                    seconds,
                );
                Err(status)
            }
        }
    }
}

/// A request whose scheme field is bad fails before the use case runs.
fn scheme_or_fail<T>(raw: i32) -> Result<Scheme, UseCase<T>> {
    scheme_from_proto("scheme", raw).map_err(|e| Err(e.into()))
}

#[tonic::async_trait]
impl SignerService for GrpcApi {
    async fn create_key(
        &self,
        req: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::KeyInfo>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let result = match scheme_or_fail(req.scheme) {
            Ok(scheme) => {
                self.app
                    .create_key(CreateKey {
                        scheme,
                        threshold: req.threshold,
                        parties: req.parties,
                        label: req.label,
                        idempotency_key: req.idempotency_key,
                    })
                    .await
            }
            Err(failed) => failed,
        };
        self.finish("CreateKey", start, result, key_info)
    }

    async fn import_key(
        &self,
        req: Request<pb::ImportKeyRequest>,
    ) -> Result<Response<pb::KeyInfo>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let secret_key = Zeroizing::new(req.secret_key);
        let result = match scheme_or_fail(req.scheme) {
            Ok(scheme) => {
                self.app
                    .import_key(ImportKey {
                        scheme,
                        secret_key,
                        threshold: req.threshold,
                        parties: req.parties,
                        label: req.label,
                        idempotency_key: req.idempotency_key,
                    })
                    .await
            }
            Err(failed) => failed,
        };
        self.finish("ImportKey", start, result, key_info)
    }

    async fn get_key(
        &self,
        req: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::KeyInfo>, Status> {
        let start = Instant::now();
        let result = self.app.get_key(req.into_inner().key_id).await;
        self.finish("GetKey", start, result, key_info)
    }

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let result = self.app.list_keys(req.page_size, req.page_token).await;
        self.finish("ListKeys", start, result, key_page)
    }

    async fn sign(
        &self,
        req: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let result = self
            .app
            .sign(
                SignRequest {
                    key_id: req.key_id,
                    messages: vec![req.message],
                    taproot_merkle_root: req.taproot_merkle_root,
                    idempotency_key: req.idempotency_key,
                },
                false,
            )
            .await;
        self.finish("Sign", start, result, |mut sigs| {
            sigs.pop().map(sign_response).unwrap_or_default()
        })
    }

    async fn sign_batch(
        &self,
        req: Request<pb::SignBatchRequest>,
    ) -> Result<Response<pb::SignBatchResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let result = self
            .app
            .sign(
                SignRequest {
                    key_id: req.key_id,
                    messages: req.messages,
                    taproot_merkle_root: req.taproot_merkle_root,
                    idempotency_key: String::new(),
                },
                true,
            )
            .await;
        self.finish("SignBatch", start, result, |sigs| pb::SignBatchResponse {
            signatures: sigs.into_iter().map(sign_response).collect(),
        })
    }

    async fn verify(
        &self,
        req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let result = match scheme_or_fail(req.scheme) {
            Ok(scheme) => {
                self.app
                    .verify(VerifyRequest {
                        scheme,
                        public_key: req.public_key,
                        message: req.message,
                        signature: req.signature,
                    })
                    .await
            }
            Err(failed) => failed,
        };
        self.finish("Verify", start, result, |valid| pb::VerifyResponse {
            valid,
        })
    }

    async fn get_status(
        &self,
        _req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let start = Instant::now();
        let result = self.app.status().await;
        self.finish("GetStatus", start, result, status_response)
    }
}
