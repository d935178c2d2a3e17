//! The tonic handlers: decode, call the use case, encode, and record request metrics.

use std::sync::Arc;
use std::time::Instant;

use api_proto as pb;
use api_proto::signer_service_server::SignerService;
use service_core::app::{
    ChainOptions, ChainSigned, CreateKey, ImportKey, SignRequest, VerifyRequest,
};
use service_core::{App, Caller, Credential, Failure, Scheme, UseCase};
use telemetry::Metrics;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use service_core::chain::Unsigned;

use crate::convert::{
    chain_from_proto, key_info, key_page, message_signature, scheme_from_proto, sign_response,
    sign_transaction_response, status_response, summary, unsigned_of,
};
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

    /// The authenticated caller of `req` (see [`credential`]).
    async fn caller<T>(&self, req: &Request<T>) -> Result<Arc<Caller>, Failure> {
        Ok(self.app.authenticate(&credential(req)).await?)
    }

    /// The use case of `SignTypedData` and `SignPersonalMessage` (never broadcast).
    async fn sign_message(
        &self,
        caller: Result<Arc<Caller>, Failure>,
        key_id: String,
        unsigned: Unsigned,
        idempotency_key: String,
    ) -> UseCase<ChainSigned> {
        let options = ChainOptions {
            idempotency_key,
            broadcast: false,
        };
        let caller = caller?;
        self.app
            .sign_chain(&caller, key_id, unsigned, options)
            .await
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

/// What `req` carries to identify its client: a bearer API key from the `authorization`
/// header, else the identities of the verified client certificate (subjectAltName DNS names,
/// then the subject's common name).
pub fn credential<T>(req: &Request<T>) -> Credential {
    if let Some(v) = req.metadata().get("authorization")
        && let Ok(text) = v.to_str()
        && let Some(key) = service_core::auth::bearer(text)
    {
        return Credential::ApiKey(key);
    }
    match req.peer_certs() {
        Some(certs) => match certs.first() {
            Some(leaf) => Credential::Certificate(crate::identity::names(leaf.as_ref())),
            None => Credential::None,
        },
        None => Credential::None,
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
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match (caller, scheme_or_fail(req.scheme)) {
            (Err(f), _) => Err(f),
            (Ok(caller), Ok(scheme)) => {
                self.app
                    .create_key(
                        &caller,
                        CreateKey {
                            scheme,
                            threshold: req.threshold,
                            parties: req.parties,
                            label: req.label,
                            idempotency_key: req.idempotency_key,
                        },
                    )
                    .await
            }
            (Ok(_), Err(failed)) => failed,
        };
        self.finish("CreateKey", start, result, key_info)
    }

    async fn import_key(
        &self,
        req: Request<pb::ImportKeyRequest>,
    ) -> Result<Response<pb::KeyInfo>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let secret_key = Zeroizing::new(req.secret_key);
        let result = match (caller, scheme_or_fail(req.scheme)) {
            (Err(f), _) => Err(f),
            (Ok(caller), Ok(scheme)) => {
                self.app
                    .import_key(
                        &caller,
                        ImportKey {
                            scheme,
                            secret_key,
                            threshold: req.threshold,
                            parties: req.parties,
                            label: req.label,
                            idempotency_key: req.idempotency_key,
                        },
                    )
                    .await
            }
            (Ok(_), Err(failed)) => failed,
        };
        self.finish("ImportKey", start, result, key_info)
    }

    async fn get_key(
        &self,
        req: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::KeyInfo>, Status> {
        let start = Instant::now();
        let result = match self.caller(&req).await {
            Ok(caller) => self.app.get_key(&caller, req.into_inner().key_id).await,
            Err(f) => Err(f),
        };
        self.finish("GetKey", start, result, key_info)
    }

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match caller {
            Ok(caller) => {
                self.app
                    .list_keys(&caller, req.page_size, req.page_token)
                    .await
            }
            Err(f) => Err(f),
        };
        self.finish("ListKeys", start, result, key_page)
    }

    async fn sign(
        &self,
        req: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match caller {
            Ok(caller) => {
                self.app
                    .sign(
                        &caller,
                        SignRequest {
                            key_id: req.key_id,
                            messages: vec![req.message],
                            taproot_merkle_root: req.taproot_merkle_root,
                            idempotency_key: req.idempotency_key,
                        },
                        false,
                    )
                    .await
            }
            Err(f) => Err(f),
        };
        self.finish("Sign", start, result, |mut sigs| {
            sigs.pop().map(sign_response).unwrap_or_default()
        })
    }

    async fn sign_batch(
        &self,
        req: Request<pb::SignBatchRequest>,
    ) -> Result<Response<pb::SignBatchResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match caller {
            Ok(caller) => {
                self.app
                    .sign(
                        &caller,
                        SignRequest {
                            key_id: req.key_id,
                            messages: req.messages,
                            taproot_merkle_root: req.taproot_merkle_root,
                            idempotency_key: String::new(),
                        },
                        true,
                    )
                    .await
            }
            Err(f) => Err(f),
        };
        self.finish("SignBatch", start, result, |sigs| pb::SignBatchResponse {
            signatures: sigs.into_iter().map(sign_response).collect(),
        })
    }

    async fn verify(
        &self,
        req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match (caller, scheme_or_fail(req.scheme)) {
            (Err(f), _) => Err(f),
            (Ok(_), Ok(scheme)) => {
                self.app
                    .verify(VerifyRequest {
                        scheme,
                        public_key: req.public_key,
                        message: req.message,
                        signature: req.signature,
                    })
                    .await
            }
            (Ok(_), Err(failed)) => failed,
        };
        self.finish("Verify", start, result, |valid| pb::VerifyResponse {
            valid,
        })
    }

    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let start = Instant::now();
        let result = match self.caller(&req).await {
            Ok(_) => self.app.status().await,
            Err(f) => Err(f),
        };
        self.finish("GetStatus", start, result, status_response)
    }

    async fn get_address(
        &self,
        req: Request<pb::GetAddressRequest>,
    ) -> Result<Response<pb::GetAddressResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match (caller, chain_from_proto("chain", req.chain)) {
            (Err(f), _) => Err(f),
            (Ok(caller), Ok(chain)) => {
                self.app
                    .get_address(&caller, req.key_id, chain, req.network)
                    .await
            }
            (Ok(_), Err(e)) => Err(e.into()),
        };
        self.finish("GetAddress", start, result, |address| {
            pb::GetAddressResponse { address }
        })
    }

    async fn sign_transaction(
        &self,
        req: Request<pb::SignTransactionRequest>,
    ) -> Result<Response<pb::SignTransactionResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = match (caller, unsigned_of(req.transaction)) {
            (Err(f), _) => Err(f),
            (Ok(caller), Ok(unsigned)) => {
                let options = ChainOptions {
                    idempotency_key: req.idempotency_key,
                    broadcast: req.broadcast,
                };
                self.app
                    .sign_chain(&caller, req.key_id, unsigned, options)
                    .await
            }
            (Ok(_), Err(e)) => Err(e.into()),
        };
        self.finish("SignTransaction", start, result, sign_transaction_response)
    }

    async fn sign_typed_data(
        &self,
        req: Request<pb::SignTypedDataRequest>,
    ) -> Result<Response<pb::SignTypedDataResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = self
            .sign_message(
                caller,
                req.key_id,
                Unsigned::EthereumTypedData(req.typed_data_json),
                req.idempotency_key,
            )
            .await;
        self.finish("SignTypedData", start, result, |c| {
            let (signature, digest, address) = message_signature(&c);
            pb::SignTypedDataResponse {
                signature,
                digest,
                address,
                summary: Some(summary(c.summary)),
            }
        })
    }

    async fn sign_personal_message(
        &self,
        req: Request<pb::SignPersonalMessageRequest>,
    ) -> Result<Response<pb::SignPersonalMessageResponse>, Status> {
        let start = Instant::now();
        let caller = self.caller(&req).await;
        let req = req.into_inner();
        let result = self
            .sign_message(
                caller,
                req.key_id,
                Unsigned::EthereumPersonalMessage(req.message),
                req.idempotency_key,
            )
            .await;
        self.finish("SignPersonalMessage", start, result, |c| {
            let (signature, digest, address) = message_signature(&c);
            pb::SignPersonalMessageResponse {
                signature,
                digest,
                address,
            }
        })
    }
}
