#![doc = include_str!("../README.md")]

mod breaker;
mod error;
mod log;
mod metered;
mod metrics;
mod process;

pub use error::Error;
pub use log::{LogFormat, init_tracing};
pub use metered::{Metered, last_backend};
pub use metrics::{BuildInfo, CONTENT_TYPE, Metrics};
