//! Performance benchmark: `cargo bench --bench throughput`. Measures every row of the
//! performance table in the README (issue 13) in one run, and prints each value against its
//! target with PASS or FAIL.
//!
//! On the machine it runs on:
//! 1. for the login row, the reference: a bare actix-web server verifying the same
//!    password against an argon2id hash with Steward's parameters, under the same clients;
//!    and, printed as a note, the raw hash rate (one thread per core hashing in a loop). The
//!    hash rate drifts by 10% and more within a minute on a shared machine, so the three take
//!    turns (see [`logins_beside_references`]);
//! 2. the reference: a bare actix-web server with as many workers as Steward, answering a
//!    constant JSON body, under the same load as `GET /v1/me`;
//! 3. on SQLite, and on PostgreSQL when `BENCH_DATABASE_URL` (or `TEST_DATABASE_URL`) names a
//!    server whose user may create databases (a fresh one is created and dropped), against
//!    `steward serve` started as its own process, as an operator runs it:
//!    `GET /v1/me` with 64 connections; logins per second with 8 clients (SQLite); `GET /v1/me`
//!    while 8 clients log in (SQLite); refresh-token rotations per second with 8 clients, each
//!    rotating its own session; then organizations of `BENCH_MEMBERS` members, seeded through
//!    the repository layer (batched inserts in transactions, not the HTTP API) by this
//!    process, where it times the first and the last page of `GET /v1/users?limit=50` and a
//!    search for a rare name;
//! 4. the server's resident memory and threads at the end (`/proc/<pid>/status`).
//!
//! The bare actix-web server runs in this process, on its own worker threads. The load comes
//! from a minimal HTTP/1.1 keep-alive client over `tokio::net::TcpStream` on a current-thread
//! runtime: every client connection lives on the main thread, so the client uses at most one
//! core. A response counts only when it completes inside the measured window; any non-2xx
//! status or I/O failure is an error and is printed.
//!
//! Environment (all optional):
//!   BENCH_HASH_SECONDS   length of the raw hashing around each login turn, two turns' worth
//!                        (default 5)
//!   BENCH_SECONDS        length of each HTTP phase (default 10; logins take four turns of
//!                        half of it)
//!   BENCH_PAGE_SECONDS   length of each list/search timing, one client (default 2)
//!   BENCH_LOGIN_CLIENTS  concurrent clients logging in or rotating refresh tokens (default 8)
//!   BENCH_CLIENTS        keep-alive connections in the GET /v1/me phases (default 64)
//!   BENCH_MEMBERS        organization sizes to seed and list, comma-separated
//!                        (default 1000,100000,1000000; e.g. 10000 for a quick run)
//!   BENCH_DATABASE_URL   PostgreSQL server for the PostgreSQL rows (else TEST_DATABASE_URL)
//!   BENCH_PHASES         the phases to run, comma-separated, from me, logins, rotations,
//!                        lists (default all of them; a row needing a phase left out is not
//!                        printed). A full run is the record; this is for working on one row.
//!   STEWARD_*            server settings; the database URL and bind address are fixed by the
//!                        benchmark, STEWARD_LOG defaults to warn, STEWARD_DATABASE_POOL_SIZE to 16

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use steward::auth::password::hash_blocking;
use steward::config::Config;
use steward::db::models::{NewMembership, NewUser};
use steward::db::repo::{memberships, users};
use steward::domain::{MembershipStatus, UserStatus};
use steward::ids::{AccountId, MembershipId, UserId};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// The rare name the search looks for: one member of each seeded organization has it.
const RARE_NAME: &str = "Quetzalcoatl";
const RARE_QUERY: &str = "etzalco";

struct Settings {
    hash_seconds: u64,
    seconds: u64,
    page_seconds: u64,
    login_clients: usize,
    me_clients: usize,
    members: Vec<u64>,
    postgres: Option<String>,
    cores: usize,
    phases: Vec<String>,
}

impl Settings {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

const PHASES: [&str; 4] = ["me", "logins", "rotations", "lists"];

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must be a positive whole number, not {raw:?}"),
        },
    }
}

