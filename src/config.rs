//! Every setting, read from the environment (and an optional `.env` file) and validated
//! once at start. A bad value stops start-up with one line that names the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::client_addr::{IpNet, ProxyTrust};
use crate::rate_limit::Limit;
use crate::worker_cpus::WorkerPinning;

/// Where the data lives; chosen from the URL's scheme, never by trial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file path.
    Sqlite(String),
    /// A PostgreSQL connection URL, passed to libpq as given.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_string()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .ok_or_else(|| "expected a URL starting with sqlite:// or postgres:// (or postgresql://)".to_string())?;
        if path.is_empty() {
            return Err("the sqlite:// URL names no file".into());
        }
        if path.contains(":memory:") || path.contains("mode=memory") {
            // Each connection would get a database of its own: the pool's, the writer's and
            // the migrations' would all differ.
            return Err("an in-memory SQLite database exists once per connection; name a file".into());
        }
        Ok(Self::Sqlite(path.to_string()))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub database_pool_size: u32,
    pub bind: SocketAddr,
    pub workers: usize,
    /// Whether each HTTP worker gets a CPU of its own (see `worker_cpus`).
    pub pin_workers: WorkerPinning,
    /// Base of every link Steward puts in a message (reset links, invitations).
    pub public_url: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    /// How far past `exp` an access token is still accepted (clock skew between instances).
    pub access_token_leeway: Duration,
    pub refresh_token_ttl: Duration,
    pub password_reset_ttl: Duration,
    pub invite_ttl: Duration,
    pub open_signup: bool,
    pub signing_key_file: PathBuf,
    /// Public keys of retired signing keys, kept so their tokens verify until they expire.
    pub retired_signing_keys_dir: PathBuf,
    /// Origins whose pages may call the API from a browser; empty: CORS closed.
    pub cors_allowed_origins: Vec<String>,
    pub log_filter: String,
    pub max_body_bytes: usize,
    /// How many password hashes may run at once; more wait their turn.
    pub hash_concurrency: usize,
    /// How often the outbox worker looks for due notifications.
    pub outbox_poll_interval: Duration,
    /// Attempts before a notification is given up on (`dead`).
    pub outbox_max_attempts: i32,
    /// Where notifications are delivered (HTTP POST, signed); `None`: the log.
    pub notify_url: Option<String>,
    /// The Standard Webhooks secret that signs deliveries; required with `notify_url`.
    pub notify_secret: Option<crate::notify::SigningSecret>,
    /// How long one delivery attempt may take.
    pub notify_timeout: Duration,
    /// The longest impersonation a request may ask for, in minutes (R9).
    pub impersonation_max_minutes: u32,
    /// Webhook endpoints may be loopback, private or link-local addresses (SSRF guard off).
    pub webhook_allow_private: bool,
    /// How long a request waits for a database connection before it answers 503.
    pub database_timeout: Duration,
    /// Abuse throttling (`None`: that limit is off).
    pub limits: RateLimits,
    /// Which forwarding header names the client's address, and from which proxies.
    pub proxy_trust: ProxyTrust,
    /// The bearer token `/metrics` asks for; `None`: `/metrics` does not exist (404).
    pub metrics_token: Option<MetricsToken>,
    /// How log lines are written: plain text, or one JSON object per line.
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's human-readable lines (the default).
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `msg`, and the request's fields).
    Json,
}

/// The token that opens `/metrics`. Only its SHA-256 digest is kept, and a presented token
/// is compared digest to digest in constant time, so neither its content nor its length
/// leaks through timing.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// 16 to 512 visible ASCII characters (what fits in an `Authorization` header as is).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !(16..=512).contains(&raw.len()) {
            return Err("must be 16 to 512 characters long (use a random one, e.g. `openssl rand -hex 32`)".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters, without spaces".into());
        }
        Ok(Self(Self::digest(raw)))
    }

    fn digest(raw: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(raw.as_bytes()).into()
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(Self::digest(presented).ct_eq(&self.0))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

/// The limits on what can be abused: guessing passwords and sending email.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub login_per_account: Option<Limit>,
    pub login_per_address: Option<Limit>,
    pub reset_per_email: Option<Limit>,
    pub reset_per_address: Option<Limit>,
    pub signup_per_address: Option<Limit>,
    pub invites_per_organization: Option<Limit>,
}

