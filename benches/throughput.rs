//! Throughput benchmark: `cargo bench --bench throughput`.
//!
//! Measures, on the machine it runs on:
//! 1. the raw argon2id hash rate: one thread per core calling `hash_blocking` in a loop, measured
//!    before and after the login phase because it drifts on a shared machine;
//! 2. logins per second through `POST /v1/auth/login`, and their ratio to that hash rate (a login
//!    is one argon2id verification plus a session write, so the hash rate is its ceiling);
//! 3. authenticated `GET /v1/me` requests per second on SQLite.
//!
//! The server runs in-process on 127.0.0.1:0 with its own actix worker threads and a SQLite file
//! in a temporary directory. The load comes from a minimal HTTP/1.1 keep-alive client over
//! `tokio::net::TcpStream` on a current-thread runtime built in `main`: every client connection
//! (and the server's control future; actix accepts and serves on threads of its own) lives on
//! the main thread, so the client uses at most one core and leaves the rest to the server. A response counts only when it completes inside the measured window; any
//! non-2xx status or I/O failure is an error and is printed.
//!
//! Environment (all optional):
//!   BENCH_HASH_SECONDS   length of the raw hash phase (default 5)
//!   BENCH_SECONDS        length of each HTTP phase (default 10)
//!   BENCH_LOGIN_CLIENTS  concurrent clients in the login phase (default 8)
//!   BENCH_CLIENTS        keep-alive connections in the GET /v1/me phase (default 64)
//!   STEWARD_*            server settings; the database URL and bind address are fixed by the
//!                        benchmark, STEWARD_LOG defaults to warn, STEWARD_DATABASE_POOL_SIZE to 16

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use steward::auth::keys::SigningKeys;
use steward::auth::password::hash_blocking;
use steward::clock::SystemClock;
use steward::config::Config;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";

struct Settings {
    hash_seconds: u64,
    seconds: u64,
    login_clients: usize,
    me_clients: usize,
    cores: usize,
}

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
    let settings = Settings {
        hash_seconds: env_number("BENCH_HASH_SECONDS", 5),
        seconds: env_number("BENCH_SECONDS", 10),
        login_clients: env_number("BENCH_LOGIN_CLIENTS", 8) as usize,
        me_clients: env_number("BENCH_CLIENTS", 64) as usize,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the client runtime");
    runtime.block_on(run(settings));
}

