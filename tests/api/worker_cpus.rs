//! HTTP workers and CPUs (issue 13): with one CPU per worker, the real binary gives each
//! worker thread a CPU of its own, so that a login storm's hashing threads, which never let a
//! core go idle, cannot leave two workers taking turns on one core; `STEWARD_PIN_WORKERS=off`
//! leaves them to the scheduler.

use std::collections::BTreeSet;

use crate::helpers::*;
use crate::process::ServerProcess;

/// The CPUs each thread of process `pid` may run on, by thread name (`Cpus_allowed_list`).
fn cpus_by_thread(pid: u32) -> Vec<(String, String)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    tasks
        .map(|task| {
            let dir = task.expect("a thread").path();
            let name = std::fs::read_to_string(dir.join("comm")).expect("its name");
            let status = std::fs::read_to_string(dir.join("status")).expect("its status");
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list")
                .trim()
                .to_string();
            (name.trim().to_string(), cpus)
        })
        .collect()
}

/// The CPU lists of the server's HTTP worker threads, with `workers` workers and `pinning`.
async fn worker_cpus(app: &TestApp, workers: usize, pinning: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let workers = workers.to_string();
    let settings = [
        ("STEWARD_DATABASE_URL", app.database_url.as_str()),
        ("STEWARD_WORKERS", workers.as_str()),
        ("STEWARD_PIN_WORKERS", pinning),
    ];
    let mut server = ServerProcess::start(dir.path(), "workers", &settings).await;
    let threads = cpus_by_thread(server.pid());
    server.kill();
    let main = threads
        .iter()
        .find(|(name, _)| name == "steward")
        .map(|(_, cpus)| cpus.clone())
        .expect("the main thread");
    let workers = threads
        .into_iter()
        .filter(|(name, _)| name.starts_with("actix-rt|system"))
        .map(|(_, cpus)| cpus)
        .collect();
    (workers, main)
}

/// The CPUs this test may run on (the server inherits them).
fn own_cpus() -> usize {
    core_affinity::get_core_ids().map_or(0, |ids| ids.len())
}

#[tokio::test]
async fn with_one_cpu_per_worker_each_worker_gets_a_cpu_of_its_own() {
    let cpus = own_cpus();
    if cpus < 2 {
        eprintln!("skipped: this machine lets the test run on {cpus} CPU(s), and pinning needs two");
        return;
    }
    on_each_backend(|app| async move {
        let (workers, all) = worker_cpus(&app, cpus, "auto").await;
        assert_eq!(workers.len(), cpus, "{workers:?}");
        let distinct: BTreeSet<&String> = workers.iter().collect();
        assert_eq!(distinct.len(), cpus, "one CPU each: {workers:?}");
        assert!(
            workers.iter().all(|w| w.parse::<usize>().is_ok()),
            "each worker on a single CPU: {workers:?} (the process may use {all})"
        );

        let (workers, all) = worker_cpus(&app, cpus, "off").await;
        assert!(
            workers.iter().all(|w| *w == all),
            "off leaves them free: {workers:?} vs {all}"
        );
    })
    .await;
}

#[tokio::test]
async fn workers_are_left_to_the_scheduler_when_they_do_not_match_the_cpus() {
    let cpus = own_cpus();
    on_each_backend(|app| async move {
        // More workers than CPUs: pinning would stack two of them on one CPU for good.
        let (workers, all) = worker_cpus(&app, cpus + 1, "auto").await;
        assert_eq!(workers.len(), cpus + 1);
        assert!(workers.iter().all(|w| *w == all), "{workers:?} vs {all}");
    })
    .await;
}
