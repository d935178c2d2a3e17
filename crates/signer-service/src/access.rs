//! The access file, `<data_dir>/access.json`: the registered clients (API keys, stored as
//! hashes, and client-certificate identities) with their policies, authenticated with an
//! HMAC under a key derived from the KEK, so whoever can write the data directory but does not
//! hold the KEK cannot grant themselves access. `tessera apikey` edits it (replacing the file
//! by a rename); a running server looks at the file's identity on every request and re-reads
//! it when it was replaced, so a revocation holds from the moment `tessera apikey revoke`
//! returns, without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use service_core::auth::{ANY, OPERATOR, api_key_hash, new_api_key};
use service_core::ports::now_ms;
use service_core::{Caller, Clients, Kek, Policy, Scheme};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::Error;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "access.json";
/// How long an edit waits for another edit's lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Longest client name, in bytes.
const MAX_NAME_BYTES: usize = 128;

/// How a client proves who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// An API key; only its hash is kept.
    ApiKey {
        /// `service_core::auth::api_key_hash` of the key, hex.
        #[serde(with = "hex::serde")]
        sha256: Vec<u8>,
    },
    /// A client certificate naming the entry's name (SAN DNS name or common name).
    Certificate,
    /// No credential on this node: the policy of a client that authenticates at another node
    /// of the cluster, checked when that node asks this one to co-sign for it.
    Policy,
}

/// One registered client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The client's name (its certificate identity for certificate clients).
    pub name: String,
    /// Its credential.
    #[serde(flatten)]
    pub credential: Credential,
    /// What it may do.
    pub policy: Policy,
    /// When it was registered, ms since the epoch.
    pub created_at_ms: u64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct FileBody {
    version: u32,
    clients: Vec<Entry>,
    #[serde(with = "hex::serde")]
    mac: Vec<u8>,
}

fn mac_of(key: &[u8; 32], clients: &[Entry]) -> Result<Vec<u8>, Error> {
    let body = serde_json::to_vec(clients).map_err(|e| Error::Io {
        context: "encoding the access file".into(),
        source: e.into(),
    })?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| Error::Io {
        context: "keying the access file's MAC".into(),
        source: std::io::Error::other("bad key length"),
    })?;
    mac.update(b"tessera/v1/access\0");
    mac.update(&body);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn access_err(path: &Path, problem: impl Into<String>) -> Error {
    Error::Access {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Reads and authenticates the entries of `path`; a missing file has none.
pub fn read(path: &Path, key: &[u8; 32]) -> Result<Vec<Entry>, Error> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                context: format!("reading {}", path.display()),
                source: e,
            });
        }
    };
    let body: FileBody = serde_json::from_slice(&text)
        .map_err(|e| access_err(path, format!("not an access file: {e}")))?;
    if body.version != 1 {
        return Err(access_err(
            path,
            format!("unknown version {} (this build reads 1)", body.version),
        ));
    }
    let expected = mac_of(key, &body.clients)?;
    let ok: bool = subtle::ConstantTimeEq::ct_eq(expected.as_slice(), body.mac.as_slice()).into();
    if !ok {
        let staged = crate::rotate::staged(path);
        if staged.exists() {
            return Err(access_err(
                path,
                format!(
                    "its MAC does not verify, and {} exists: a `tessera kek rotate` was interrupted after the database was re-keyed; move {} over {} to finish it",
                    staged.display(),
                    staged.display(),
                    path.display()
                ),
            ));
        }
        return Err(access_err(
            path,
            "its MAC does not verify: the file was edited outside `tessera apikey`, or the KEK is not the one it was written with",
        ));
    }
    Ok(body.clients)
}

/// Writes `clients` to `path` atomically (a synced temporary file renamed over it), mode 0600.
pub fn write(path: &Path, key: &[u8; 32], clients: Vec<Entry>) -> Result<(), Error> {
    let mac = mac_of(key, &clients)?;
    let text = serde_json::to_vec_pretty(&FileBody {
        version: 1,
        clients,
        mac,
    })
    .map_err(|e| Error::Io {
        context: "encoding the access file".into(),
        source: e.into(),
    })?;
    let tmp = path.with_extension("json.tmp");
    let io = |what: &str| {
        let what = format!("{what} {}", tmp.display());
        move |e| Error::Io {
            context: what,
            source: e,
        }
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    {
        use std::io::Write;
        let mut f = opts.open(&tmp).map_err(io("creating"))?;
        f.write_all(&text).map_err(io("writing"))?;
        f.sync_all().map_err(io("syncing"))?;
    }
    std::fs::rename(&tmp, path).map_err(io("renaming"))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _best_effort = d.sync_all();
    }
    Ok(())
}

