//! The key-encryption key (KEK) and sealing of key-share bytes with ChaCha20-Poly1305.
//!
//! A sealed blob is `nonce (12 bytes) ‖ ciphertext+tag`; the associated data binds the key id,
//! so a record moved to another key id fails to open.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// Where the KEK came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekSource {
    /// The `TESSERA_KEK` environment variable.
    Env,
    /// A file given by `--kek-file` / `storage.kek_file`.
    File(PathBuf),
    /// `<data_dir>/kek`, read from an earlier run.
    DataDir(PathBuf),
    /// `<data_dir>/kek`, generated now.
    Generated(PathBuf),
}

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

    /// Parses 64 hex digits (surrounding whitespace allowed).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut_slice())
            .map_err(|_| Error::Kek("expected 64 hex digits (32 bytes)".into()))?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Resolves the KEK: `env_hex` (`TESSERA_KEK`), else `file`, else `<data_dir>/kek`,
    /// generating the latter (mode 0600) when it does not exist.
    pub fn resolve(
        env_hex: Option<&str>,
        file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, KekSource), Error> {
        if let Some(h) = env_hex {
            return Ok((
                Self::from_hex(h).map_err(|e| Error::Kek(format!("TESSERA_KEK: {e}")))?,
                KekSource::Env,
            ));
        }
        let read = |p: &Path| -> Result<Self, Error> {
            let text = Zeroizing::new(std::fs::read_to_string(p).map_err(|e| Error::Io {
                context: format!("reading KEK file {}", p.display()),
                source: e,
            })?);
            Self::from_hex(&text).map_err(|e| Error::Kek(format!("{}: {e}", p.display())))
        };
        if let Some(p) = file {
            return Ok((read(p)?, KekSource::File(p.to_owned())));
        }
        let p = data_dir.join("kek");
        if p.exists() {
            return Ok((read(&p)?, KekSource::DataDir(p)));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut_slice());
        let text = Zeroizing::new(hex::encode(key.as_slice()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let io = |e| Error::Io {
            context: format!("creating KEK file {}", p.display()),
            source: e,
        };
        let mut f = opts.open(&p).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok((Self::from_bytes(*key), KekSource::Generated(p)))
    }

    /// Encrypts `plaintext` for `key_id` under a fresh random nonce.
    pub fn seal(&self, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
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
            .map_err(|_| Error::Kek("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a blob made by [`Kek::seal`] for `key_id`; fails on any tampering, a wrong key
    /// id or a wrong KEK.
    pub fn open(&self, key_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
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
    fn import_request_debug_is_redacted() {
        let req = crate::proto::ImportKeyRequest {
            scheme: 1,
            secret_key: vec![0xab; 32],
            threshold: 2,
            parties: 3,
            label: "l".into(),
        };
        let text = format!("{req:?}");
        assert!(
            text.contains("<redacted>") && !text.contains("171"),
            "{text}"
        );
    }

    #[test]
    fn resolve_generates_a_private_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src) = Kek::resolve(None, None, dir.path()).unwrap();
        assert!(matches!(src, KekSource::Generated(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("kek"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, src) = Kek::resolve(None, None, dir.path()).unwrap();
        assert!(matches!(src, KekSource::DataDir(_)));
        let sealed = k1.seal("id", b"x").unwrap();
        assert_eq!(k2.open("id", &sealed).unwrap().as_slice(), b"x");
        let hex_key = "11".repeat(32);
        let (k3, src) = Kek::resolve(Some(&hex_key), None, dir.path()).unwrap();
        assert_eq!(src, KekSource::Env);
        assert!(k3.open("id", &sealed).is_err());
        assert!(Kek::resolve(Some("zz"), None, dir.path()).is_err());
    }
}
