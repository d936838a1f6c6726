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
//!
//! Most commits change nothing a principal is made of (a login's bookkeeping, an audit event,
//! a notification): [`ChangeStamps::principal_epoch`] moves only when one may have. This
//! process's writer tells, just before it commits and while it holds SQLite's write lock,
//! that its transaction wrote no principal table (`db::principal_writes` watches them); the
//! next commit after that stamp is then its own. A new stamp whose commit counter (`iChange`)
//! is exactly one past such an announced stamp keeps the epoch; any other new stamp (another
//! process, a connection of the pool, two commits between two looks) moves it.

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

impl ChangeStamp {
    /// SQLite's count of committed transactions (`iChange`: bytes 8 to 11, native order).
    fn commits(&self) -> u32 {
        u32::from_ne_bytes([self.0[8], self.0[9], self.0[10], self.0[11]])
    }
}

/// What principals are made of, at one moment: while the epoch is the same, no committed
/// transaction has changed a table a principal is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrincipalEpoch(u64);

/// The last stamp [`ChangeStamps::principal_epoch`] saw, its epoch, and the stamp this
/// process's writer announced a quiet commit from.
#[derive(Debug, Default)]
struct Seen {
    stamp: Option<ChangeStamp>,
    epoch: u64,
    quiet_from: Option<ChangeStamp>,
}

impl Seen {
    /// Moves to `now`: the epoch stays only when `now` is the one commit announced quiet
    /// after the stamp last seen.
    fn advance(&mut self, now: ChangeStamp) -> PrincipalEpoch {
        if self.stamp != Some(now) {
            let quiet = matches!(
                (self.stamp, self.quiet_from),
                (Some(then), Some(from)) if then == from && now.commits() == then.commits().wrapping_add(1)
            );
            if !quiet {
                self.epoch += 1;
            }
            self.stamp = Some(now);
        }
        PrincipalEpoch(self.epoch)
    }
}

/// A read-only view of one database's WAL-index header.
pub struct ChangeStamps {
    base: *const u8,
    mapped: usize,
    /// A connection held open for as long as the view lives: while any connection has the
    /// database open, SQLite neither deletes nor truncates its `-shm` file, so the mapping
    /// stays the file every connection uses (and reading it can never fault).
    _holder: Mutex<SqliteConnection>,
    seen: Mutex<Seen>,
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
            seen: Mutex::default(),
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

impl ChangeStamps {
    /// The principal epoch now; `None` while a commit is rewriting the header.
    pub fn principal_epoch(&self) -> Option<PrincipalEpoch> {
        let now = self.current()?;
        Some(self.seen().advance(now))
    }

    /// Announces that the transaction about to commit changed rows, none in a principal
    /// table. Only for this process's writer, holding SQLite's write lock (after `BEGIN
    /// IMMEDIATE`) so that the next commit is its own, and only for a transaction that wrote
    /// something (one that did not commits nothing, and the next commit would be another's);
    /// `false` when the stamp cannot be read (nothing announced).
    pub fn announce_quiet_commit(&self) -> bool {
        let Some(now) = self.current() else {
            return false;
        };
        let mut seen = self.seen();
        seen.advance(now);
        seen.quiet_from = Some(now);
        true
    }

    /// After this process's writer committed: moves to the stamp now, and forgets the
    /// announcement, which may describe no commit at all (a transaction that changed nothing
    /// leaves the header as it was).
    pub fn committed(&self) {
        let now = self.current();
        let mut seen = self.seen();
        if let Some(now) = now {
            seen.advance(now);
        }
        seen.quiet_from = None;
    }

    /// Takes an announcement back: the commit failed, so the next commit, whoever makes it,
    /// is not the one announced. A failed commit may have released the write lock already (an
    /// I/O error rolls back at once), so a commit of another process may have been taken for
    /// the quiet one in between: the epoch moves, and what was cached since is dropped.
    pub fn withdraw_quiet_commit(&self) {
        let mut seen = self.seen();
        seen.quiet_from = None;
        seen.epoch += 1;
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(commits: u32, salt: u8) -> ChangeStamp {
        let mut bytes = [0u8; HEADER];
        bytes[8..12].copy_from_slice(&commits.to_ne_bytes());
        bytes[12] = 1;
        bytes[32] = salt;
        ChangeStamp(bytes)
    }

    #[test]
    fn only_the_announced_next_commit_keeps_the_epoch() {
        let mut seen = Seen::default();
        let first = seen.advance(stamp(7, 0));
        assert_eq!(seen.advance(stamp(7, 0)), first, "no commit, same epoch");

        seen.quiet_from = Some(stamp(7, 0));
        assert_eq!(seen.advance(stamp(8, 0)), first, "the announced commit is quiet");

        assert_ne!(
            seen.advance(stamp(9, 0)),
            first,
            "an unannounced commit moves the epoch"
        );
    }

    #[test]
    fn two_commits_after_an_announcement_move_the_epoch() {
        let mut seen = Seen::default();
        let first = seen.advance(stamp(7, 0));
        seen.quiet_from = Some(stamp(7, 0));
        // The quiet commit and another process's, seen together.
        assert_ne!(seen.advance(stamp(9, 0)), first);
    }

    #[test]
    fn an_announcement_from_another_stamp_is_ignored() {
        let mut seen = Seen::default();
        let first = seen.advance(stamp(7, 0));
        // Announced from a header this reader never saw (a WAL restart changed the salts).
        seen.quiet_from = Some(stamp(7, 1));
        assert_ne!(seen.advance(stamp(8, 1)), first);
    }

    #[test]
    fn the_first_stamp_seen_starts_an_epoch() {
        let mut seen = Seen {
            quiet_from: Some(stamp(7, 0)),
            ..Seen::default()
        };
        let first = seen.advance(stamp(8, 0));
        assert_ne!(first, PrincipalEpoch(0));
    }
}
