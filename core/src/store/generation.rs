//! A store-wide change counter shared by every process on one computer: one `u64` in a small file
//! beside the SQLite store (`<store>.gen`), mapped into memory. Every write of tokens or accounts
//! adds one after it committed; a client's in-memory copy of an access token is served only while
//! the counter is what it was when the copy was read from the store. Reading it is one atomic load
//! (nanoseconds, no system call), so the token path needs no SQLite round trip and still sees
//! another process's refresh, disconnect or re-authorization at once.
//!
//! The file holds no data: deleting it while no process has the store open is harmless (it is
//! created again). Like SQLite's WAL mode, which the store uses, it relies on memory shared by
//! processes of one computer: processes on several computers sharing a store file over a network
//! share are not supported by either.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The counter file's size: one cache line, of which the first 8 bytes are the counter.
const LEN: u64 = 64;

/// The mapped counter.
pub(crate) struct Generation {
    map: memmap2::MmapRaw,
}

impl Generation {
    /// The counter file of the store at `store`.
    pub(crate) fn path_for(store: &Path) -> PathBuf {
        let mut p = store.as_os_str().to_owned();
        p.push(".gen");
        PathBuf::from(p)
    }

    /// Map the counter file at `path`, creating it (with `access`, as the store file) when
    /// missing.
    pub(crate) fn open(path: &Path, access: crate::platform::FileAccess) -> Result<Generation> {
        let fail = |e: std::io::Error| {
            Error::store(format!(
                "cannot map the store's change counter {}: {e}",
                path.display()
            ))
        };
        crate::platform::create_if_missing(path, access).map_err(fail)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(fail)?;
        // Growing a file never changes bytes already there; two processes doing it at once
        // both leave it at LEN with the counter intact.
        if file.metadata().map_err(fail)?.len() < LEN {
            file.set_len(LEN).map_err(fail)?;
        }
        let map = memmap2::MmapOptions::new()
            .len(LEN as usize)
            .map_raw(&file)
            .map_err(fail)?;
        Ok(Generation { map })
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the map is LEN (64) bytes, page-aligned (so 8-aligned), readable and writable,
        // shared with other processes, and lives as long as `self`; it is only ever accessed
        // through this atomic, here and in every other process.
        unsafe { &*(self.map.as_mut_ptr() as *const AtomicU64) }
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.counter().load(Ordering::Acquire)
    }

    /// Count one change (after it committed).
    pub(crate) fn bump(&self) {
        self.counter().fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_maps_of_one_file_see_each_others_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = Generation::path_for(&dir.path().join("s.db"));
        let a = Generation::open(&path, crate::platform::FileAccess::OwnerOnly).unwrap();
        let b = Generation::open(&path, crate::platform::FileAccess::OwnerOnly).unwrap();
        let start = a.get();
        b.bump();
        assert_eq!(a.get(), start + 1);
        a.bump();
        assert_eq!(b.get(), start + 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), LEN);
    }
}