/// An exclusive lock on the access file for one edit (a lock file created exclusively).
struct EditLock(PathBuf);

impl EditLock {
    fn take(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                context: format!("creating {}", dir.display()),
                source: e,
            })?;
        }
        let lock = path.with_extension("json.lock");
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(Self(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() > LOCK_WAIT {
                        return Err(access_err(
                            path,
                            format!(
                                "another edit holds {}; if no `tessera apikey` command is running, remove it",
                                lock.display()
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(Error::Io {
                        context: format!("creating {}", lock.display()),
                        source: e,
                    });
                }
            }
        }
    }
}

impl Drop for EditLock {
    fn drop(&mut self) {
        let _gone = std::fs::remove_file(&self.0);
    }
}

/// The access file of `data_dir`, keyed from `kek`.
pub fn path_and_key(data_dir: &Path, kek: &Kek) -> (PathBuf, Zeroizing<[u8; 32]>) {
    (data_dir.join(FILE_NAME), kek.subkey("access-file"))
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._@-:".contains(c);
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.chars().all(ok_char) {
        return Err(Error::usage(
            "--name",
            format!(
                "`{name}` must be 1 to {MAX_NAME_BYTES} characters of letters, digits and . _ @ - :"
            ),
        ));
    }
    if name == OPERATOR {
        return Err(Error::usage(
            "--name",
            format!("`{OPERATOR}` is reserved for the operator when authentication is off"),
        ));
    }
    Ok(())
}

/// What `tessera apikey create` registers.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// Name.
    pub name: String,
    /// Policy.
    pub policy: Policy,
    /// A certificate identity instead of an API key.
    pub certificate: bool,
    /// A policy only (for a client that authenticates at another node of the cluster).
    pub policy_only: bool,
}

/// Registers a client; returns its new API key (none for a certificate identity).
pub fn create(
    path: &Path,
    key: &[u8; 32],
    new: NewClient,
) -> Result<Option<Zeroizing<String>>, Error> {
    check_name(&new.name)?;
    new.policy
        .validate()
        .map_err(|e| Error::usage("--keys/--schemes/--rate", e))?;
    let _lock = EditLock::take(path)?;
    let mut clients = read(path, key)?;
    if clients
        .iter()
        .any(|c| c.name == new.name && c.revoked_at_ms.is_none())
    {
        return Err(Error::usage(
            "--name",
            format!(
                "a client named `{}` is already registered; revoke it first (`tessera apikey revoke --name {}`)",
                new.name, new.name
            ),
        ));
    }
    let (credential, api_key) = if new.policy_only {
        (Credential::Policy, None)
    } else if new.certificate {
        (Credential::Certificate, None)
    } else {
        let k = new_api_key();
        (
            Credential::ApiKey {
                sha256: api_key_hash(&k).to_vec(),
            },
            Some(k),
        )
    };
    clients.push(Entry {
        name: new.name,
        credential,
        policy: new.policy,
        created_at_ms: now_ms(),
        revoked_at_ms: None,
    });
    write(path, key, clients)?;
    Ok(api_key)
}

/// Revokes every active entry named `name`; returns how many.
pub fn revoke(path: &Path, key: &[u8; 32], name: &str) -> Result<usize, Error> {
    let _lock = EditLock::take(path)?;
    let mut clients = read(path, key)?;
    let now = now_ms();
    let mut n = 0;
    for c in clients
        .iter_mut()
        .filter(|c| c.name == name && c.revoked_at_ms.is_none())
    {
        c.revoked_at_ms = Some(now);
        n += 1;
    }
    if n == 0 {
        return Err(Error::usage(
            "--name",
            format!("no active client named `{name}`"),
        ));
    }
    write(path, key, clients)?;
    Ok(n)
}

