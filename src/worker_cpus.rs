//! Gives each HTTP worker thread a CPU of its own while passwords are being hashed, when the
//! process has one CPU per worker.
//!
//! Why: during a login storm the hashing threads (`SCHED_IDLE`, see `auth::password`) keep
//! every core busy, so no core ever goes idle. Linux pulls a waiting thread over to another
//! core mostly at the moment that core goes idle; without that moment, both workers could
//! stay stacked on one core for many milliseconds, taking turns at the scheduler tick (4 ms
//! at `HZ=250`), while a hash ran alone on the other core. Every request on the waiting
//! worker waited that turn out. With one worker per core, a worker that wakes up preempts
//! whatever hash shares its core at once.
//!
//! Measured on the benchmark's 2-core machine: `GET /v1/me`'s p99 while 8 clients log in was
//! 2.96–3.32× its p99 alone with the workers free to move, 1.23–1.35× pinned. Pinned for good,
//! though, `GET /v1/me` on PostgreSQL (whose backends share the cores and do most of the work)
//! had a p99 of 6.8–7.3 ms against 4.9–5.2 ms free. So the workers are pinned when a hash
//! starts and let go once no hash has started for [`RELEASE_AFTER`].
//!
//! Pinning is safe only when the CPUs are the process's own: with `auto` (the default) it
//! happens only when the process may run on exactly as many CPUs as there are workers (a
//! cpuset, `taskset`, or a machine of that size). A container limited by a CPU quota on a
//! larger machine, or more workers than CPUs, is left to the scheduler.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use affinity::{CpuSet, Thread};

/// How long the workers stay pinned after the last hash started.
pub const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The `STEWARD_PIN_WORKERS` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerPinning {
    /// Pin while hashing, when the process may run on exactly one CPU per worker.
    Auto,
    /// Never pin.
    Off,
}

/// The process's CPUs, one per worker, and the worker threads that take them.
#[derive(Debug)]
pub struct WorkerCpus {
    /// The CPUs the process may run on, in order; worker slot `i` is pinned to `cpus[i]`.
    cpus: Vec<usize>,
    /// All of them: where a worker goes back when it is let go.
    all: CpuSet,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    workers: Vec<Worker>,
    /// While the workers are pinned: when the last hash started. `None`: they are free.
    pinned: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Worker {
    tid: Thread,
    slot: usize,
}

thread_local! {
    /// This thread's registration; dropped (and the worker forgotten) when the thread ends,
    /// so a worker that actix-web restarts after a panic takes the slot that was freed.
    static REGISTERED: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

struct Registration {
    cpus: Arc<WorkerCpus>,
    tid: Thread,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cpus.state().workers.retain(|w| w.tid != self.tid);
    }
}

impl WorkerCpus {
    /// The plan for `workers` workers in this process, or `None` when they are left to move.
    pub fn plan(setting: WorkerPinning, workers: usize) -> Option<Arc<Self>> {
        if setting == WorkerPinning::Off {
            return None;
        }
        let (all, available) = affinity::of_process()?;
        let cpus = Self::choose(available, workers)?;
        log::info!("while passwords are hashed, each of the {workers} HTTP workers gets a CPU of its own");
        Some(Arc::new(Self {
            cpus,
            all,
            state: Mutex::new(State::default()),
        }))
    }