fn main() {
    let members = std::env::var("BENCH_MEMBERS").unwrap_or_else(|_| "1000,100000,1000000".into());
    let settings = Settings {
        hash_seconds: env_number("BENCH_HASH_SECONDS", 5),
        seconds: env_number("BENCH_SECONDS", 10),
        page_seconds: env_number("BENCH_PAGE_SECONDS", 2),
        login_clients: env_number("BENCH_LOGIN_CLIENTS", 8) as usize,
        me_clients: env_number("BENCH_CLIENTS", 64) as usize,
        members: members
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("BENCH_MEMBERS must list whole numbers, not {members:?}"))
            })
            .collect(),
        postgres: std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .ok()
            .filter(|u| !u.is_empty()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        phases: phases(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the client runtime");
    runtime.block_on(run(settings));
}

fn phases() -> Vec<String> {
    let Ok(raw) = std::env::var("BENCH_PHASES") else {
        return PHASES.iter().map(|p| p.to_string()).collect();
    };
    raw.split(',')
        .map(|p| p.trim().to_string())
        .inspect(|p| assert!(PHASES.contains(&p.as_str()), "BENCH_PHASES lists {PHASES:?}, not {p:?}"))
        .collect()
}

/// Hashes per second with every core busy, measured off the client runtime, with Steward's
/// parameters (read back from a hash it makes). Each thread keeps one work area, as
/// Steward's hashing threads do, and hashes once before the clock starts, so no page fault
/// and no allocator state counts (a fresh 19 MiB allocation per hash measured anywhere from
/// 76 to 150 hashes/s within a minute, depending on what the process had freed before);
/// each thread counts its own hashes over its own elapsed time, so a thread that finishes
/// early does not dilute the rest.
async fn raw_hash_rate(threads: usize, seconds: f64) -> f64 {
    use argon2::password_hash::phc::PasswordHash;
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    tokio::task::spawn_blocking(move || {
        let stored = hash_blocking(PASSWORD).expect("argon2id hash");
        let params = Params::try_from(&PasswordHash::new(&stored).expect("a PHC string")).expect("argon2 parameters");
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let params = params.clone();
                    scope.spawn(move || {
                        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                        let mut area = vec![Block::default(); params.block_count()];
                        let mut hash = |salt: &[u8]| {
                            let mut out = [0u8; 32];
                            argon2
                                .hash_password_into_with_memory(PASSWORD.as_bytes(), salt, &mut out, &mut area)
                                .expect("argon2id hash");
                        };
                        hash(b"a salt of sixteen");
                        let start = Instant::now();
                        let deadline = start + Duration::from_secs_f64(seconds);
                        let mut hashes = 0u64;
                        while Instant::now() < deadline {
                            hash(&hashes.to_le_bytes().repeat(2));
                            hashes += 1;
                        }
                        hashes as f64 / start.elapsed().as_secs_f64()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("hash thread panicked"))
                .sum()
        })
    })
    .await
    .expect("hash phase panicked")
}

/// Turns of `GET /v1/me` alone, and of it while clients log in.
const ME_TURNS: u32 = 4;

/// `GET /v1/me` with `me_clients` connections, after a second of warm-up: alone for
/// `BENCH_SECONDS`, and with `login` (SQLite), as long again while `login_clients` clients log
/// in. The two take turns, [`ME_TURNS`] of each, so that the ratio of their p99s compares the
/// same stretch of this shared machine's time.
async fn me_alone_and_busy(
    settings: &Settings,
    addr: SocketAddr,
    me: &[u8],
    login: Option<&[u8]>,
) -> (Tally, Option<Tally>) {
    let turn = Duration::from_secs(settings.seconds) / ME_TURNS;
    println!(
        "  GET /v1/me: {} connection(s), {ME_TURNS} turns of {:.1} s{} ...",
        settings.me_clients,
        turn.as_secs_f64(),
        if login.is_some() {
            format!(
                ", each followed by one while {} client(s) log in",
                settings.login_clients
            )
        } else {
            String::new()
        }
    );
    run_phase(addr, me.to_vec(), settings.me_clients, Duration::from_secs(1)).await;
    let (mut alone, mut busy) = (Tally::default(), login.map(|_| Tally::default()));
    for _ in 0..ME_TURNS {
        let quiet = run_phase(addr, me.to_vec(), settings.me_clients, turn).await;
        quiet.print_progress();
        alone.append_turn(quiet);
        if let (Some(login), Some(busy)) = (login, busy.as_mut()) {
            let (loaded, _) = tokio::join!(
                run_phase(addr, me.to_vec(), settings.me_clients, turn),
                run_phase(addr, login.to_vec(), settings.login_clients, turn),
            );
            print!("    while logging in:");
            loaded.print_progress();
            busy.append_turn(loaded);
        }
    }
    print!("    all turns alone:");
    alone.print_progress();
    if let Some(busy) = &busy {
        print!("    all turns while logging in:");
        busy.print_progress();
    }
    (alone, busy)
}

