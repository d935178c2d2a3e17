#![doc = include_str!("../README.md")]

mod convert;
mod handlers;
mod health;
mod identity;
mod status;

pub use convert::{scheme_from_proto, scheme_to_proto};
pub use handlers::{GrpcApi, credential};
pub use health::{Health, HealthError, reflection_v1, reflection_v1alpha};
pub use identity::names as certificate_names;
pub use status::{code_name, status_of};
