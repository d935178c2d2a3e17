//! The database file, with the space just ahead of redb's writes allocated in advance.
//!
//! redb grows its file with `ftruncate`, which leaves a hole: the file system allocates blocks
//! on the first write into them, and the next `fdatasync` must then also write its allocation
//! metadata (the inode, its extent tree) before it returns. A group commit of Sign requests is a
//! handful of page writes and one sync, so that metadata was a large share of its cost, paid on
//! almost every commit while the audit log grows. Here a write past the space already written
//! first fills the next [`AHEAD`] bytes with zeros: the file system allocates them once, the
//! next sync writes that metadata once, and the commits after it overwrite allocated blocks and
//! sync only their data. Write-ahead logs are zero-filled ahead of use for the same reason
//! (PostgreSQL's WAL segments). The file never holds more than [`AHEAD`] bytes of these zeros
//! beyond redb's own writes, and its length stays what redb sets.
//!
//! A fill changes what is allocated, never what the file reads as: it only covers space that
//! the file grew by since it was opened and that nothing has written since, which reads as
//! zeros already. A crash in the middle of one leaves the database as it was.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use redb::StorageBackend;
use redb::backends::FileBackend;

/// How far past the written space one fill reaches: one file-system allocation (and one sync
/// of its metadata) per this many bytes of database growth.
pub(crate) const AHEAD: u64 = 16 << 20;

/// Zeros written per call while filling.
const ZERO_CHUNK: usize = 1 << 20;

/// redb's own file backend (which locks the file against a second process), filling the space
/// ahead of redb's writes with zeros. Generic over the backend only so that tests can make
/// its writes fail.
#[derive(Debug)]
pub(crate) struct PreallocatedFile<B = FileBackend> {
    inner: B,
    written: Mutex<Written>,
}

/// Where the file has been written. A fill never covers a written byte.
#[derive(Debug)]
struct Written {
    /// Everything before this offset has been written (by redb or a fill).
    frontier: u64,
    /// Ranges past the frontier that redb wrote (`start → end`), disjoint and not adjacent:
    /// after growing its file redb writes a page near the new end, far from the rest.
    islands: BTreeMap<u64, u64>,
}

impl PreallocatedFile {
    /// Opens (or creates) the file at `path` as redb's `Builder::create` does, and locks it.
    /// Its present length counts as written.
    pub(crate) fn open(path: &Path) -> Result<Self, redb::DatabaseError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Self::over(FileBackend::new(file)?)?)
    }
}

impl<B: StorageBackend> PreallocatedFile<B> {
    /// Wraps `inner`; its present length counts as written.
    fn over(inner: B) -> Result<Self, io::Error> {
        Ok(Self {
            written: Mutex::new(Written {
                frontier: inner.len()?,
                islands: BTreeMap::new(),
            }),
            inner,
        })
    }