/// Hashes per second with every core busy, measured off the client runtime. Each thread hashes
/// once before the clock starts (so first-touch page faults do not count) and counts its own
/// hashes over its own elapsed time, so a thread that finishes early does not dilute the rest.
async fn raw_hash_rate(threads: usize, seconds: u64) -> f64 {
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(move || {
                        hash_blocking(PASSWORD).expect("argon2id hash");
                        let start = Instant::now();
                        let deadline = start + Duration::from_secs(seconds);
                        let mut hashes = 0u64;
                        while Instant::now() < deadline {
                            hash_blocking(PASSWORD).expect("argon2id hash");
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

async fn run(settings: Settings) {
    // The raw rate is measured before and after the login phase: on a shared machine it drifts,
    // and the ratio uses the mean of the two.
    println!(
        "[1/4] raw argon2id: {} thread(s) hashing for {} s ...",
        settings.cores, settings.hash_seconds
    );
    let hash_before = raw_hash_rate(settings.cores, settings.hash_seconds).await;
    println!("      {hash_before:.1} hashes/s");

    let dir = tempfile::tempdir().expect("create a temporary directory for the SQLite file");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let fixed: HashMap<&str, String> = [
        ("STEWARD_DATABASE_URL", url),
        ("STEWARD_BIND", "127.0.0.1:0".to_string()),
    ]
    .into();
    let defaults: HashMap<&str, &str> = [("STEWARD_LOG", "warn"), ("STEWARD_DATABASE_POOL_SIZE", "16")].into();
    let config = Config::from_lookup(|k| {
        fixed
            .get(k)
            .cloned()
            .or_else(|| std::env::var(k).ok())
            .or_else(|| defaults.get(k).map(|v| v.to_string()))
    })
    .unwrap_or_else(|e| panic!("invalid server settings: {e}"));
    env_logger::Builder::new().parse_filters(&config.log_filter).init();
    println!(
        "server: {} worker(s), pool {}, hash concurrency {}, SQLite in {}",
        config.workers,
        config.database_pool_size,
        config.hash_concurrency,
        dir.path().display()
    );

    let keys = SigningKeys::ephemeral().expect("generate an in-memory signing key");
    let app = steward::Application::build(config, Arc::new(SystemClock), keys).expect("start the server");
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let handle = app.server_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let token = sign_up_and_log_in(addr).await;
    let window = Duration::from_secs(settings.seconds);

    println!(
        "[2/4] POST /v1/auth/login: {} client(s) for {} s ...",
        settings.login_clients, settings.seconds
    );
    let login_body = json!({ "identifier": EMAIL, "password": PASSWORD }).to_string();
    let login = format!(
        "POST /v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{login_body}",
        login_body.len()
    );
    let login = run_phase(addr, login.into_bytes(), settings.login_clients, window).await;
    login.print_progress();

    println!(
        "[3/4] raw argon2id again: {} thread(s) for {} s (the server is idle) ...",
        settings.cores, settings.hash_seconds
    );
    let hash_after = raw_hash_rate(settings.cores, settings.hash_seconds).await;
    println!("      {hash_after:.1} hashes/s");

    println!(
        "[4/4] GET /v1/me: {} keep-alive connection(s) for {} s (after 1 s of warm-up) ...",
        settings.me_clients, settings.seconds
    );
    let me = format!("GET /v1/me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes();
    let warm_up = run_phase(addr, me.clone(), settings.me_clients, Duration::from_secs(1)).await;
    println!("      warm-up: {} ok, {} error(s)", warm_up.ok, warm_up.errors());
    let me = run_phase(addr, me, settings.me_clients, window).await;
    me.print_progress();

    handle.stop(true).await;
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("server stopped with an error: {e}"),
        Err(e) => eprintln!("server task failed: {e}"),
    }

    summary(&settings, [hash_before, hash_after], &login, &me);
}

/// Creates the benchmark's organization and user, and returns an access token for it.
async fn sign_up_and_log_in(addr: SocketAddr) -> String {
    let client = reqwest::Client::new();
    let signup = client
        .post(format!("http://{addr}/v1/auth/signup"))
        .json(&json!({
            "organization_name": "Bench",
            "email": EMAIL,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "password": PASSWORD,
        }))
        .send()
        .await
        .expect("send the sign-up request");
    let status = signup.status();
    let body = signup.text().await.unwrap_or_default();
    assert!(status.is_success(), "sign-up failed with {status}: {body}");

    let login = client
        .post(format!("http://{addr}/v1/auth/login"))
        .json(&json!({ "identifier": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("send the login request");
    let status = login.status();
    let body = login.text().await.unwrap_or_default();
    assert!(status.is_success(), "login failed with {status}: {body}");
    let body: Value = serde_json::from_str(&body).expect("login response is JSON");
    body["access_token"]
        .as_str()
        .expect("login response has an access_token")
        .to_string()
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
        Ok(Response { status, keep_alive })
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
async fn run_phase(addr: SocketAddr, request: Vec<u8>, clients: usize, window: Duration) -> Tally {
    let request: Arc<[u8]> = request.into();
    let deadline = Instant::now() + window;
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(addr, request.clone(), deadline)))
        .collect();
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

fn summary(settings: &Settings, raw: [f64; 2], login: &Tally, me: &Tally) {
    let row = |name: &str, clients: usize, rate: f64, http: Option<&Tally>| {
        let (p50, p99, errors) = match http {
            Some(t) => (
                format!("{:.2}", t.percentile_ms(0.50)),
                format!("{:.2}", t.percentile_ms(0.99)),
                t.errors().to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!("| {name:<27} | {clients:>7} | {rate:>10.1} | {p50:>7} | {p99:>7} | {errors:>6} |");
    };
    println!();
    println!(
        "Summary: {} core(s), HTTP phases of {} s, one client thread",
        settings.cores, settings.seconds
    );
    println!(
        "| {:<27} | {:>7} | {:>10} | {:>7} | {:>7} | {:>6} |",
        "measure", "clients", "per second", "p50 ms", "p99 ms", "errors"
    );
    println!("|{:-<29}|{:-<9}|{:-<12}|{:-<9}|{:-<9}|{:-<8}|", "", "", "", "", "", "");
    row("argon2id hash, raw (before)", settings.cores, raw[0], None);
    row("argon2id hash, raw (after)", settings.cores, raw[1], None);
    row("POST /v1/auth/login", settings.login_clients, login.rate(), Some(login));
    row("GET /v1/me", settings.me_clients, me.rate(), Some(me));

    let raw_mean = (raw[0] + raw[1]) / 2.0;
    let ratio = 100.0 * login.rate() / raw_mean;
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!();
    println!(
        "logins/s ÷ raw hash rate: {ratio:.1} % of the mean {raw_mean:.1}/s ({:.1} % of before, {:.1} % of after); \
         target >= 90 %: {}",
        100.0 * login.rate() / raw[0],
        100.0 * login.rate() / raw[1],
        verdict(ratio >= 90.0)
    );
    println!(
        "GET /v1/me: {:.0} req/s; target > 10000: {}",
        me.rate(),
        verdict(me.rate() > 10_000.0)
    );
    println!("errors: {} (any non-2xx or I/O failure)", login.errors() + me.errors());
}
