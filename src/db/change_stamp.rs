//! A stamp of a SQLite database's committed state, read without a query: the header of its
//! WAL index (the `-shm` file every connection to a WAL-mode database shares, in this process
//! and in any other). SQLite rewrites that header on every commit: its frame count and
//! checksums change with each committed transaction, and its salts with each restart of the
//! WAL, so two equal stamps mean that no transaction committed in between, whoever wrote it.
//! The layout is SQLite's documented WAL-index format (<https://www.sqlite.org/walformat.html>):
//! two copies of a 48-byte header at the start of the file, written second copy first.
//!
//! What this enables: caching what was read from the database (see
//! `auth::principal_cache`) and knowing, at the cost of two memory reads, that it is still
//! exactly what the database holds.

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Mutex;

/// Bytes of one copy of the WAL-index header.
const HEADER: usize = 48;

/// The committed state of the database at one moment; equal stamps, equal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeStamp([u8; HEADER]);

/// A read-only view of one database's WAL-index header.
pub struct ChangeStamps {
    base: *const u8,
    mapped: usize,
    /// A connection held open for as long as the view lives: while any connection has the
    /// database open, SQLite neither deletes nor truncates its `-shm` file, so the mapping
    /// stays the file every connection uses (and reading it can never fault).
    _holder: Mutex<SqliteConnection>,
}

// SAFETY: `base` points into a read-only shared mapping owned by this value and unmapped only
// in `drop`; reading it from several threads at once is what the mapping is for (SQLite's
// own readers do the same).
unsafe impl Send for ChangeStamps {}
unsafe impl Sync for ChangeStamps {}

impl ChangeStamps {
    /// Opens the view for the database at `path`, which must already be in WAL mode (the
    /// migrations put it there). An error when it cannot be had (another journal mode, an
    /// in-memory database, a file that cannot be mapped): the caller then caches nothing.
    pub fn open(path: &str) -> Result<Self, String> {
        let mut holder = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
        // A read opens the WAL index, which a bare connection has not touched yet.
        holder
            .batch_execute("SELECT count(*) FROM sqlite_master;")
            .map_err(|e| e.to_string())?;
        let shm = format!("{path}-shm");
        let file = File::open(&shm).map_err(|e| format!("{shm}: {e}"))?;
        let len = file.metadata().map_err(|e| format!("{shm}: {e}"))?.len();
        if len < 2 * HEADER as u64 {
            return Err(format!("{shm} holds no WAL index"));
        }
        let mapped = 2 * HEADER;
        // SAFETY: a fresh read-only shared mapping of the first bytes of a file at least that
        // long; the file stays that long while `holder` is open (see the field).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("cannot map {shm}: {}", std::io::Error::last_os_error()));
        }
        Ok(Self {
            base: base as *const u8,
            mapped,
            _holder: Mutex::new(holder),
        })
    }

    /// The current stamp; `None` while a commit is rewriting the header (its two copies
    /// differ), when the caller must treat anything cached as stale.
    pub fn current(&self) -> Option<ChangeStamp> {
        // The first copy, then the second, as SQLite's readers do: a writer writes them in the
        // other order, so copies that match were not torn by a commit in between.
        let read = |offset: usize| {
            let mut copy = [0u8; HEADER];
            for (i, byte) in copy.iter_mut().enumerate() {
                // SAFETY: both copies lie inside the mapping; volatile, since another process
                // may change them at any time.
                *byte = unsafe { std::ptr::read_volatile(self.base.add(offset + i)) };
            }
            copy
        };
        let first = read(0);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let second = read(HEADER);
        // An uninitialised index (its `isInit` byte is zero) describes nothing yet.
        (first == second && first[12] != 0).then_some(ChangeStamp(first))
    }
}

impl Drop for ChangeStamps {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.mapped);
        }
    }
}
