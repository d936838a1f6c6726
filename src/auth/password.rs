//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//!
//! Hashes run on a small pool of dedicated threads, `hash_concurrency` of them (the core
//! count by default), so a burst of logins cannot take every core from the rest of the
//! service, and a request waits its turn for at most [`QUEUE_TIMEOUT`]. Each thread keeps
//! its 19 MiB argon2 work area between hashes: allocating and faulting in a fresh one per
//! login cost about 5 % of login throughput, and handing each hash to a fresh blocking-pool
//! thread left cores idle. Memory is bounded: `hash_concurrency` × 19 MiB while logins come
//! in; a thread gives its work area back after a second without one.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq as _;
use tokio::sync::{oneshot, Semaphore};

use crate::auth::secrets;
use crate::error::ApiError;
use crate::metrics::{HashMetrics, HashOperation};
use crate::worker_cpus::WorkerCpus;

/// Puts the calling thread in Linux's `SCHED_IDLE` class: a hash is tens of milliseconds of
/// CPU that no one waits on to the millisecond, while every other request is a fraction of a
/// millisecond. A request's thread that wakes up preempts a hash at once (with nice 10 it
/// waited for the hash's time slice, and `GET /v1/me`'s p99 tripled while clients logged in);
/// on an idle machine hashing runs as fast as before, and under a saturating load it still
/// gets a small share of the cores. Linux keeps the policy per thread. Hashes never let a core
/// go idle, though, which is when Linux spreads waiting threads over the cores: see
/// `worker_cpus` for how the HTTP workers keep a core each.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` only; `0` names the calling thread.
        let done = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if done != 0 {
            log::warn!(
                "cannot move a hashing thread to SCHED_IDLE: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// How long a request waits for a free hashing thread before it is told to come back.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Hashes handed to the threads at once, per thread: one running and one queued behind it,
/// so that a thread that finishes starts the next hash at once. With only the running one,
/// the next waiting request was handed over only once its worker thread had woken up, and
/// the cores sat idle for that moment after every hash (about 3 % of login throughput under
/// a login storm). A queued hash waits at most one hash's time more.
const QUEUED_PER_THREAD: usize = 2;

fn params() -> Result<Params, ApiError> {
    Params::new(19 * 1024, 2, 1, None).map_err(|e| ApiError::internal(e.to_string()))
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// How long a hashing thread keeps its work area once no hash is waiting.
const KEEP_WORK_AREA: Duration = Duration::from_secs(1);

thread_local! {
    /// The argon2 work area of a hashing thread, reused from one verification to the next.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Checks `password` against a stored PHC string, with the parameters the string names (so
/// hashes made with other parameters keep verifying), in constant time.
fn verify_now(password: &str, stored: &str) -> Result<bool, ApiError> {
    let unreadable = |e: &dyn std::fmt::Display| ApiError::internal(format!("stored password hash unreadable: {e}"));
    let parsed = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unreadable(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| unreadable(&e))?,
        None => Version::default(),
    };
    let salt = parsed.salt.ok_or_else(|| unreadable(&"no salt"))?;
    let expected = parsed.hash.ok_or_else(|| unreadable(&"no hash"))?;
    let mut computed = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        area.resize(blocks, Block::default());
        hasher
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut computed, &mut area[..blocks])
            .map_err(|e| ApiError::internal(e.to_string()))
    })?;
    Ok(bool::from(expected.as_bytes().ct_eq(&computed)))
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    /// Verified against when the user does not exist or has no password, so that an unknown
    /// identifier costs the same time as a wrong password and reveals nothing.
    dummy_hash: Arc<String>,
    metrics: HashMetrics,
}

impl Passwords {
    /// Starts `concurrency` hashing threads; they end when the last `Passwords` is dropped.
    pub fn new(concurrency: usize) -> Result<Self, ApiError> {
        Self::with_metrics(concurrency, HashMetrics::default(), None)
    }

