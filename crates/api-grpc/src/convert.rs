//! Conversions between the protobuf messages and `service-core`'s types.

use api_proto as pb;
use service_core::app::{KeyPage, KeyView, StatusView};
use service_core::{Error, Scheme, Signature};

/// The domain scheme of a protobuf `Scheme` value; `field` names the request field in errors.
pub fn scheme_from_proto(field: &'static str, raw: i32) -> Result<Scheme, Error> {
    match pb::Scheme::try_from(raw) {
        Ok(pb::Scheme::Ed25519) => Ok(Scheme::Ed25519),
        Ok(pb::Scheme::Bip340) => Ok(Scheme::Bip340),
        Ok(pb::Scheme::EcdsaSecp256k1) => Ok(Scheme::EcdsaSecp256k1),
        Ok(pb::Scheme::Unspecified) => Err(Error::invalid(
            field,
            "must be set (SCHEME_ED25519, SCHEME_BIP340 or SCHEME_ECDSA_SECP256K1)",
        )),
        Err(_) => Err(Error::invalid(field, format!("unknown scheme value {raw}"))),
    }
}

/// The protobuf value of a domain scheme.
pub fn scheme_to_proto(s: Scheme) -> pb::Scheme {
    match s {
        Scheme::Ed25519 => pb::Scheme::Ed25519,
        Scheme::Bip340 => pb::Scheme::Bip340,
        Scheme::EcdsaSecp256k1 => pb::Scheme::EcdsaSecp256k1,
    }
}

pub(crate) fn key_info(v: KeyView) -> pb::KeyInfo {
    let ethereum_address = match v.scheme {
        Scheme::EcdsaSecp256k1 => chains::ethereum::address(&v.public_key).unwrap_or_default(),
        Scheme::Ed25519 | Scheme::Bip340 => String::new(),
    };
    pb::KeyInfo {
        key_id: v.key_id,
        scheme: scheme_to_proto(v.scheme) as i32,
        threshold: v.threshold,
        parties: v.parties,
        public_key: v.public_key,
        label: v.label,
        created_at: Some(prost_types::Timestamp {
            seconds: i64::try_from(v.created_at_ms / 1000).unwrap_or(i64::MAX),
            nanos: i32::try_from((v.created_at_ms % 1000) * 1_000_000).unwrap_or(0),
        }),
        ethereum_address,
    }
}

pub(crate) fn sign_response(s: Signature) -> pb::SignResponse {
    pb::SignResponse {
        signature: s.signature,
        verifying_key: s.verifying_key,
        recovery_id: u32::from(s.recovery_id),
    }
}

pub(crate) fn key_page(p: KeyPage) -> pb::ListKeysResponse {
    pb::ListKeysResponse {
        keys: p.keys.into_iter().map(key_info).collect(),
        next_page_token: p.next_page_token,
    }
}

pub(crate) fn status_response(s: StatusView) -> pb::GetStatusResponse {
    pb::GetStatusResponse {
        version: s.version,
        backend: s.backend,
        mode: s.mode,
        key_count: s.key_count,
    }
}
