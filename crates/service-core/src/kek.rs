//! The key-encryption key (KEK): the [`Sealer`] that seals key material with
//! ChaCha20-Poly1305. Where the KEK comes from (environment, file, generated) is the wiring's
//! business (`signer-service`).
//!
//! A sealed blob is `nonce (12 bytes) ‖ ciphertext+tag`; the associated data binds the key id,
//! so a record moved to another key id fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::ports::Sealer;

/// A KEK that is not 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits (32 bytes)")]
pub struct KekFormatError;

/// A 32-byte key-encryption key. Zeroized on drop; `Debug` is redacted.
pub struct Kek {
    key: [u8; 32],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Drop for Kek {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

fn associated_data(key_id: &str) -> Vec<u8> {
    let mut ad = b"tessera/v1/keyset\0".to_vec();
    ad.extend_from_slice(key_id.as_bytes());
    ad
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A 32-byte key for `purpose` derived from the KEK (HMAC-SHA256 under the KEK over a
    /// domain tag and the purpose), so other data (the access file, the audit chain) can be
    /// authenticated without ever using the KEK itself for it.
    pub fn subkey(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key) {
            mac.update(b"tessera/v1/subkey\0");
            mac.update(purpose.as_bytes());
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Parses 64 hex digits (surrounding whitespace allowed).
    pub fn from_hex(text: &str) -> Result<Self, KekFormatError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut_slice()).map_err(|_| KekFormatError)?;
        Ok(Self::from_bytes(*bytes))
    }
}

impl Sealer for Kek {
    /// HMAC-SHA256 under [`Kek::subkey`]`("key-record")`.
    fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let key = self.subkey("key-record");
        let mut out = [0u8; 32];
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_slice()) {
            mac.update(data);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Encrypts `plaintext` for `key_id` under a fresh random nonce.
    fn seal(&self, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ad = associated_data(key_id);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| Error::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a blob made by [`Kek::seal`] for `key_id`; fails on any tampering, a wrong key
    /// id or a wrong KEK.
    fn open(&self, key_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let fail = || Error::Decrypt {
            key_id: key_id.to_owned(),
        };
        if sealed.len() < 12 + 16 {
            return Err(fail());
        }
        let (nonce, ct) = sealed.split_at(12);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let ad = associated_data(key_id);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &ad })
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let kek = Kek::from_bytes([7; 32]);
        let sealed = kek.seal("key-a", b"share bytes").unwrap();
        assert_eq!(
            kek.open("key-a", &sealed).unwrap().as_slice(),
            b"share bytes"
        );
        for i in [0, 12, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(matches!(
                kek.open("key-a", &bad),
                Err(Error::Decrypt { .. })
            ));
        }
        assert!(matches!(
            kek.open("key-b", &sealed),
            Err(Error::Decrypt { .. })
        ));
        let other = Kek::from_bytes([8; 32]);
        assert!(other.open("key-a", &sealed).is_err());
        assert_ne!(
            kek.seal("key-a", b"share bytes").unwrap(),
            sealed,
            "fresh nonce"
        );
        assert_eq!(format!("{kek:?}"), "Kek(<redacted>)");
    }

    #[test]
    fn subkeys_differ_by_purpose_and_by_kek() {
        let (a, b) = (Kek::from_bytes([7; 32]), Kek::from_bytes([8; 32]));
        assert_eq!(*a.subkey("access"), *a.subkey("access"));
        assert_ne!(*a.subkey("access"), *a.subkey("audit"));
        assert_ne!(*a.subkey("access"), *b.subkey("access"));
        assert_ne!(*a.subkey("access"), [7; 32]);
    }
}
