//! `tessera audit export` and `tessera audit verify-export`: the audit log's retention. An
//! export writes the stored chain (verified first) to a JSON Lines file that anyone holding
//! the KEK can verify later; `--prune` then deletes the exported events from the database in
//! one transaction, leaving an authenticated checkpoint so the kept chain still verifies and
//! new events chain onto it.
//!
//! File format: a header line `{"tessera_audit_export":1,"checkpoint":…}` (the checkpoint the
//! exported chain starts from, `null` for the genesis), then one line per event
//! `{"seq":N,"envelope":{"prev":…,"hash":…,"event":…}}` in sequence order.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use service_core::audit::{ChainKey, Checkpoint, Envelope, verify_chain};
use service_core::{AuditLog, Kek, StoreError};

use crate::error::Error;

/// Events read from the store per step of an export.
const PAGE: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Header {
    tessera_audit_export: u32,
    checkpoint: Option<Checkpoint>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    envelope: Envelope,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

fn corrupt(file: &Path, line: usize, e: serde_json::Error) -> Error {
    Error::Audit {
        file: file.to_owned(),
        source: StoreError::Corrupt {
            what: format!("line {line}"),
            source: Box::new(e),
        },
    }
}

/// What an export did.
#[derive(Debug, PartialEq, Eq)]
pub struct Exported {
    /// Events written.
    pub events: u64,
    /// The first and last sequence numbers written.
    pub range: Option<(u64, u64)>,
    /// Events deleted from the database afterwards.
    pub pruned: u64,
}

/// Writes every stored event of `store` (after verifying the chain) to `out`, which must not
/// exist; with `prune`, deletes them from the store once the file is durable.
pub fn export(
    store: &dyn AuditLog,
    db_file: &Path,
    out: &Path,
    prune: bool,
) -> Result<Exported, Error> {
    store.verify_audit_chain().map_err(|source| Error::Audit {
        file: db_file.to_owned(),
        source,
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(io(format!(
            "creating {} (an export never overwrites a file)",
            out.display()
        )))?;
    let mut w = std::io::BufWriter::new(file);
    let audit = |source| Error::Audit {
        file: db_file.to_owned(),
        source,
    };
    let header = Header {
        tessera_audit_export: 1,
        checkpoint: store.audit_checkpoint().map_err(audit)?,
    };
    let write = io(format!("writing {}", out.display()));
    let mut text = serde_json::to_string(&header).map_err(|e| corrupt(out, 1, e))?;
    text.push('\n');
    w.write_all(text.as_bytes()).map_err(write)?;
    let (mut events, mut range, mut after) = (0u64, None, None);
    loop {
        let page = store.envelopes(after, PAGE).map_err(audit)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(*last);
        for (seq, envelope) in page {
            range = Some((range.map_or(seq, |(first, _)| first), seq));
            let mut text = serde_json::to_string(&Line { seq, envelope })
                .map_err(|e| corrupt(out, events as usize + 2, e))?;
            text.push('\n');
            w.write_all(text.as_bytes())
                .map_err(io(format!("writing {}", out.display())))?;
            events += 1;
        }
    }
    let file = w.into_inner().map_err(|e| Error::Io {
        context: format!("writing {}", out.display()),
        source: e.into_error(),
    })?;
    file.sync_all()
        .map_err(io(format!("syncing {}", out.display())))?;
    let pruned = match (prune, range) {
        (true, Some((_, through))) => store.prune_audit(through).map_err(audit)?,
        _ => 0,
    };
    Ok(Exported {
        events,
        range,
        pruned,
    })
}

/// Verifies an export file under `kek`: its chain from its checkpoint (or the genesis) to
/// its last event; returns the number of events.
pub fn verify_export(kek: &Kek, file: &Path) -> Result<u64, Error> {
    let f = std::fs::File::open(file).map_err(io(format!("opening {}", file.display())))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let first = lines
        .next()
        .transpose()
        .map_err(io(format!("reading {}", file.display())))?
        .unwrap_or_default();
    let header: Header = serde_json::from_str(&first).map_err(|e| corrupt(file, 1, e))?;
    if header.tessera_audit_export != 1 {
        return Err(Error::usage(
            "FILE",
            format!("{} is not a tessera audit export", file.display()),
        ));
    }
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let line = line.map_err(io(format!("reading {}", file.display())))?;
        let l: Line = serde_json::from_str(&line).map_err(|e| corrupt(file, i + 2, e))?;
        entries.push(Ok((l.seq, l.envelope)));
    }
    verify_chain(&ChainKey::of(kek), header.checkpoint.as_ref(), entries).map_err(|source| {
        Error::Audit {
            file: file.to_owned(),
            source,
        }
    })
}