/// A setting that could not be used: names the variable and says why.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

/// Every variable, its default and its meaning: the single source for `.env.example`
/// and the README's table.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "STEWARD_DATABASE_URL",
        "sqlite://steward.db",
        "sqlite://PATH (embedded, default) or postgres://USER@HOST/DB",
    ),
    ("STEWARD_DATABASE_POOL_SIZE", "10", "connections in the pool"),
    ("STEWARD_BIND", "127.0.0.1:8080", "address and port to listen on"),
    ("STEWARD_WORKERS", "number of cores", "HTTP worker threads"),
    (
        "STEWARD_PUBLIC_URL",
        "http://localhost:8080",
        "public base URL, used in links sent by email",
    ),
    ("STEWARD_JWT_ISSUER", "STEWARD_PUBLIC_URL", "`iss` of access tokens"),
    ("STEWARD_JWT_AUDIENCE", "steward", "`aud` of access tokens"),
    (
        "STEWARD_ACCESS_TOKEN_TTL",
        "15m",
        "access token lifetime (e.g. 900s, 15m)",
    ),
    (
        "STEWARD_ACCESS_TOKEN_LEEWAY",
        "30s",
        "how long past its expiry an access token is still accepted (clock skew between instances; 0s to 5m)",
    ),
    ("STEWARD_REFRESH_TOKEN_TTL", "30d", "refresh token lifetime"),
    ("STEWARD_PASSWORD_RESET_TTL", "1h", "password reset link lifetime"),
    ("STEWARD_INVITE_TTL", "30d", "invitation lifetime"),
    (
        "STEWARD_OPEN_SIGNUP",
        "true",
        "whether anyone may sign up a new organization",
    ),
    (
        "STEWARD_SIGNING_KEY_FILE",
        "steward-signing-key.pem",
        "Ed25519 private key (PKCS#8 PEM); generated on first start if missing",
    ),
    (
        "STEWARD_RETIRED_SIGNING_KEYS_DIR",
        "STEWARD_SIGNING_KEY_FILE + .retired",
        "public keys of retired signing keys (written by `steward rotate-signing-key`); published and accepted until their tokens expire",
    ),
    (
        "STEWARD_CORS_ALLOWED_ORIGINS",
        "(none: CORS closed)",
        "comma-separated origins (https://app.example.com) whose pages may call the API from a browser",
    ),
    (
        "STEWARD_LOG",
        "info",
        "log filter, env_logger syntax (e.g. info,steward=debug)",
    ),
    (
        "STEWARD_LOG_FORMAT",
        "text",
        "`text`, or `json`: one JSON object per line, with the request id, real actor and effective user on a request's lines",
    ),
    (
        "STEWARD_METRICS_TOKEN",
        "(none: /metrics off)",
        "bearer token (16 to 512 visible characters) that opens `/metrics` (Prometheus text format); unset, `/metrics` answers 404",
    ),
    ("STEWARD_MAX_BODY_BYTES", "65536", "largest accepted JSON body"),
    (
        "STEWARD_HASH_CONCURRENCY",
        "number of cores",
        "password hashes computed at once",
    ),
    (
        "STEWARD_OUTBOX_POLL_INTERVAL",
        "1s",
        "how often the notification outbox is polled",
    ),
    (
        "STEWARD_OUTBOX_MAX_ATTEMPTS",
        "10",
        "delivery attempts before a notification is marked dead",
    ),
    (
        "STEWARD_NOTIFY_URL",
        "(none: the log)",
        "http(s) endpoint that receives every notification as signed JSON",
    ),
    (
        "STEWARD_NOTIFY_SECRET",
        "(none)",
        "Standard Webhooks signing secret (whsec_…); required with STEWARD_NOTIFY_URL",
    ),
    (
        "STEWARD_NOTIFY_TIMEOUT",
        "10s",
        "how long one delivery attempt may take",
    ),
    (
        "STEWARD_WEBHOOK_ALLOW_PRIVATE",
        "false",
        "let webhook endpoints be loopback, private or link-local addresses (tests, closed networks)",
    ),
    (
        "STEWARD_IMPERSONATION_MAX_MINUTES",
        "240",
        "longest impersonation a request may ask for, in minutes (the default is 60, or this if shorter)",
    ),
    (
        "STEWARD_DATABASE_TIMEOUT",
        "800ms",
        "how long a request waits for a database connection before it answers 503 `database-unavailable`",
    ),
    (
        "STEWARD_LIMIT_LOGIN_PER_ACCOUNT",
        "10/15m",
        "failed logins per login identifier (email or username, known or not) per window; `off` disables",
    ),
    (
        "STEWARD_LIMIT_LOGIN_PER_ADDRESS",
        "100/15m",
        "failed logins per client address per window",
    ),
    (
        "STEWARD_LIMIT_PASSWORD_RESET_PER_EMAIL",
        "5/1h",
        "password reset requests per email address per window",
    ),
    (
        "STEWARD_LIMIT_PASSWORD_RESET_PER_ADDRESS",
        "20/1h",
        "password reset requests per client address per window",
    ),
    (
        "STEWARD_LIMIT_SIGNUP_PER_ADDRESS",
        "10/1h",
        "sign-ups per client address per window",
    ),
    (
        "STEWARD_LIMIT_INVITES_PER_ORGANIZATION",
        "100/1h",
        "invitation emails (sent and resent) per organization per window",
    ),
    (
        "STEWARD_TRUSTED_PROXY_HEADER",
        "(none: the peer address)",
        "header that carries the client address from a trusted proxy, e.g. X-Forwarded-For or Forwarded",
    ),
    (
        "STEWARD_TRUSTED_PROXIES",
        "(none)",
        "comma-separated addresses or CIDR networks of the proxies whose header is believed; required with STEWARD_TRUSTED_PROXY_HEADER",
    ),
];

