//! `tessera kek rotate`: moves a stopped server's data directory from one key-encryption key
//! to another. Everything is checked under the old KEK first (every key record's MAC and
//! sealed material, the audit chain, the access file); then the access file is staged under
//! the new KEK, the database is re-keyed in one transaction (every record re-sealed and
//! re-authenticated, every audit event re-chained), and the staged access file is renamed into
//! place. A crash before the transaction commits leaves the old KEK in force; after it, the
//! staged file `access.json.next` is what remains to rename (the server says so).

use std::path::Path;

use service_core::audit::ChainKey;
use service_core::ports::KeyRecord;
use service_core::{Kek, Sealer, StoreError};
use store_redb::RedbStore;

use crate::error::Error;
use crate::{access, kek, server};

/// The staged access file of a rotation in progress.
pub fn staged(access_file: &Path) -> std::path::PathBuf {
    access_file.with_extension("json.next")
}

fn same(a: &Kek, b: &Kek) -> bool {
    *a.subkey("rotation-check") == *b.subkey("rotation-check")
}

/// Re-keys `data_dir` from the KEK of `old_env`/`old_file` (or `DATA_DIR/kek`) to the one in
/// `new_file`, generating `new_file` (mode 0600) when it does not exist.
pub fn rotate(
    data_dir: &Path,
    old_env: Option<&str>,
    old_file: Option<&Path>,
    new_file: &Path,
) -> Result<String, Error> {
    let (old, old_source) = kek::resolve_existing(old_env, old_file, data_dir)?;
    let (new, generated) = kek::read_or_generate(new_file)?;
    if same(&old, &new) {
        return Err(Error::usage(
            "--new-kek-file",
            format!("{} holds the KEK in use now", new_file.display()),
        ));
    }
    if !data_dir.join(store_redb::FILE_NAME).exists() {
        return Err(Error::usage(
            "--data-dir",
            format!("{} holds no database", data_dir.display()),
        ));
    }
    let store = RedbStore::open(data_dir, ChainKey::of(&old))?;
    server::verify_records(&store, &old, data_dir)?;
    server::verify_audit(&store, data_dir)?;
    let (access_path, old_access) = access::path_and_key(data_dir, &old);
    let clients = access::read(&access_path, &old_access)?;
    let has_access_file = access_path.exists();
    if has_access_file {
        let (_, new_access) = access::path_and_key(data_dir, &new);
        access::write(&staged(&access_path), &new_access, clients)?;
    }
    let reseal = |r: KeyRecord| -> Result<KeyRecord, StoreError> {
        let engine = |e: service_core::Error| StoreError::Engine(Box::new(e));
        let plain = old.open(&r.key_id, &r.sealed).map_err(engine)?;
        let sealed = new.seal(&r.key_id, &plain).map_err(engine)?;
        Ok(KeyRecord { sealed, ..r }.authenticate(&new))
    };
    let (keys, events) = store
        .rekey(&reseal, &ChainKey::of(&new))
        .map_err(|e| Error::App(e.into()))?;
    drop(store);
    if has_access_file {
        std::fs::rename(staged(&access_path), &access_path).map_err(|e| Error::Io {
            context: format!("renaming {} into place", staged(&access_path).display()),
            source: e,
        })?;
    }
    Ok(format!(
        "re-keyed {}: {keys} key records re-sealed, {events} audit events re-chained{}; the KEK from {old_source} no longer opens it. {}start the server with --kek-file {}",
        data_dir.display(),
        if has_access_file {
            ", the access file re-authenticated"
        } else {
            ""
        },
        if generated {
            format!("The new KEK was generated in {}; ", new_file.display())
        } else {
            String::new()
        },
        new_file.display()
    ))
}