/// Turns of each load in the login row.
const LOGIN_TURNS: u32 = 4;

/// The login phase and its two references, measured in turns.
struct LoginRates {
    /// Steward's `POST /v1/auth/login`.
    logins: Tally,
    /// The reference: a bare actix-web server verifying the same password against an
    /// argon2id hash with the same parameters, under the same load.
    bare_hashing: Tally,
    /// A stricter one, for the record: one thread per core hashing in a loop, no HTTP at all.
    raw: f64,
}

/// Logins per second with `login_clients` clients, beside the rates they are compared with.
/// The hash rate of this shared machine drifts by 10 % and more within a minute, so the
/// loads take turns: [`LOGIN_TURNS`] times raw hashing (half `BENCH_HASH_SECONDS`), the bare
/// hashing server and Steward (half `BENCH_SECONDS` each), then raw hashing and the bare
/// server once more. A turn counts only the responses answered inside it, as every phase does.
async fn logins_beside_references(settings: &Settings, workers: usize, addr: SocketAddr, login: &[u8]) -> LoginRates {
    let turn = Duration::from_secs(settings.seconds) / 2;
    let hash_turn = settings.hash_seconds as f64 / 2.0;
    let (bare_addr, bare_server) = bare_actix_hashing(workers);
    let bare_handle = bare_server.handle();
    let bare_task = tokio::spawn(bare_server);
    let bare_login = post_request(bare_addr, "/login", &login_body());
    println!(
        "  POST /v1/auth/login: {} client(s), {LOGIN_TURNS} turns of {:.1} s, in turns with raw argon2id on {} thread(s) and a bare actix-web server hashing ...",
        settings.login_clients,
        turn.as_secs_f64(),
        settings.cores
    );
    let mut raw_rates = Vec::new();
    let (mut bare_hashing, mut logins) = (Tally::default(), Tally::default());
    for round in 0..=LOGIN_TURNS {
        raw_rates.push(raw_hash_rate(settings.cores, hash_turn).await);
        let bare = run_phase(bare_addr, bare_login.clone(), settings.login_clients, turn).await;
        println!(
            "    raw {:.1} hashes/s; bare actix hashing {:.1} ok/s",
            raw_rates[raw_rates.len() - 1],
            bare.rate()
        );
        bare_hashing.append_turn(bare);
        if round < LOGIN_TURNS {
            let ours = run_phase(addr, login.to_vec(), settings.login_clients, turn).await;
            ours.print_progress();
            logins.append_turn(ours);
        }
    }
    bare_handle.stop(true).await;
    let _ = bare_task.await;
    print!("    all turns:");
    logins.print_progress();
    LoginRates {
        logins,
        bare_hashing,
        raw: raw_rates.iter().sum::<f64>() / raw_rates.len() as f64,
    }
}

/// One row of the final table.
struct Row {
    measure: String,
    value: String,
    target: String,
    /// measured ÷ target, oriented so that ≥ 1 meets it.
    ratio: f64,
}

impl Row {
    /// A value that must reach at least `target`.
    fn at_least(measure: impl Into<String>, value: f64, target: f64, unit: &str) -> Self {
        Row {
            measure: measure.into(),
            value: format!("{value:.1} {unit}"),
            target: format!(">= {target:.1} {unit}"),
            ratio: value / target,
        }
    }

    /// A value that must stay below `target`.
    fn at_most(measure: impl Into<String>, value: f64, target: f64, unit: &str) -> Self {
        Row {
            measure: measure.into(),
            value: format!("{value:.2} {unit}"),
            target: format!("<= {target:.2} {unit}"),
            ratio: target / value,
        }
    }
}

/// Starts a bare actix-web server answering a constant JSON body, with `workers` workers.
fn bare_actix(workers: usize) -> (SocketAddr, actix_web::dev::Server) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let server = HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().json(json!({ "id": "usr_0", "status": "active" })) }),
        )
    })
    .workers(workers)
    .bind(("127.0.0.1", 0))
    .expect("bind the bare actix server");
    let addr = server.addrs()[0];
    (addr, server.run())
}