impl Config {
    /// Reads `.env` if present, then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str, default: &str| -> (&'static str, String) {
            let value = lookup(var).filter(|v| !v.trim().is_empty());
            (var, value.unwrap_or_else(|| default.to_string()))
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let (var, raw) = get("STEWARD_DATABASE_URL", "sqlite://steward.db");
        let database_url = DatabaseUrl::parse(&raw).map_err(|reason| invalid(var, &raw, reason))?;
        let database_pool_size = parse_number(get("STEWARD_DATABASE_POOL_SIZE", "10"), 1, 1000)?;
        let (var, raw) = get("STEWARD_BIND", "127.0.0.1:8080");
        let bind = raw
            .parse()
            .map_err(|_| invalid(var, &raw, "expected HOST:PORT, e.g. 127.0.0.1:8080"))?;
        let workers = parse_number(get("STEWARD_WORKERS", &cores.to_string()), 1, 1024)?;
        let (var, raw) = get("STEWARD_PIN_WORKERS", "auto");
        let pin_workers = match raw.trim().to_ascii_lowercase().as_str() {
            "auto" => WorkerPinning::Auto,
            "off" => WorkerPinning::Off,
            _ => return Err(invalid(var, &raw, "expected auto or off")),
        };
        let (var, raw) = get("STEWARD_PUBLIC_URL", "http://localhost:8080");
        if !(raw.starts_with("http://") || raw.starts_with("https://")) {
            return Err(invalid(var, &raw, "expected an http:// or https:// URL"));
        }
        let public_url = raw.trim_end_matches('/').to_string();
        let (_, jwt_issuer) = get("STEWARD_JWT_ISSUER", &public_url);
        let (_, jwt_audience) = get("STEWARD_JWT_AUDIENCE", "steward");
        let access_token_ttl = parse_duration(get("STEWARD_ACCESS_TOKEN_TTL", "15m"))?;
        let (var, raw) = get("STEWARD_ACCESS_TOKEN_LEEWAY", "30s");
        let access_token_leeway = match humantime::parse_duration(raw.trim()) {
            Ok(d) if d <= Duration::from_secs(300) => d,
            _ => return Err(invalid(var, &raw, "expected a duration from 0s to 5m")),
        };
        let refresh_token_ttl = parse_duration(get("STEWARD_REFRESH_TOKEN_TTL", "30d"))?;
        let password_reset_ttl = parse_duration(get("STEWARD_PASSWORD_RESET_TTL", "1h"))?;
        let invite_ttl = parse_duration(get("STEWARD_INVITE_TTL", "30d"))?;
        let (var, raw) = get("STEWARD_OPEN_SIGNUP", "true");
        let open_signup = match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(invalid(var, &raw, "expected true or false")),
        };
        let (_, key_file) = get("STEWARD_SIGNING_KEY_FILE", "steward-signing-key.pem");
        let (_, retired_dir) = get("STEWARD_RETIRED_SIGNING_KEYS_DIR", &format!("{key_file}.retired"));
        let (var, raw) = get("STEWARD_CORS_ALLOWED_ORIGINS", "");
        let cors_allowed_origins = raw
            .split(',')
            .filter(|o| !o.trim().is_empty())
            .map(crate::cors::parse_origin)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| invalid(var, &raw, reason))?;
        let (var, log_filter) = get("STEWARD_LOG", "info");
        if env_filter::Builder::new().try_parse(&log_filter).is_err() {
            return Err(invalid(var, &log_filter, "not an env_logger filter"));
        }
        let (var, raw) = get("STEWARD_LOG_FORMAT", "text");
        let log_format = match raw.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid(var, &raw, "expected text or json")),
        };
        let (var, raw) = get("STEWARD_METRICS_TOKEN", "");
        let metrics_token = match raw.trim() {
            "" => None,
            token => Some(MetricsToken::parse(token).map_err(|reason| invalid(var, "(hidden)", reason))?),
        };
        let max_body_bytes = parse_number(get("STEWARD_MAX_BODY_BYTES", "65536"), 1024, 64 << 20)?;
        let hash_concurrency = parse_number(get("STEWARD_HASH_CONCURRENCY", &cores.to_string()), 1, 256)?;
        let outbox_poll_interval = parse_duration(get("STEWARD_OUTBOX_POLL_INTERVAL", "1s"))?;
        let outbox_max_attempts = parse_number(get("STEWARD_OUTBOX_MAX_ATTEMPTS", "10"), 1, 100)? as i32;
        let (var, raw) = get("STEWARD_NOTIFY_URL", "");
        let notify_url = match raw.trim() {
            "" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => Some(url.to_string()),
            _ => return Err(invalid(var, &raw, "expected an http:// or https:// URL")),
        };
        let (var, raw) = get("STEWARD_NOTIFY_SECRET", "");
        let notify_secret = match raw.trim() {
            "" if notify_url.is_some() => return Err(invalid(var, "", "required when STEWARD_NOTIFY_URL is set")),
            "" => None,
            secret => {
                Some(crate::notify::SigningSecret::parse(secret).map_err(|reason| invalid(var, "(hidden)", reason))?)
            }
        };
        let notify_timeout = parse_duration(get("STEWARD_NOTIFY_TIMEOUT", "10s"))?;
        let (var, raw) = get("STEWARD_WEBHOOK_ALLOW_PRIVATE", "false");
        let webhook_allow_private = match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(invalid(var, &raw, "expected true or false")),
        };
        let impersonation_max_minutes = parse_number(get("STEWARD_IMPERSONATION_MAX_MINUTES", "240"), 1, 1440)? as u32;
        let database_timeout = parse_duration(get("STEWARD_DATABASE_TIMEOUT", "800ms"))?;
        let limit =
            |(var, raw): (&'static str, String)| Limit::parse(&raw).map_err(|reason| invalid(var, &raw, reason));
        let limits = RateLimits {
            login_per_account: limit(get("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "10/15m"))?,
            login_per_address: limit(get("STEWARD_LIMIT_LOGIN_PER_ADDRESS", "100/15m"))?,
            reset_per_email: limit(get("STEWARD_LIMIT_PASSWORD_RESET_PER_EMAIL", "5/1h"))?,
            reset_per_address: limit(get("STEWARD_LIMIT_PASSWORD_RESET_PER_ADDRESS", "20/1h"))?,
            signup_per_address: limit(get("STEWARD_LIMIT_SIGNUP_PER_ADDRESS", "10/1h"))?,
            invites_per_organization: limit(get("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "100/1h"))?,
        };
        let proxy_trust = parse_proxy_trust(
            get("STEWARD_TRUSTED_PROXY_HEADER", ""),
            get("STEWARD_TRUSTED_PROXIES", ""),
        )?;

        Ok(Self {
            database_url,
            database_pool_size: database_pool_size as u32,
            bind,
            workers,
            pin_workers,
            public_url,
            jwt_issuer,
            jwt_audience,
            access_token_ttl,
            access_token_leeway,
            refresh_token_ttl,
            password_reset_ttl,
            invite_ttl,
            open_signup,
            signing_key_file: PathBuf::from(key_file),
            retired_signing_keys_dir: PathBuf::from(retired_dir),
            cors_allowed_origins,
            log_filter,
            max_body_bytes,
            hash_concurrency,
            outbox_poll_interval,
            outbox_max_attempts,
            notify_url,
            notify_secret,
            notify_timeout,
            impersonation_max_minutes,
            webhook_allow_private,
            database_timeout,
            limits,
            proxy_trust,
            metrics_token,
            log_format,
        })
    }
}

impl Config {
    /// How long a retired signing key must stay accepted: the longest an access token it
    /// signed can live (a normal one, or an impersonation's, which lasts its session), plus
    /// the leeway.
    pub fn retired_key_keep(&self) -> chrono::Duration {
        let longest = self
            .access_token_ttl
            .max(Duration::from_secs(u64::from(self.impersonation_max_minutes) * 60));
        chrono::Duration::from_std(longest + self.access_token_leeway).unwrap_or(chrono::Duration::MAX)
    }
}

fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_number((var, raw): (&'static str, String), min: usize, max: usize) -> Result<usize, ConfigError> {
    match raw.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            var,
            &raw,
            format!("expected a whole number from {min} to {max}"),
        )),
    }
}

/// A header is believed only from listed proxies, so each needs the other.
fn parse_proxy_trust(
    (header_var, header): (&'static str, String),
    (proxies_var, proxies): (&'static str, String),
) -> Result<ProxyTrust, ConfigError> {
    let header = header.trim();
    let nets = proxies
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(IpNet::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| invalid(proxies_var, &proxies, reason))?;
    match (header.is_empty(), nets.is_empty()) {
        (true, true) => Ok(ProxyTrust::default()),
        (false, true) => Err(invalid(
            proxies_var,
            &proxies,
            format!("required with {header_var}: name the proxies whose header is believed"),
        )),
        (true, false) => Err(invalid(header_var, "", format!("required with {proxies_var}"))),
        (false, false) => {
            if actix_web::http::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(invalid(header_var, header, "not a header name"));
            }
            Ok(ProxyTrust {
                header: Some(header.to_string()),
                proxies: nets,
            })
        }
    }
}

fn parse_duration((var, raw): (&'static str, String)) -> Result<Duration, ConfigError> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(invalid(var, &raw, "must be longer than zero")),
        Err(_) => Err(invalid(var, &raw, "expected a duration such as 90s, 15m, 1h or 30d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.database_url, DatabaseUrl::Sqlite("steward.db".into()));
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.access_token_ttl, Duration::from_secs(15 * 60));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 24 * 3600));
        assert!(c.open_signup);
        assert_eq!(c.access_token_leeway, Duration::from_secs(30));
        assert!(c.cors_allowed_origins.is_empty(), "CORS is closed by default");
        assert_eq!(
            c.retired_signing_keys_dir,
            PathBuf::from("steward-signing-key.pem.retired")
        );
        assert_eq!(c.limits.login_per_account.map(|l| l.max), Some(10));
        assert!(
            c.proxy_trust.header.is_none(),
            "no forwarding header is believed by default"
        );
    }

    #[test]
    fn workers_are_pinned_automatically_unless_turned_off() {
        assert_eq!(config(&[]).unwrap().pin_workers, WorkerPinning::Auto);
        let c = config(&[("STEWARD_PIN_WORKERS", " OFF ")]).unwrap();
        assert_eq!(c.pin_workers, WorkerPinning::Off);
        let err = config(&[("STEWARD_PIN_WORKERS", "yes")]).unwrap_err();
        assert_eq!(err.var, "STEWARD_PIN_WORKERS");
    }

    #[test]
    fn a_proxy_header_needs_its_proxies() {
        let c = config(&[
            ("STEWARD_TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
            ("STEWARD_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(c.proxy_trust.proxies.len(), 2);
        let c = config(&[("STEWARD_LIMIT_INVITES_PER_ORGANIZATION", "off")]).unwrap();
        assert!(c.limits.invites_per_organization.is_none());
        let err = config(&[("STEWARD_TRUSTED_PROXY_HEADER", "X-Forwarded-For")]).unwrap_err();
        assert_eq!(err.var, "STEWARD_TRUSTED_PROXIES");
    }

    #[test]
    fn metrics_are_off_by_default_and_the_token_is_kept_as_a_digest() {
        let c = config(&[]).unwrap();
        assert!(c.metrics_token.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
        let c = config(&[
            ("STEWARD_METRICS_TOKEN", "0123456789abcdef-scrape"),
            ("STEWARD_LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        let token = c.metrics_token.expect("configured");
        assert!(token.matches("0123456789abcdef-scrape"));
        assert!(!token.matches("0123456789abcdef-scrapE"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "MetricsToken(…)");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn backend_is_chosen_by_scheme() {
        let c = config(&[("STEWARD_DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(c.database_url.backend_name(), "postgres");
        let err = config(&[("STEWARD_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(err.var, "STEWARD_DATABASE_URL");
        for memory in [
            "sqlite://:memory:",
            "sqlite:file::memory:?cache=shared",
            "sqlite://file:x?mode=memory",
        ] {
            let err = config(&[("STEWARD_DATABASE_URL", memory)]).unwrap_err();
            assert_eq!(err.var, "STEWARD_DATABASE_URL", "{memory}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("STEWARD_BIND", "nowhere"),
            ("STEWARD_ACCESS_TOKEN_TTL", "soon"),
            ("STEWARD_ACCESS_TOKEN_TTL", "0s"),
            ("STEWARD_OPEN_SIGNUP", "maybe"),
            ("STEWARD_DATABASE_POOL_SIZE", "0"),
            ("STEWARD_PUBLIC_URL", "example.com"),
            ("STEWARD_CORS_ALLOWED_ORIGINS", "https://a.example, *"),
            ("STEWARD_ACCESS_TOKEN_LEEWAY", "1h"),
            ("STEWARD_LIMIT_LOGIN_PER_ACCOUNT", "ten"),
            ("STEWARD_LIMIT_SIGNUP_PER_ADDRESS", "0/1h"),
            ("STEWARD_TRUSTED_PROXIES", "10.0.0.300"),
            ("STEWARD_DATABASE_TIMEOUT", "0s"),
            ("STEWARD_METRICS_TOKEN", "too-short"),
            ("STEWARD_METRICS_TOKEN", "has a space in the middle"),
            ("STEWARD_LOG_FORMAT", "xml"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(&format!("invalid {var}=")));
        }
    }
}

#[cfg(test)]
mod documentation {
    use super::VARIABLES;

    #[test]
    fn env_example_lists_every_variable() {
        let example = include_str!("../.env.example");
        for (var, _, _) in VARIABLES {
            assert!(example.contains(&format!("{var}=")), ".env.example does not list {var}");
        }
    }
}
