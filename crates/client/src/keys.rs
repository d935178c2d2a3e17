//! The keys a load run signs with: one given key, or N keys of a scheme, reused when a server
//! already holds them (from an earlier run) and created otherwise.

use std::time::{Duration, Instant};

use api_proto::{CreateKeyRequest, ListKeysRequest, Scheme};

use crate::{Api, ClientError};

/// The label of keys created by `tessera load`; keys with it are reused by later runs.
pub const LOAD_LABEL: &str = "tessera load";

/// Key creations in flight at once while setting keys up.
const CREATE_CONCURRENCY: usize = 16;

/// How the keys of a run came to be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeySetup {
    /// Keys found on the server and reused.
    pub reused: usize,
    /// Keys created for this run.
    pub created: usize,
    /// Wall time of listing and creating, seconds.
    pub seconds: f64,
}

/// Every key with [`LOAD_LABEL`] and `scheme` the server holds, in creation order.
async fn existing(
    client: &mut Api,
    scheme: Scheme,
    want: usize,
) -> Result<Vec<String>, ClientError> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_keys(ListKeysRequest {
                page_size: 1000,
                page_token: token,
            })
            .await?
            .into_inner();
        out.extend(
            page.keys
                .into_iter()
                .filter(|k| k.label == LOAD_LABEL && k.scheme == scheme as i32)
                .map(|k| k.key_id),
        );
        if out.len() >= want || page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// `n` 2-of-3 keys of `scheme`: the server's existing load keys first, then new ones (with
/// progress on stderr every 1,000 keys).
pub async fn ensure(
    client: &Api,
    scheme: Scheme,
    n: usize,
) -> Result<(Vec<String>, KeySetup), ClientError> {
    let start = Instant::now();
    let mut c = client.clone();
    let mut keys = existing(&mut c, scheme, n).await?;
    keys.truncate(n);
    let reused = keys.len();
    let missing = n - reused;
    if missing > 0 {
        eprintln!("tessera load: reusing {reused} keys, creating {missing}");
    }
    let mut created = 0usize;
    let mut last_report = Instant::now();
    while created < missing {
        let wave = (missing - created).min(CREATE_CONCURRENCY);
        let mut tasks = Vec::with_capacity(wave);
        for _ in 0..wave {
            let mut c = client.clone();
            tasks.push(tokio::spawn(async move {
                c.create_key(CreateKeyRequest {
                    scheme: scheme as i32,
                    threshold: 2,
                    parties: 3,
                    label: LOAD_LABEL.into(),
                    idempotency_key: String::new(),
                })
                .await
                .map(|r| r.into_inner().key_id)
            }));
        }
        for t in tasks {
            let id = t
                .await
                .map_err(|_| ClientError::Usage("a key-creation task panicked".into()))??;
            keys.push(id);
            created += 1;
        }
        if created == missing || last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!(
                "tessera load: {created}/{missing} keys created in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    Ok((
        keys,
        KeySetup {
            reused,
            created,
            seconds: start.elapsed().as_secs_f64(),
        },
    ))
}