/// Starts a bare actix-web server with `workers` workers whose `POST /login` verifies the
/// JSON body's password against an argon2id hash of [`PASSWORD`] made with Steward's
/// parameters, on actix-web's blocking pool, and answers a constant JSON body: what a login
/// costs with nothing but the framework and the hash.
fn bare_actix_hashing(workers: usize) -> (SocketAddr, actix_web::dev::Server) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let stored = hash_blocking(PASSWORD).expect("argon2id hash");
    let server = HttpServer::new(move || {
        let stored = stored.clone();
        App::new().route(
            "/login",
            web::post().to(move |body: web::Json<Value>| {
                let stored = stored.clone();
                async move {
                    let password = body["password"].as_str().unwrap_or_default().to_string();
                    let verified = web::block(move || {
                        use argon2::password_hash::phc::PasswordHash;
                        use argon2::PasswordVerifier as _;
                        let hash = PasswordHash::new(&stored).expect("a PHC string");
                        argon2::Argon2::default()
                            .verify_password(password.as_bytes(), &hash)
                            .is_ok()
                    })
                    .await
                    .unwrap_or(false);
                    if verified {
                        HttpResponse::Ok().json(json!({ "token_type": "Bearer" }))
                    } else {
                        HttpResponse::Unauthorized().finish()
                    }
                }
            }),
        )
    })
    .workers(workers)
    .bind(("127.0.0.1", 0))
    .expect("bind the bare hashing server");
    let addr = server.addrs()[0];
    (addr, server.run())
}

/// A PostgreSQL database created for this run and dropped at the end.
struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create(admin_url: &str) -> Self {
        let name = format!("steward_bench_{}", std::process::id());
        let mut admin = diesel::PgConnection::establish(admin_url).expect("connect to the PostgreSQL server");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&sql).expect("create the benchmark database");
        }
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
        BenchDatabase {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        match diesel::PgConnection::establish(&self.admin_url) {
            Ok(mut admin) => {
                if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
                    eprintln!("could not drop {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop {}: {e}", self.name),
        }
    }
}

fn server_config(url: &str) -> Config {
    let fixed: HashMap<&str, String> = [
        ("STEWARD_DATABASE_URL", url.to_string()),
        ("STEWARD_BIND", "127.0.0.1:0".to_string()),
    ]
    .into();
    let defaults: HashMap<&str, &str> = [("STEWARD_LOG", "warn"), ("STEWARD_DATABASE_POOL_SIZE", "16")].into();
    Config::from_lookup(|k| {
        fixed
            .get(k)
            .cloned()
            .or_else(|| std::env::var(k).ok())
            .or_else(|| defaults.get(k).map(|v| v.to_string()))
    })
    .unwrap_or_else(|e| panic!("invalid server settings: {e}"))
}

async fn run(settings: Settings) {
    let window = Duration::from_secs(settings.seconds);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let probe = server_config("sqlite://unused.db");
    env_logger::Builder::new().parse_filters(&probe.log_filter).init();
    println!(
        "bare actix-web: {} worker(s), {} connection(s) for {} s ...",
        probe.workers, settings.me_clients, settings.seconds
    );
    let (bare_addr, bare_server) = bare_actix(probe.workers);
    let bare_handle = bare_server.handle();
    let bare_task = tokio::spawn(bare_server);
    let bare_get = format!("GET / HTTP/1.1\r\nHost: {bare_addr}\r\n\r\n").into_bytes();
    run_phase(bare_addr, bare_get.clone(), settings.me_clients, Duration::from_secs(1)).await;
    let bare = run_phase(bare_addr, bare_get, settings.me_clients, window).await;
    bare.print_progress();
    bare_handle.stop(true).await;
    let _ = bare_task.await;

    let dir = tempfile::tempdir().expect("create a temporary directory for the SQLite file");
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    backend_rows(&settings, "SQLite", &sqlite_url, bare.rate(), &mut rows, &mut notes).await;
    if let Some(admin) = &settings.postgres {
        let db = BenchDatabase::create(admin);
        backend_rows(&settings, "PostgreSQL", &db.url, bare.rate(), &mut rows, &mut notes).await;
    }
    println!();
    println!(
        "Summary: {} core(s), HTTP phases of {} s, page timings of {} s, one client thread; bare actix-web: {:.0} req/s, p99 {:.2} ms",
        settings.cores,
        settings.seconds,
        settings.page_seconds,
        bare.rate(),
        bare.percentile_ms(0.99)
    );
    println!(
        "| {:<72} | {:>12} | {:>13} | {:>6} | {:<4} |",
        "measure", "value", "target", "ratio", ""
    );
    println!("|{:-<74}|{:-<14}|{:-<15}|{:-<8}|{:-<6}|", "", "", "", "", "");
    for row in &rows {
        let verdict = if row.ratio >= 1.0 { "PASS" } else { "FAIL" };
        println!(
            "| {:<72} | {:>12} | {:>13} | {:>6.2} | {verdict} |",
            row.measure, row.value, row.target, row.ratio
        );
    }
    for note in &notes {
        println!("Note: {note}");
    }
}

