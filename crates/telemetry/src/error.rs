//! The crate's error type.

/// What setting up telemetry can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A log format other than `text` or `json` was asked for.
    #[error("unknown log format `{0}` (expected `text` or `json`)")]
    UnknownLogFormat(String),
    /// A log filter did not parse.
    #[error("invalid log filter `{directives}` from {origin}")]
    Filter {
        /// Where the filter came from: `RUST_LOG` or the default filter.
        origin: &'static str,
        /// The directives as given.
        directives: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The global tracing subscriber could not be installed (one is installed already).
    #[error("cannot install the tracing subscriber")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}