    /// Like [`Passwords::new`], counting hashes waiting and running, and timing them, in
    /// `metrics`, and giving the HTTP workers a CPU each while hashes run (`worker_cpus`).
    pub fn with_metrics(
        concurrency: usize,
        metrics: HashMetrics,
        worker_cpus: Option<Arc<WorkerCpus>>,
    ) -> Result<Self, ApiError> {
        let concurrency = concurrency.max(1);
        let dummy_hash = hash_now(&secrets::new_token())?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..concurrency {
            let queue = queue.clone();
            let worker_cpus = worker_cpus.clone();
            std::thread::Builder::new()
                .name(format!("steward-hash-{index}"))
                .spawn(move || {
                    yield_to_requests();
                    loop {
                        // The lock is held only while waiting for the next job, never while hashing.
                        let next = queue
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .recv_timeout(KEEP_WORK_AREA);
                        let job = match next {
                            Ok(job) => job,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                // Idle: the work area goes back to the system until the next
                                // burst (the threads take turns waiting, so each gets here).
                                WORK_AREA.with(|area| *area.borrow_mut() = Vec::new());
                                if let Some(cpus) = &worker_cpus {
                                    cpus.idle();
                                }
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        };
                        if let Some(cpus) = &worker_cpus {
                            cpus.hashing();
                        }
                        // A panicking hash must not take the thread with it: its caller sees the
                        // dropped reply and answers 500.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            log::error!("a password hash panicked");
                        }
                    }
                })
                .map_err(|e| ApiError::internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency * QUEUED_PER_THREAD)),
            jobs,
            dummy_hash: Arc::new(dummy_hash),
            metrics,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: HashOperation,
        job: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let waiting = self.metrics.waiting();
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.metrics.rejected();
                ApiError::unavailable("Too many logins at once; try again in a moment.")
            })?
            .map_err(ApiError::internal)?;
        let metrics = self.metrics.clone();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                drop(waiting);
                let _permit = permit;
                let result = {
                    let _hashing = metrics.hashing(operation);
                    job()
                };
                // The caller may have gone away; then nobody needs the answer.
                let _ = reply.send(result);
            }))
            .map_err(|_| ApiError::internal("the hashing threads have stopped"))?;
        answer.await.map_err(|_| ApiError::internal("a password hash failed"))?
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(HashOperation::Hash, move || hash_now(&password)).await
    }

    /// Whether `password` matches `stored`; with no stored hash, burns the same time and
    /// answers `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let dummy = self.dummy_hash.clone();
        self.run(HashOperation::Verify, move || match stored {
            Some(hash) => verify_now(&password, &hash),
            None => verify_now(&password, &dummy).map(|_| false),
        })
        .await
    }
}

/// Common passwords, refused as new ones (ASVS 6.2.4). The list and where it comes from
/// (zxcvbn's frequency list, MIT license) are in the file's header.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Whether `password` is on the list of common passwords, ignoring case. The set is built
/// once, on first use.
pub fn is_common(password: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    set.contains(password.to_lowercase().as_str())
}

/// Hashes outside a request (the `create-owner` command, the benchmark's baseline).
pub fn hash_blocking(password: &str) -> Result<String, ApiError> {
    hash_now(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier as _;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash_now("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_now("correct horse battery staple", &hash).unwrap());
        assert!(!verify_now("wrong horse battery staple", &hash).unwrap());
    }

    #[test]
    fn verification_agrees_with_the_reference_verifier() {
        // Hashes made elsewhere, with other parameters, still verify.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).unwrap(),
        )
        .hash_password(b"passphrase one")
        .unwrap()
        .to_string();
        assert!(verify_now("passphrase one", &other).unwrap());
        assert!(!verify_now("passphrase two", &other).unwrap());
        let ours = hash_now("passphrase one").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"passphrase one", &parsed).is_ok());
    }

    #[test]
    fn common_passwords_are_known_whatever_their_case() {
        assert!(is_common("password1"));
        assert!(is_common("PassWord1"));
        assert!(is_common("qwertyuiop"));
        assert!(!is_common("correct horse battery staple"));
        assert!(!is_common("# Common passwords that Steward refuses"));
    }

    #[test]
    fn an_unreadable_stored_hash_is_an_error_not_a_match() {
        assert!(verify_now("anything", "not a phc string").is_err());
    }

    #[actix_web::test]
    async fn the_pool_hashes_and_verifies_and_survives_many_jobs() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse battery staple".into()).await.unwrap();
        let checks = (0..6).map(|i| {
            let p = passwords.clone();
            let hash = hash.clone();
            async move {
                let guess = if i % 2 == 0 {
                    "correct horse battery staple"
                } else {
                    "wrong"
                };
                p.verify(guess.into(), Some(hash)).await.unwrap()
            }
        });
        let results = futures_util::future::join_all(checks).await;
        assert_eq!(results, vec![true, false, true, false, true, false]);
        assert!(!passwords.verify("x".into(), None).await.unwrap());
    }
}
