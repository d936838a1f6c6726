//! Gives each HTTP worker thread a CPU of its own, when the process has one CPU per worker.
//!
//! Why: during a login storm the hashing threads (`SCHED_IDLE`, see `auth::password`) keep
//! every core busy, so no core ever goes idle. Linux pulls a waiting thread over to another
//! core mostly at the moment that core goes idle; without that moment, both workers could
//! stay stacked on one core for many milliseconds, taking turns at the scheduler tick (4 ms
//! at `HZ=250`), while a hash ran alone on the other core. Every request on the waiting
//! worker waited that turn out. With one worker per core, a worker that wakes up preempts
//! whatever hash shares its core at once.
//!
//! Measured on the benchmark's 2-core machine, with two `SCHED_IDLE` busy loops beside a
//! server answering `GET /v1/me`: p99 6.05 ms with the workers free to move, 3.3–4.0 ms
//! pinned (2.5–3.3 ms with nothing beside it).
//!
//! Pinning is safe only when the CPUs are the process's own: with `auto` (the default) it
//! happens only when the process may run on exactly as many CPUs as there are workers (a
//! cpuset, `taskset`, or a machine of that size). A container limited by a CPU quota on a
//! larger machine, or more workers than CPUs, is left to the scheduler.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use core_affinity::CoreId;

/// The `STEWARD_PIN_WORKERS` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerPinning {
    /// Pin when the process may run on exactly one CPU per worker.
    Auto,
    /// Never pin.
    Off,
}

/// The CPUs the workers are pinned to, and how many live workers each one holds.
#[derive(Debug)]
pub struct WorkerCpus {
    cpus: Vec<CoreId>,
    workers_on: Mutex<Vec<usize>>,
}

thread_local! {
    /// The CPU this thread was pinned to; given back when the thread ends (a worker that
    /// actix-web restarts after a panic is a new thread and takes the CPU that was freed).
    static PINNED: RefCell<Option<Pin>> = const { RefCell::new(None) };
}

struct Pin {
    cpus: Arc<WorkerCpus>,
    slot: usize,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.cpus.release(self.slot);
    }
}

impl WorkerCpus {
    /// The plan for `workers` workers in this process, or `None` when they are left to move.
    pub fn plan(setting: WorkerPinning, workers: usize) -> Option<Arc<Self>> {
        if setting == WorkerPinning::Off || !cfg!(target_os = "linux") {
            return None;
        }
        let available = core_affinity::get_core_ids().unwrap_or_default();
        let cpus = Self::choose(available, workers)?;
        log::info!("pinning each of the {workers} HTTP workers to a CPU of its own");
        Some(Arc::new(Self {
            workers_on: Mutex::new(vec![0; cpus.len()]),
            cpus,
        }))
    }

    /// The CPUs to pin to: all of them, when there is exactly one per worker (and more than
    /// one worker: a single worker has nothing to be stacked with).
    fn choose(available: Vec<CoreId>, workers: usize) -> Option<Vec<CoreId>> {
        (workers > 1 && available.len() == workers).then_some(available)
    }

    /// Pins the calling thread to the CPU with the fewest workers; once per thread.
    pub fn pin_this_thread(self: &Arc<Self>) {
        PINNED.with(|pinned| {
            let mut pinned = pinned.borrow_mut();
            if pinned.is_some() {
                return;
            }
            let Some(slot) = self.least_used_slot() else {
                return;
            };
            if core_affinity::set_for_current(self.cpus[slot]) {
                *pinned = Some(Pin {
                    cpus: self.clone(),
                    slot,
                });
            } else {
                self.release(slot);
                log::warn!("could not pin an HTTP worker to CPU {}", self.cpus[slot].id);
            }
        });
    }

    /// Takes a place on the CPU with the fewest workers.
    fn least_used_slot(&self) -> Option<usize> {
        let mut counts = self.workers_on.lock().ok()?;
        let (slot, count) = counts.iter_mut().enumerate().min_by_key(|(_, count)| **count)?;
        *count += 1;
        Some(slot)
    }

    fn release(&self, slot: usize) {
        if let Ok(mut counts) = self.workers_on.lock() {
            if let Some(count) = counts.get_mut(slot) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(ids: &[usize]) -> Vec<CoreId> {
        ids.iter().map(|&id| CoreId { id }).collect()
    }

    #[test]
    fn pins_only_with_exactly_one_cpu_per_worker() {
        assert_eq!(WorkerCpus::choose(cores(&[2, 3]), 2), Some(cores(&[2, 3])));
        assert_eq!(
            WorkerCpus::choose(cores(&[0, 1, 2, 3]), 2),
            None,
            "a quota on a larger machine"
        );
        assert_eq!(WorkerCpus::choose(cores(&[0, 1]), 4), None, "more workers than CPUs");
        assert_eq!(WorkerCpus::choose(cores(&[0]), 1), None, "one worker");
        assert_eq!(WorkerCpus::choose(Vec::new(), 2), None, "affinity unreadable");
    }

    #[test]
    fn off_never_pins() {
        assert!(WorkerCpus::plan(WorkerPinning::Off, 1).is_none());
    }

    #[test]
    fn each_worker_takes_the_least_used_cpu_and_gives_it_back_when_it_ends() {
        let cpus = Arc::new(WorkerCpus {
            cpus: cores(&[0, 1]),
            workers_on: Mutex::new(vec![0, 0]),
        });
        assert_eq!(cpus.least_used_slot(), Some(0));
        assert_eq!(cpus.least_used_slot(), Some(1));
        cpus.release(0);
        assert_eq!(cpus.least_used_slot(), Some(0), "the freed CPU is taken again");
        assert_eq!(*cpus.workers_on.lock().unwrap(), vec![1, 1]);
    }
}