/// `tessera apikey list`'s table.
pub fn render(clients: &[Entry]) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(",")
        }
    };
    let mut out = String::from("NAME\tKIND\tADMIN\tKEYS\tSCHEMES\tRATE\tSTATUS\n");
    for c in clients {
        let kind = match c.credential {
            Credential::ApiKey { .. } => "api-key",
            Credential::Certificate => "certificate",
            Credential::Policy => "policy",
        };
        out.push_str(&format!(
            "{}\t{kind}\t{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.policy.admin,
            list(&c.policy.keys),
            list(&c.policy.schemes),
            c.policy
                .rate_per_s
                .map_or("unlimited".to_owned(), |r| format!("{r}/s")),
            if c.revoked_at_ms.is_some() {
                "revoked"
            } else {
                "active"
            }
        ));
    }
    out
}

/// Parses `--keys` / `--schemes` lists: `*` or comma-separated values.
pub fn list_arg(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses `--schemes` (names or `*`) into canonical names.
pub fn schemes_arg(values: &[String]) -> Result<Vec<String>, Error> {
    list_arg(values)
        .into_iter()
        .map(|s| {
            if s == ANY {
                Ok(s)
            } else {
                s.parse::<Scheme>()
                    .map(|x| x.as_str().to_owned())
                    .map_err(|e| Error::usage("--schemes", e.to_string()))
            }
        })
        .collect()
}

/// Parses `--rate N/s` (or `N`).
pub fn rate_arg(v: &str) -> Result<u32, Error> {
    let n = v.trim().strip_suffix("/s").unwrap_or(v.trim());
    n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
        Error::usage(
            "--rate",
            format!("`{v}` is not a rate; give requests per second, e.g. 100/s"),
        )
    })
}

/// What identifies one version of the file: edits replace it (new inode) and change its
/// length or modification time.
type Stamp = (SystemTime, u64, u64);

#[derive(Clone, Default)]
struct Snapshot {
    stamp: Option<Stamp>,
    by_key: HashMap<[u8; 32], Arc<Caller>>,
    by_certificate: HashMap<String, Arc<Caller>>,
    by_name: HashMap<String, Arc<Caller>>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok()?, m.len(), inode))
}

fn snapshot(path: &Path, key: &[u8; 32]) -> Result<Snapshot, Error> {
    let stamp = stamp(path);
    let mut s = Snapshot {
        stamp,
        ..Snapshot::default()
    };
    for c in read(path, key)? {
        if c.revoked_at_ms.is_some() {
            continue;
        }
        let caller = Arc::new(Caller {
            name: c.name.clone(),
            policy: c.policy,
        });
        s.by_name.insert(c.name.clone(), Arc::clone(&caller));
        match c.credential {
            Credential::ApiKey { sha256 } => {
                if let Ok(h) = <[u8; 32]>::try_from(sha256.as_slice()) {
                    s.by_key.insert(h, caller);
                }
            }
            Credential::Certificate => {
                s.by_certificate.insert(c.name, caller);
            }
            Credential::Policy => {}
        }
    }
    Ok(s)
}

/// The registered clients as the running server sees them (the [`Clients`] port).
pub struct AccessFile {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for AccessFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AccessFile {
    /// Reads `<data_dir>/access.json` now: a file that does not verify is a start-up error.
    pub fn open(data_dir: &Path, kek: &Kek) -> Result<(Self, usize), Error> {
        let (path, key) = path_and_key(data_dir, kek);
        let snap = snapshot(&path, &key)?;
        let n = snap.by_name.len();
        Ok((
            Self {
                path,
                key,
                current: RwLock::new(Arc::new(snap)),
            },
            n,
        ))
    }

    /// The current snapshot, re-read first when the file was replaced (one `stat` per
    /// request). A changed file that does not verify keeps the previous snapshot and is
    /// logged.
    fn current(&self) -> Arc<Snapshot> {
        let cur = Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()));
        if stamp(&self.path) == cur.stamp {
            return cur;
        }
        match snapshot(&self.path, &self.key) {
            Ok(s) => {
                let s = Arc::new(s);
                tracing::info!(
                    path = %self.path.display(),
                    clients = s.by_name.len(),
                    "access file reloaded"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&s);
                s
            }
            Err(e) => {
                tracing::error!(error = %e.chain(), "access file changed but was not loaded; keeping the previous clients");
                // Remember this version so it is not re-read (and logged) on every request.
                let mut kept = (*cur).clone();
                kept.stamp = stamp(&self.path);
                let kept = Arc::new(kept);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&kept);
                kept
            }
        }
    }
}

