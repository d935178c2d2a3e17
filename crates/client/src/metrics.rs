//! Reading a server's Prometheus endpoint.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::ClientError;

/// How long a scrape may take.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// GETs a Prometheus text page (`http://HOST:PORT/metrics`).
pub async fn fetch_metrics(url: &str) -> Result<String, ClientError> {
    let fail = |problem: String| ClientError::Metrics {
        url: url.to_owned(),
        problem,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail("must start with http://".into()));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = tokio::time::timeout(SCRAPE_TIMEOUT, client.get(uri))
        .await
        .map_err(|_| fail("timed out".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("answered {}", resp.status())));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| fail("not UTF-8".into()))
}

/// Sums every sample of `name` (optionally only where label `label` has one of `values`) in
/// a Prometheus text exposition.
pub fn sum_samples(text: &str, name: &str, filter: Option<(&str, &[&str])>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            if let Some((label, values)) = filter {
                let ok = labels.split(',').any(|kv| {
                    kv.split_once('=').is_some_and(|(k, v)| {
                        k == label && values.iter().any(|want| v.trim_matches('"') == *want)
                    })
                });
                if !ok {
                    return None;
                }
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_samples_with_and_without_filters() {
        let text = "# TYPE x counter\nx_total{rpc=\"Sign\",scheme=\"ed25519\"} 2\nx_total{rpc=\"Verify\"} 5\nx_total 1\ny 7\n";
        assert_eq!(sum_samples(text, "x_total", None), 8.0);
        assert_eq!(sum_samples(text, "x_total", Some(("rpc", &["Sign"]))), 2.0);
        assert_eq!(sum_samples(text, "y", None), 7.0);
        assert_eq!(sum_samples(text, "z", None), 0.0);
    }
}