    /// The CPUs to pin to: all of them, when there is exactly one per worker (and more than
    /// one worker: a single worker has nothing to be stacked with).
    fn choose(available: Vec<usize>, workers: usize) -> Option<Vec<usize>> {
        (workers > 1 && available.len() == workers).then_some(available)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the calling thread as a worker, on the CPU with the fewest workers; once per
    /// thread. Pinned at once if hashes are running.
    pub fn register_this_thread(self: &Arc<Self>) {
        REGISTERED.with(|registered| {
            let mut registered = registered.borrow_mut();
            if registered.is_some() {
                return;
            }
            let tid = affinity::this_thread();
            let mut state = self.state();
            let slot = least_used_slot(&state.workers, self.cpus.len());
            let worker = Worker { tid, slot };
            state.workers.push(worker);
            if state.pinned.is_some() {
                self.pin(worker);
            }
            *registered = Some(Registration {
                cpus: self.clone(),
                tid,
            });
        });
    }

    /// A hash is starting: the workers get their own CPUs, if they do not have them yet.
    pub fn hashing(&self) {
        let mut state = self.state();
        if state.pinned.is_none() {
            for worker in &state.workers {
                self.pin(*worker);
            }
        }
        state.pinned = Some(Instant::now());
    }

    /// A hashing thread found nothing to do: once no hash has started for [`RELEASE_AFTER`],
    /// the workers may run anywhere again.
    pub fn idle(&self) {
        let mut state = self.state();
        if state.pinned.is_some_and(|last| last.elapsed() >= RELEASE_AFTER) {
            for worker in &state.workers {
                set(worker.tid, &self.all);
            }
            state.pinned = None;
        }
    }

    fn pin(&self, worker: Worker) {
        if let Some(one) = self.cpus.get(worker.slot).and_then(|cpu| affinity::only(*cpu)) {
            set(worker.tid, &one);
        }
    }
}

fn set(tid: Thread, cpus: &CpuSet) {
    if let Err(e) = affinity::set(tid, cpus) {
        log::warn!("cannot set the CPUs of an HTTP worker thread: {e}");
    }
}

/// Reading and setting threads' CPUs: Linux's `sched_*affinity`; elsewhere nothing is pinned.
#[cfg(target_os = "linux")]
mod affinity {
    pub use nix::sched::CpuSet;
    use nix::sched::{sched_getaffinity, sched_setaffinity};
    use nix::unistd::{gettid, Pid};

    pub type Thread = Pid;

    pub fn this_thread() -> Thread {
        gettid()
    }

    /// The process's CPU set, and the CPUs in it in order.
    pub fn of_process() -> Option<(CpuSet, Vec<usize>)> {
        let all = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let cpus = (0..CpuSet::count())
            .filter(|&cpu| all.is_set(cpu).unwrap_or(false))
            .collect();
        Some((all, cpus))
    }

    pub fn only(cpu: usize) -> Option<CpuSet> {
        let mut one = CpuSet::new();
        one.set(cpu).ok()?;
        Some(one)
    }

    pub fn set(thread: Thread, cpus: &CpuSet) -> nix::Result<()> {
        sched_setaffinity(thread, cpus)
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub type CpuSet = ();
    pub type Thread = ();

    pub fn this_thread() -> Thread {}

    pub fn of_process() -> Option<(CpuSet, Vec<usize>)> {
        None
    }

    pub fn only(_cpu: usize) -> Option<CpuSet> {
        None
    }

    pub fn set(_thread: Thread, _cpus: &CpuSet) -> Result<(), std::convert::Infallible> {
        Ok(())
    }
}

/// The slot with the fewest workers.
fn least_used_slot(workers: &[Worker], slots: usize) -> usize {
    (0..slots)
        .min_by_key(|slot| workers.iter().filter(|w| w.slot == *slot).count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_only_with_exactly_one_cpu_per_worker() {
        assert_eq!(WorkerCpus::choose(vec![2, 3], 2), Some(vec![2, 3]));
        assert_eq!(
            WorkerCpus::choose(vec![0, 1, 2, 3], 2),
            None,
            "a quota on a larger machine"
        );
        assert_eq!(WorkerCpus::choose(vec![0, 1], 4), None, "more workers than CPUs");
        assert_eq!(WorkerCpus::choose(vec![0], 1), None, "one worker");
        assert_eq!(WorkerCpus::choose(Vec::new(), 2), None, "affinity unreadable");
    }

    #[test]
    fn off_never_pins() {
        assert!(WorkerCpus::plan(WorkerPinning::Off, 1).is_none());
    }

    #[test]
    fn each_worker_takes_the_least_used_cpu() {
        let worker = |slot| Worker {
            tid: affinity::this_thread(),
            slot,
        };
        assert_eq!(least_used_slot(&[], 2), 0);
        assert_eq!(least_used_slot(&[worker(0)], 2), 1);
        assert_eq!(least_used_slot(&[worker(1)], 2), 0, "a slot given back is taken again");
        assert_eq!(least_used_slot(&[worker(0), worker(1), worker(0)], 2), 1);
    }
}