impl Clients for AccessFile {
    fn by_api_key(&self, hash: &[u8; 32]) -> Option<Arc<Caller>> {
        self.current().by_key.get(hash).cloned()
    }

    fn by_certificate(&self, name: &str) -> Option<Arc<Caller>> {
        self.current().by_certificate.get(name).cloned()
    }

    fn by_name(&self, name: &str) -> Option<Arc<Caller>> {
        self.current().by_name.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn new(name: &str, certificate: bool) -> NewClient {
        NewClient {
            name: name.into(),
            policy: Policy {
                admin: false,
                keys: vec!["k1".into()],
                schemes: vec!["ed25519".into()],
                rate_per_s: Some(10),
            },
            certificate,
            policy_only: false,
        }
    }

    #[test]
    fn clients_are_created_found_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_bytes([3; 32]);
        let (path, key) = path_and_key(dir.path(), &kek);
        let api_key = create(&path, &key, new("alice", false)).unwrap().unwrap();
        assert!(
            create(&path, &key, new("web.example", true))
                .unwrap()
                .is_none()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(api_key.as_str()), "only the hash is stored");
        assert!(
            create(&path, &key, new("alice", false)).is_err(),
            "duplicate"
        );
        assert!(
            create(&path, &key, new("local", false)).is_err(),
            "reserved"
        );
        assert!(create(&path, &key, new("a b", false)).is_err(), "bad name");

        let (file, n) = AccessFile::open(dir.path(), &kek).unwrap();
        assert_eq!(n, 2);
        let alice = file.by_api_key(&api_key_hash(&api_key)).unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.policy.rate_per_s, Some(10));
        assert!(file.by_api_key(&api_key_hash("tsk_other")).is_none());
        assert_eq!(
            file.by_certificate("web.example").unwrap().name,
            "web.example"
        );
        assert!(
            file.by_certificate("alice").is_none(),
            "an API-key client is not a certificate identity"
        );
        assert_eq!(file.by_name("alice").unwrap().name, "alice");
        let mut peer = new("remote-app", false);
        peer.policy_only = true;
        assert!(
            create(&path, &key, peer).unwrap().is_none(),
            "no credential is made"
        );
        assert_eq!(file.by_name("remote-app").unwrap().name, "remote-app");
        assert!(file.by_certificate("remote-app").is_none());

        assert_eq!(revoke(&path, &key, "alice").unwrap(), 1);
        assert!(
            revoke(&path, &key, "alice").is_err(),
            "nothing left to revoke"
        );
        assert!(
            file.by_api_key(&api_key_hash(&api_key)).is_none(),
            "a running server sees the revocation"
        );
        let listed = render(&read(&path, &key).unwrap());
        assert!(
            listed.contains("alice\tapi-key\tfalse\tk1\ted25519\t10/s\trevoked"),
            "{listed}"
        );
        // A new key under the revoked name.
        assert!(create(&path, &key, new("alice", false)).unwrap().is_some());
    }

    #[test]
    fn an_edited_file_or_another_kek_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_bytes([3; 32]);
        let (path, key) = path_and_key(dir.path(), &kek);
        create(&path, &key, new("alice", false)).unwrap();
        let e = AccessFile::open(dir.path(), &Kek::from_bytes([4; 32]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("access.json") && e.contains("MAC"), "{e}");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"admin\": false", "\"admin\": true")).unwrap();
        let e = AccessFile::open(dir.path(), &kek).unwrap_err().to_string();
        assert!(e.contains("MAC"), "{e}");
    }

    #[test]
    fn arguments_parse() {
        assert_eq!(rate_arg("100/s").unwrap(), 100);
        assert_eq!(rate_arg("7").unwrap(), 7);
        assert!(rate_arg("0/s").is_err() && rate_arg("fast").is_err());
        assert_eq!(
            schemes_arg(&["taproot".into(), "ecdsa".into()]).unwrap(),
            ["bip340", "ecdsa_secp256k1"]
        );
        assert!(schemes_arg(&["rsa".into()]).is_err());
        assert_eq!(list_arg(&["*".into()]), ["*"]);
    }
}
