//! Where the key-encryption key comes from: `TESSERA_KEK`, a file, or `<data_dir>/kek`
//! generated on first run. Sealing itself is `service_core::Kek`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use service_core::Kek;
use zeroize::Zeroizing;

use crate::error::Error;

/// Where the KEK came from, for the start-up log and errors.
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

impl std::fmt::Display for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KekSource::Env => f.write_str("TESSERA_KEK"),
            KekSource::File(p) | KekSource::DataDir(p) | KekSource::Generated(p) => {
                write!(f, "{}", p.display())
            }
        }
    }
}

fn parse(origin: &str, text: &str) -> Result<Kek, Error> {
    Kek::from_hex(text).map_err(|e| Error::Kek {
        origin: origin.to_owned(),
        problem: e.to_string(),
    })
}

/// A KEK file that its group or other users can read (or write) is refused: the key would
/// not be the service's alone.
fn refuse_shared(p: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(p).map_err(|e| Error::Io {
            context: format!("reading KEK file {}", p.display()),
            source: e,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Kek {
                origin: p.display().to_string(),
                problem: format!(
                    "the file is accessible to other users (mode {mode:o}); make it private: chmod 600 {}",
                    p.display()
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = p;
    Ok(())
}

/// Resolves the KEK: `env_hex` (`TESSERA_KEK`), else `file`, else `<data_dir>/kek`,
/// generating the latter (mode 0600) when it does not exist. KEK files other users can reach
/// are refused.
pub fn resolve(
    env_hex: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> Result<(Kek, KekSource), Error> {
    if let Some(h) = env_hex {
        return Ok((parse("TESSERA_KEK", h)?, KekSource::Env));
    }
    let read = |p: &Path| -> Result<Kek, Error> {
        refuse_shared(p)?;
        let text = Zeroizing::new(std::fs::read_to_string(p).map_err(|e| Error::Io {
            context: format!("reading KEK file {}", p.display()),
            source: e,
        })?);
        parse(&p.display().to_string(), &text)
    };
    if let Some(p) = file {
        return Ok((read(p)?, KekSource::File(p.to_owned())));
    }
    let p = data_dir.join("kek");
    if p.exists() {
        return Ok((read(&p)?, KekSource::DataDir(p)));
    }
    Ok((generate(&p)?, KekSource::Generated(p)))
}

/// The KEK in `path`, or a new one generated there (mode 0600, never overwriting); says
/// whether it was generated.
pub fn read_or_generate(path: &Path) -> Result<(Kek, bool), Error> {
    if path.exists() {
        refuse_shared(path)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("reading KEK file {}", path.display()),
            source: e,
        })?);
        return Ok((parse(&path.display().to_string(), &text)?, false));
    }
    Ok((generate(path)?, true))
}

fn generate(p: &Path) -> Result<Kek, Error> {
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
    let mut f = opts.open(p).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(Kek::from_bytes(*key))
}

/// [`resolve`] for commands that work on an existing data directory: never generates a KEK.
pub fn resolve_existing(
    env_hex: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> Result<(Kek, KekSource), Error> {
    let default = data_dir.join("kek");
    if env_hex.is_none() && file.is_none() && !default.exists() {
        return Err(Error::Kek {
            origin: default.display().to_string(),
            problem: "not found: give the KEK the server runs with (TESSERA_KEK or --kek-file)"
                .into(),
        });
    }
    resolve(env_hex, file, data_dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use service_core::Sealer;

    use super::*;

    #[cfg(unix)]
    #[test]
    fn kek_files_other_users_can_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek.hex");
        std::fs::write(&p, "11".repeat(32)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve(None, Some(&p), dir.path()).unwrap_err().to_string();
        assert!(e.contains("kek.hex") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(resolve(None, Some(&p), dir.path()).is_ok());
    }

    #[test]
    fn resolve_generates_a_private_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src) = resolve(None, None, dir.path()).unwrap();
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
        let (k2, src) = resolve(None, None, dir.path()).unwrap();
        assert!(matches!(src, KekSource::DataDir(_)));
        let sealed = k1.seal("id", b"x").unwrap();
        assert_eq!(k2.open("id", &sealed).unwrap().as_slice(), b"x");
        let hex_key = "11".repeat(32);
        let (k3, src) = resolve(Some(&hex_key), None, dir.path()).unwrap();
        assert_eq!(src, KekSource::Env);
        assert!(k3.open("id", &sealed).is_err());
        let err = resolve(Some("zz"), None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TESSERA_KEK") && err.contains("64 hex digits"),
            "{err}"
        );
    }
}