    /// Writes zeros over `from..to`, a range nothing has been written to.
    fn zero(&self, from: u64, to: u64) -> Result<(), io::Error> {
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = from;
        while at < to {
            let n = usize::try_from(to - at).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
            self.inner.write(at, &zeros[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// Moves the frontier to `target` or past it, writing zeros over the unwritten space on
    /// the way and stepping over the islands.
    fn fill(&self, w: &mut Written, target: u64) -> Result<(), io::Error> {
        while w.frontier < target {
            match w.islands.first_key_value().map(|(&s, &e)| (s, e)) {
                Some((start, end)) if start < target => {
                    self.zero(w.frontier, start)?;
                    w.islands.remove(&start);
                    w.frontier = end;
                }
                _ => {
                    self.zero(w.frontier, target)?;
                    w.frontier = target;
                }
            }
        }
        Ok(())
    }
}

impl Written {
    /// Records `start..end`, which may begin before the frontier, as written by redb.
    fn island(&mut self, mut start: u64, mut end: u64) {
        let touching: Vec<(u64, u64)> = self
            .islands
            .range(..=end)
            .filter(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.islands.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.islands.insert(start, end);
    }
}

impl<B: StorageBackend> StorageBackend for PreallocatedFile<B> {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut w = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        self.inner.set_len(len)?;
        w.frontier = w.frontier.min(len);
        drop(w.islands.split_off(&len));
        if let Some(mut last) = w.islands.last_entry() {
            let end = last.get_mut();
            *end = (*end).min(len);
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let end = offset + data.len() as u64;
        let mut w = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if end > w.frontier {
            // The fill only saves work later: if it fails (a nearly full disk), the write goes
            // ahead as redb's own backend would make it, recorded so that no fill covers it.
            let filled = offset.saturating_sub(w.frontier) <= AHEAD
                && self
                    .inner
                    .len()
                    .and_then(|len| self.fill(&mut w, (end + AHEAD).min(len).max(end)))
                    .is_ok();
            if !filled {
                w.island(offset, end);
            }
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const MIB: u64 = 1 << 20;

    /// A new file in a new directory, grown to `len` by `set_len` (a hole).
    fn grown(len: u64) -> (tempfile::TempDir, std::path::PathBuf, PreallocatedFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let f = PreallocatedFile::open(&path).unwrap();
        f.set_len(len).unwrap();
        (dir, path, f)
    }

    fn allocated(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    fn read(f: &impl StorageBackend, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0xee; len];
        f.read(offset, &mut out).unwrap();
        out
    }

    /// A file grown by `set_len` stays a hole until written; the first write past the written
    /// space allocates the next `AHEAD` bytes as zeros, and the length stays what was set.
    #[test]
    fn a_write_past_the_written_space_allocates_the_space_ahead() {
        let (_dir, path, f) = grown(4 * AHEAD);
        assert!(allocated(&path) < MIB, "growth itself allocates nothing");
        f.write(0, &[7; 4096]).unwrap();
        assert!(allocated(&path) >= 4096 + AHEAD, "{}", allocated(&path));
        assert!(
            allocated(&path) < 4096 + AHEAD + MIB,
            "{}",
            allocated(&path)
        );
        assert_eq!(f.len().unwrap(), 4 * AHEAD);
        assert_eq!(read(&f, 0, 4096), vec![7; 4096]);
        assert_eq!(read(&f, 4096, 8192), vec![0; 8192]);
        // A write inside the filled space, up to its very end, allocates nothing more.
        let before = allocated(&path);
        f.write(MIB, &[8; 4096]).unwrap();
        f.write(AHEAD, &[9; 4096]).unwrap();
        assert_eq!(allocated(&path), before);
        assert_eq!(read(&f, MIB, 4096), vec![8; 4096]);
        // A write starting `AHEAD` past the filled space still fills up to it and beyond.
        f.write(4096 + 2 * AHEAD, &[10; 4096]).unwrap();
        assert!(allocated(&path) >= 8192 + 3 * AHEAD, "{}", allocated(&path));
    }

    /// A write far past the written space (as redb writes near the end of a grown file) is
    /// not preceded by a fill; later fills step over it, and no fill covers a written byte.
    #[test]
    fn fills_step_over_far_writes_and_never_cover_written_bytes() {
        let (_dir, path, f) = grown(8 * AHEAD);
        f.write(0, &[1; 4096]).unwrap();
        f.write(3 * AHEAD, &[2; 4096]).unwrap();
        f.write(3 * AHEAD - 8192, &[3; 4096]).unwrap();
        f.write(3 * AHEAD + 8192, &[4; 4096]).unwrap();
        f.write(5 * AHEAD, &[5; 4096]).unwrap();
        assert!(allocated(&path) < 2 * AHEAD, "{}", allocated(&path));
        // Writes that follow the written space fill up to and across the first three.
        f.write(4096 + AHEAD, &[6; 4096]).unwrap();
        f.write(2 * AHEAD + 8192, &[7; 4096]).unwrap();
        assert!(
            allocated(&path) >= 3 * AHEAD + 12288,
            "{}",
            allocated(&path)
        );
        assert!(allocated(&path) < 4 * AHEAD, "{}", allocated(&path));
        for (at, byte) in [
            (0, 1),
            (3 * AHEAD - 8192, 3),
            (3 * AHEAD, 2),
            (3 * AHEAD + 8192, 4),
            (5 * AHEAD, 5),
            (4096 + AHEAD, 6),
            (2 * AHEAD + 8192, 7),
        ] {
            assert_eq!(read(&f, at, 4096), vec![byte; 4096], "at {at}");
        }
        for at in [
            3 * AHEAD - 4096,
            3 * AHEAD + 4096,
            3 * AHEAD + 12288,
            5 * AHEAD + 4096,
        ] {
            assert_eq!(read(&f, at, 4096), vec![0; 4096], "at {at}");
        }
    }

    /// A far write that a shrink keeps is still stepped over; one that a shrink cuts off is
    /// gone, and its space is filled like any other.
    #[test]
    fn a_shrink_keeps_the_far_writes_below_the_new_end() {
        let (_dir, path, f) = grown(8 * AHEAD);
        f.write(0, &[1; 4096]).unwrap();
        f.write(3 * AHEAD, &[2; 8192]).unwrap();
        f.write(6 * AHEAD, &[3; 4096]).unwrap();
        f.set_len(3 * AHEAD + 4096).unwrap();
        f.set_len(8 * AHEAD).unwrap();
        f.write(4096 + AHEAD, &[4; 4096]).unwrap();
        f.write(2 * AHEAD + 8192, &[5; 4096]).unwrap();
        assert_eq!(read(&f, 3 * AHEAD, 4096), vec![2; 4096]);
        assert_eq!(read(&f, 3 * AHEAD + 4096, 4096), vec![0; 4096]);
        f.write(3 * AHEAD + 8192 + AHEAD, &[6; 4096]).unwrap();
        f.write(5 * AHEAD, &[7; 4096]).unwrap();
        assert!(allocated(&path) >= 5 * AHEAD, "{}", allocated(&path));
        assert_eq!(read(&f, 6 * AHEAD, 4096), vec![0; 4096]);
        assert_eq!(read(&f, 5 * AHEAD, 4096), vec![7; 4096]);
        assert_eq!(read(&f, 3 * AHEAD, 4096), vec![2; 4096]);
    }

    /// A backend in memory whose writes of a MiB or more fail while `full` is set, as a
    /// nearly full disk fails a fill but not a page write.
    #[derive(Debug)]
    struct NearlyFull {
        inner: redb::backends::InMemoryBackend,
        full: std::sync::atomic::AtomicBool,
    }

    impl StorageBackend for NearlyFull {
        fn len(&self) -> Result<u64, io::Error> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), io::Error> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> Result<(), io::Error> {
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
            if data.len() >= 1 << 20 && self.full.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.inner.write(offset, data)
        }
    }

    /// A fill that fails does not fail redb's write, and no later fill covers what that
    /// write wrote.
    #[test]
    fn a_failed_fill_lets_the_write_through_and_keeps_it() {
        let f = PreallocatedFile::over(NearlyFull {
            inner: redb::backends::InMemoryBackend::new(),
            full: true.into(),
        })
        .unwrap();
        f.set_len(4 * AHEAD).unwrap();
        f.write(8192, &[1; 4096]).unwrap();
        f.inner
            .full
            .store(false, std::sync::atomic::Ordering::Relaxed);
        f.write(0, &[2; 4096]).unwrap();
        f.write(16384, &[3; 4096]).unwrap();
        assert_eq!(read(&f, 0, 4096), vec![2; 4096]);
        assert_eq!(read(&f, 8192, 4096), vec![1; 4096]);
        assert_eq!(read(&f, 16384, 4096), vec![3; 4096]);
    }

    /// After the file shrinks and grows again, the space past the new end reads as zeros and a
    /// write there is filled ahead as on a fresh file.
    #[test]
    fn a_shrunk_file_fills_from_its_new_end() {
        let (_dir, path, f) = grown(4 * AHEAD);
        f.write(0, &[9; 8192]).unwrap();
        f.set_len(4096).unwrap();
        f.set_len(4 * AHEAD).unwrap();
        assert!(allocated(&path) < MIB, "{}", allocated(&path));
        f.write(8192, &[6; 4096]).unwrap();
        assert!(allocated(&path) >= AHEAD, "{}", allocated(&path));
        assert_eq!(read(&f, 0, 4096), vec![9; 4096]);
        assert_eq!(read(&f, 4096, 4096), vec![0; 4096]);
        assert_eq!(read(&f, 8192, 4096), vec![6; 4096]);
    }
}
