//! HTTP workers and CPUs (issue 13): with one CPU per worker, the real binary gives each
//! worker thread a CPU of its own while passwords are hashed, so that a login storm's hashing
//! threads, which never let a core go idle, cannot leave two workers taking turns on one core;
//! it lets them go again once hashing stops. `STEWARD_PIN_WORKERS=off` leaves them free.

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

/// The CPU lists of the server's HTTP worker threads, and the CPUs of its main thread.
fn worker_cpus(server: &ServerProcess) -> (Vec<String>, String) {
    let threads = cpus_by_thread(server.pid());
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

/// The server with `workers` workers and `pinning`, on the app's database.
async fn server(app: &TestApp, dir: &std::path::Path, workers: usize, pinning: &str) -> ServerProcess {
    let workers = workers.to_string();
    let settings = [
        ("STEWARD_DATABASE_URL", app.database_url.as_str()),
        ("STEWARD_WORKERS", workers.as_str()),
        ("STEWARD_PIN_WORKERS", pinning),
    ];
    ServerProcess::start(dir, "workers", &settings).await
}

/// The CPUs this test may run on (the server inherits them).
fn own_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_or(0, |set| {
        (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .count()
    })
}

fn free(workers: &[String], all: &str) -> bool {
    workers.iter().all(|w| w == all)
}

#[tokio::test]
async fn while_passwords_are_hashed_each_worker_has_a_cpu_of_its_own() {
    let cpus = own_cpus();
    if cpus < 2 {
        eprintln!("skipped: this machine lets the test run on {cpus} CPU(s), and pinning needs two");
        return;
    }
    on_each_backend(|app| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut server = server(&app, dir.path(), cpus, "auto").await;
        let (workers, all) = worker_cpus(&server);
        assert_eq!(workers.len(), cpus, "{workers:?}");
        assert!(free(&workers, &all), "free before any hash: {workers:?} vs {all}");

        server.sign_up("pinned@example.com").await;
        let (workers, all) = worker_cpus(&server);
        let distinct: BTreeSet<&String> = workers.iter().collect();
        assert_eq!(distinct.len(), cpus, "one CPU each: {workers:?}");
        assert!(
            workers.iter().all(|w| w.parse::<usize>().is_ok()),
            "each worker on a single CPU: {workers:?} (the process may use {all})"
        );

        // Let go about a second after the last hash (checked when a hashing thread idles).
        let mut waited = 0;
        while !free(&worker_cpus(&server).0, &all) {
            assert!(
                waited < 50,
                "still pinned 5 s after the last hash: {:?}",
                worker_cpus(&server)
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            waited += 1;
        }
        server.kill();
    })
    .await;
}

#[tokio::test]
async fn workers_stay_free_when_turned_off_or_when_they_do_not_match_the_cpus() {
    let cpus = own_cpus();
    on_each_backend(|app| async move {
        // More workers than CPUs: pinning would stack two of them on one CPU; and off is off.
        for (workers, pinning) in [(cpus + 1, "auto"), (cpus, "off")] {
            let dir = tempfile::tempdir().unwrap();
            let mut server = server(&app, dir.path(), workers, pinning).await;
            server.sign_up(&format!("{pinning}@example.com")).await;
            let (threads, all) = worker_cpus(&server);
            assert_eq!(threads.len(), workers);
            assert!(free(&threads, &all), "{pinning}: {threads:?} vs {all}");
            server.kill();
        }
    })
    .await;
}