/// VmRSS (kB) and Threads from a `/proc/<pid>/status` file.
fn memory_of(path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

/// Every measurement on one backend; pushes its rows.
async fn backend_rows(
    settings: &Settings,
    backend: &str,
    url: &str,
    bare_rate: f64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) {
    let sqlite = backend == "SQLite";
    let window = Duration::from_secs(settings.seconds);
    let config = server_config(url);
    println!(
        "{backend}: {} worker(s), pool {}, hash concurrency {}",
        config.workers, config.database_pool_size, config.hash_concurrency
    );
    let server = ServerChild::start(url).await;
    let addr = server.addr;
    let db = steward::db::Db::connect(&config.database_url, 2, Duration::from_secs(30)).expect("open the database");

    let body = sign_up(addr, EMAIL, "Bench").await;
    let token = body["access_token"].as_str().expect("an access token").to_string();
    let me = format!("GET /v1/me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes();
    let login = post_request(addr, "/v1/auth/login", &login_body());
    let logins = sqlite && settings.runs("logins");
    if settings.runs("me") {
        let busy_login = logins.then_some(login.as_slice());
        let (me_alone, me_busy) = me_alone_and_busy(settings, addr, &me, busy_login).await;
        let (share, p99_target) = if sqlite { (30.0, 5.0) } else { (10.0, 10.0) };
        rows.push(Row::at_least(
            format!("{backend}: GET /v1/me, % of bare actix"),
            100.0 * me_alone.rate() / bare_rate,
            share,
            "%",
        ));
        rows.push(Row::at_most(
            format!("{backend}: GET /v1/me p99"),
            me_alone.percentile_ms(0.99),
            p99_target,
            "ms",
        ));
        if let Some(me_busy) = me_busy {
            let alone = me_alone.percentile_ms(0.99);
            rows.push(Row::at_most(
                format!("SQLite: GET /v1/me p99 while logging in, x its p99 alone ({alone:.2} ms)"),
                me_busy.percentile_ms(0.99) / alone,
                2.0,
                "x",
            ));
        }
    }
    if logins {
        let rates = logins_beside_references(settings, config.workers, addr, &login).await;
        let bare = rates.bare_hashing.rate();
        rows.push(Row::at_least(
            format!("SQLite: logins/s, % of a bare actix-web server hashing ({bare:.1}/s)"),
            100.0 * rates.logins.rate() / bare,
            95.0,
            "%",
        ));
        notes.push(format!(
            "SQLite logins were {:.1} % of the raw hash rate ({:.1} hashes/s: one thread per core hashing in a loop, no HTTP)",
            100.0 * rates.logins.rate() / rates.raw,
            rates.raw
        ));
    }

    if settings.runs("rotations") {
        rotation_rows(settings, backend, addr, window, rows).await;
    }

    let sizes: &[u64] = if settings.runs("lists") { &settings.members } else { &[] };
    for &size in sizes {
        let email = format!("owner{size}@example.com");
        let body = sign_up(addr, &email, &format!("Org of {size}")).await;
        let token = body["access_token"].as_str().expect("an access token").to_string();
        let root = AccountId::from(body["account"]["id"].as_str().expect("the account id").to_string());
        let started = Instant::now();
        let db = db.clone();
        let last_cursor = tokio::task::spawn_blocking(move || seed(&db, &root, size))
            .await
            .expect("seeding panicked");
        println!("  seeded {size} members in {:.1} s", started.elapsed().as_secs_f64());
        let page_window = Duration::from_secs(settings.page_seconds);
        let get = |path: String| {
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes()
        };
        for (which, path) in [
            ("first", "/v1/users?limit=50".to_string()),
            ("last", format!("/v1/users?limit=50&cursor={last_cursor}")),
        ] {
            let timing = run_phase(addr, get(path), 1, page_window).await;
            print!("  {which} page of {size}:");
            timing.print_progress();
            rows.push(Row::at_most(
                format!("{backend}: GET /v1/users?limit=50, {size} members, {which} page (p50)"),
                timing.percentile_ms(0.5),
                3.0,
                "ms",
            ));
        }
        let timing = run_phase(addr, get(format!("/v1/users?q={RARE_QUERY}")), 1, page_window).await;
        print!("  search in {size}:");
        timing.print_progress();
        rows.push(Row::at_most(
            format!("{backend}: GET /v1/users?q=<rare name>, {size} members (p50)"),
            timing.percentile_ms(0.5),
            10.0,
            "ms",
        ));
    }

    // Before the server stops, while its workers and pools still exist.
    let (rss_kb, threads) = server.memory();
    rows.push(Row::at_most(
        format!("{backend}: server's resident memory after its runs ({threads} threads)"),
        rss_kb as f64 / 1024.0,
        60.0,
        "MB",
    ));
    server.stop();
}

/// Refresh-token rotations per second, and their p99, with `login_clients` clients each
/// rotating its own session.
async fn rotation_rows(settings: &Settings, backend: &str, addr: SocketAddr, window: Duration, rows: &mut Vec<Row>) {
    let sqlite = backend == "SQLite";
    println!(
        "  POST /v1/auth/refresh: {} client(s), each rotating its own session ...",
        settings.login_clients
    );
    let mut refresh_tokens = Vec::new();
    for _ in 0..settings.login_clients {
        let body = post_json(addr, "/v1/auth/login", &login_body(), None).await;
        refresh_tokens.push(body["refresh_token"].as_str().expect("a refresh token").to_string());
    }
    let rotations = rotate_phase(addr, refresh_tokens, window).await;
    rotations.print_progress();
    let per_core = if sqlite { 1500.0 } else { 1000.0 };
    rows.push(Row::at_least(
        format!("{backend}: refresh rotations/s, {} clients", settings.login_clients),
        rotations.rate(),
        per_core * settings.cores as f64,
        "/s",
    ));
    rows.push(Row::at_most(
        format!("{backend}: refresh rotation p99"),
        rotations.percentile_ms(0.99),
        20.0,
        "ms",
    ));
}

/// `steward serve` as a child process, as an operator runs it: its memory is its own, not the
/// load client's. Its settings are the benchmark's environment (`STEWARD_*`) with the database
/// URL, a free port and a signing key in a temporary directory fixed, and the defaults of
/// [`server_config`]. Killed when dropped.
struct ServerChild {
    child: std::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ServerChild {
    async fn start(url: &str) -> Self {
        let dir = tempfile::tempdir().expect("create a directory for the signing key");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_steward"));
        for (name, value) in [("STEWARD_LOG", "warn"), ("STEWARD_DATABASE_POOL_SIZE", "16")] {
            if std::env::var_os(name).is_none() {
                command.env(name, value);
            }
        }
        let child = command
            .env("STEWARD_DATABASE_URL", url)
            .env("STEWARD_BIND", addr.to_string())
            .env("STEWARD_SIGNING_KEY_FILE", dir.path().join("key.pem"))
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start steward serve");
        let mut server = ServerChild { child, addr, _dir: dir };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("steward serve exited at start: {status}");
            }
            let ready = reqwest::get(format!("http://{addr}/readyz")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "steward serve not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// VmRSS (kB) and threads of the server process.
    fn memory(&self) -> (u64, u64) {
        memory_of(&format!("/proc/{}/status", self.child.id()))
    }

    fn stop(mut self) {
        // SIGTERM: the server finishes what is in flight and exits.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(35);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("steward serve did not stop within 35 s of SIGTERM");
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Seeds `size` members into the organization `root` through the repository layer, in
/// transactions of 5,000, then analyzed on PostgreSQL; one of them has the rare name. Returns the cursor of the last page
/// (the ids are generated in ascending order, before the owner's).
fn seed(db: &steward::db::Db, root: &AccountId, size: u64) -> String {
    use base64::Engine;
    let mut pooled = db.get().expect("a connection");
    let conn: &mut steward::db::DbConnection = &mut pooled;
    let now = chrono::Utc::now().naive_utc();
    let start_ms = (chrono::Utc::now().timestamp_millis() as u64).saturating_sub(size + 1_000);
    let mut last_cursor = String::new();
    // A thousand rows a statement (under both backends' limits of bound parameters), five
    // statements of each table a transaction.
    let (rows_per_statement, statements) = (1_000, 5);
    let mut i = 0;
    while i < size {
        let end = (i + rows_per_statement * statements).min(size);
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for chunk_start in (i..end).step_by(rows_per_statement as usize) {
                let chunk = chunk_start..(chunk_start + rows_per_statement).min(end);
                let ids: Vec<UserId> = chunk
                    .clone()
                    .map(|n| {
                        // Unique across the organizations of one run: the random part names the size too.
                        let ulid = ulid::Ulid::from_parts(start_ms + n, (u128::from(size) << 64) | u128::from(n));
                        UserId::from(format!("usr_{}", ulid.to_string().to_lowercase()))
                    })
                    .collect();
                let emails: Vec<String> = chunk
                    .clone()
                    .map(|n| format!("member{n}@org{size}.bench.example"))
                    .collect();
                let last_names: Vec<String> = chunk
                    .clone()
                    .map(|n| {
                        if n == size / 2 {
                            RARE_NAME.to_string()
                        } else {
                            format!("Member{n}")
                        }
                    })
                    .collect();
                let new_users = ids
                    .iter()
                    .zip(&emails)
                    .zip(&last_names)
                    .map(|((id, email), last)| NewUser {
                        id: id.clone(),
                        email,
                        email_normalized: email,
                        username: None,
                        username_normalized: None,
                        first_name: "Bench",
                        last_name: last,
                        phone: None,
                        password_hash: None,
                        must_change_password: false,
                        status: UserStatus::Active,
                        show_calendar: false,
                        daily_email_reminders: false,
                        created_at: now,
                        updated_at: now,
                    })
                    .collect();
                users::insert_many(conn, new_users)?;
                let new_memberships = ids
                    .iter()
                    .map(|id| NewMembership {
                        id: MembershipId::generate(),
                        user_id: id.clone(),
                        root_account_id: root.clone(),
                        account_id: root.clone(),
                        status: MembershipStatus::Active,
                        created_at: now,
                        updated_at: now,
                        external_id: None,
                        scim_user_name: None,
                    })
                    .collect();
                memberships::insert_many(conn, new_memberships)?;
                for (n, id) in chunk.zip(&ids) {
                    if size >= 50 && n == size - 50 {
                        last_cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_str());
                    }
                }
            }
            Ok(())
        })
        .expect("seed a batch of members");
        i = end;
    }
    // PostgreSQL's autovacuum would analyze the tables after such an import within a minute;
    // the benchmark does not wait for it. (SQLite keeps no statistics unless asked.)
    if matches!(conn, steward::db::DbConnection::Postgres(_)) {
        conn.batch_execute("ANALYZE").expect("analyze the seeded tables");
    }
    last_cursor
}

/// The body of the benchmark user's login.
fn login_body() -> Value {
    json!({ "identifier": EMAIL, "password": PASSWORD })
}

/// A keep-alive HTTP/1.1 `POST` of `body` as JSON to `path`.
fn post_request(addr: SocketAddr, path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn sign_up(addr: SocketAddr, email: &str, organization: &str) -> Value {
    post_json(
        addr,
        "/v1/auth/signup",
        &json!({
            "organization_name": organization,
            "email": email,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "password": PASSWORD,
        }),
        None,
    )
    .await
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value, token: Option<&str>) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("http://{addr}{path}")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {path} failed with {status}: {text}");
    serde_json::from_str(&text).expect("a JSON response")
}

/// Each client rotates its own refresh token in a loop: every response carries the next one.
async fn rotate_phase(addr: SocketAddr, tokens: Vec<String>, window: Duration) -> Tally {
    let deadline = Instant::now() + window;
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| tokio::spawn(rotate_client(addr, token, deadline)))
        .collect();
    gather(tasks, window).await
}

async fn rotate_client(addr: SocketAddr, mut token: String, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let Ok(mut conn) = Connection::open(addr).await else {
        tally.io_errors += 1;
        return tally;
    };
    while Instant::now() < deadline {
        let request = post_request(addr, "/v1/auth/refresh", &json!({ "refresh_token": token }));
        let started = Instant::now();
        let result = conn.send(&request).await;
        let finished = Instant::now();
        if finished > deadline {
            tally.late += 1;
            break;
        }
        match result {
            Ok(response) if response.status == 200 => {
                let next: Value = serde_json::from_slice(&conn.buf[response.body]).unwrap_or(Value::Null);
                let Some(next) = next["refresh_token"].as_str() else {
                    tally.io_errors += 1;
                    break;
                };
                token = next.to_string();
                tally.ok += 1;
                tally
                    .latencies_us
                    .push(u32::try_from((finished - started).as_micros()).unwrap_or(u32::MAX));
            }
            Ok(response) => {
                *tally.failed.entry(response.status).or_default() += 1;
                break;
            }
            Err(e) => {
                tally.io_errors += 1;
                tally.first_io_error.get_or_insert_with(|| e.to_string());
                break;
            }
        }
    }
    tally
}

/// One HTTP/1.1 keep-alive connection that sends a prepared request and reads whole responses
/// (status line, headers, then exactly Content-Length bytes of body).
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

struct Response {
    status: u16,
    keep_alive: bool,
    /// Where the body lies in the connection's buffer, until the next request.
    body: std::ops::Range<usize>,
}

fn protocol_error(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl Connection {
    async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let head_len = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head =
            std::str::from_utf8(&self.buf[..head_len]).map_err(|_| protocol_error("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| protocol_error("bad status line"))?;
        let mut content_length = None;
        let mut keep_alive = true;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| protocol_error("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(protocol_error("chunked responses are not supported"));
            }
        }
        let body_len = match (status, content_length) {
            (_, Some(n)) => n,
            (100..=199 | 204 | 304, None) => 0,
            (_, None) => return Err(protocol_error("response without Content-Length")),
        };
        while self.buf.len() < head_len + body_len {
            self.fill().await?;
        }
        Ok(Response {
            status,
            keep_alive,
            body: head_len..head_len + body_len,
        })
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }
}

/// What one or all clients saw in a phase; only responses completed inside the window count.
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Non-2xx responses by status.
    failed: BTreeMap<u16, u64>,
    io_errors: u64,
    first_io_error: Option<String>,
    /// Requests that finished after the window closed (not counted anywhere else).
    late: u64,
    latencies_us: Vec<u32>,
    window: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (status, n) in other.failed {
            *self.failed.entry(status).or_default() += n;
        }
        self.io_errors += other.io_errors;
        self.first_io_error = self.first_io_error.take().or(other.first_io_error);
        self.late += other.late;
        self.latencies_us.extend(other.latencies_us);
    }

    /// Adds a later turn of the same load: its counts, its latencies and its window.
    fn append_turn(&mut self, turn: Tally) {
        self.window += turn.window;
        self.merge(turn);
        self.latencies_us.sort_unstable();
    }

    fn errors(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.io_errors
    }

    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// The q-quantile of response latency, in milliseconds (latencies must be sorted).
    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    fn print_progress(&self) {
        println!(
            "      {:.1} ok/s, p50 {:.2} ms, p99 {:.2} ms, {} error(s), {} late",
            self.rate(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.errors(),
            self.late
        );
        for (status, n) in &self.failed {
            println!("      HTTP {status}: {n}");
        }
        if let Some(e) = &self.first_io_error {
            println!("      I/O errors: {} (first: {e})", self.io_errors);
        }
    }
}

/// Runs `clients` closed-loop clients, each sending `request` over its own keep-alive connection
/// until the window closes.
/// Waits for every client of a phase and merges what they saw.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>, window: Duration) -> Tally {
    let mut total = Tally {
        window,
        ..Tally::default()
    };
    for task in tasks {
        total.merge(task.await.expect("client task panicked"));
    }
    total.latencies_us.sort_unstable();
    total
}

async fn run_phase(addr: SocketAddr, request: Vec<u8>, clients: usize, window: Duration) -> Tally {
    let request: Arc<[u8]> = request.into();
    let deadline = Instant::now() + window;
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(addr, request.clone(), deadline)))
        .collect();
    gather(tasks, window).await
}

async fn client(addr: SocketAddr, request: Arc<[u8]>, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Connection> = None;
    while Instant::now() < deadline {
        let started = Instant::now();
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Connection::open(addr).await {
                Ok(c) => c,
                Err(e) => {
                    tally.io_errors += 1;
                    tally.first_io_error.get_or_insert_with(|| format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let result = c.send(&request).await;
        let finished = Instant::now();
        if finished > deadline {
            tally.late += 1;
            break;
        }
        match result {
            Ok(response) => {
                tally
                    .latencies_us
                    .push(u32::try_from((finished - started).as_micros()).unwrap_or(u32::MAX));
                if (200..300).contains(&response.status) {
                    tally.ok += 1;
                } else {
                    *tally.failed.entry(response.status).or_default() += 1;
                }
                if response.keep_alive {
                    conn = Some(c);
                }
            }
            Err(e) => {
                tally.io_errors += 1;
                tally.first_io_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    tally
}
