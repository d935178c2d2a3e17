//! The process-wide `tracing` subscriber: text or JSON lines on stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::Error;

/// How log events are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per event, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    /// Parses `text` or `json` (case-insensitive, surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(Error::UnknownLogFormat(s.to_owned())),
        }
    }
}

/// The filter to use: `RUST_LOG` when it is set and not blank, else `default_filter`.
/// `default_filter` is parsed in either case, so a bad default is caught on every host.
fn filter(default_filter: &str) -> Result<EnvFilter, Error> {
    let parse = |origin: &'static str, directives: &str| {
        EnvFilter::try_new(directives).map_err(|source| Error::Filter {
            origin,
            directives: directives.to_owned(),
            source,
        })
    };
    let default = parse("the default filter", default_filter)?;
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) if !env.trim().is_empty() => parse("RUST_LOG", &env),
        _ => Ok(default),
    }
}

/// Installs the global `tracing` subscriber: events go to stderr as `format` says, filtered by
/// `RUST_LOG` when it is set (else by `default_filter`, e.g. `"info"` or
/// `"info,signer_service=debug"`). ANSI colours are used only when stderr is a terminal.
///
/// Fails when a filter does not parse or when a global subscriber is already installed (this
/// is meant to be called once, at start-up).
pub fn init_tracing(format: LogFormat, default_filter: &str) -> Result<(), Error> {
    let filter = filter(default_filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(Error::Install)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn log_format_parses_text_and_json_only() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!(" JSON ".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::default(), LogFormat::Text);
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(matches!(&err, Error::UnknownLogFormat(s) if s == "yaml"));
        assert!(err.to_string().contains("`text` or `json`"), "{err}");
    }

    #[test]
    fn bad_default_filter_is_rejected() {
        let err = filter("info,=[").unwrap_err();
        assert!(
            matches!(&err, Error::Filter { origin: "the default filter", directives, .. } if directives == "info,=["),
            "{err:?}"
        );
    }

    #[test]
    fn installs_once() {
        init_tracing(LogFormat::Json, "info").unwrap();
        let again = init_tracing(LogFormat::Text, "info").unwrap_err();
        assert!(matches!(again, Error::Install(_)), "{again:?}");
    }
}
