//! What operators can watch: requests by route and status and their latency, the database
//! pool, the outbox, failed logins, rate-limit refusals and password hashing, served at
//! `/metrics` in the Prometheus text format (or OpenMetrics, when the scraper asks for it).
//! The README's "Observability" lists every metric.
//!
//! Each application owns its [`Metrics`] (in `AppState`): counters, gauges and histograms
//! that the code updates as things happen, through the small API below. What is read when
//! scraped (the pool, the outbox depth) arrives as a [`Snapshot`]; [`Metrics::render`] puts
//! both in a registry made for that scrape, so a value that could not be read is absent
//! rather than stale.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error};
use prometheus_client::encoding::{prometheus_text, text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::time::Instant;

use crate::db::repo::notifications::OutboxDepth;
use crate::db::PoolUse;
use crate::rate_limit::Bucket;
use crate::state::AppState;

/// The route label of a request that matched no route: a fixed value, so that scanning
/// random paths cannot create new series.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds (seconds) of the request latency buckets.
const REQUEST_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds (seconds) of the password hashing buckets (argon2id takes tens of ms).
const HASH_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn hash_histogram() -> Histogram {
    Histogram::new(HASH_BUCKETS)
}

/// Why a login was refused, for `steward_login_failures_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Nobody has the identifier.
    UnknownUser,
    WrongPassword,
    /// The user has no password (made by SCIM or restored, and none set yet).
    NoPassword,
    /// The user is archived.
    UserNotActive,
    /// Refused before the password was checked: too many failures (429).
    Throttled,
    /// The right password, but a caretaker manages the account in every organization (R7).
    ManagedAccount,
    /// The right password, but no active organization to log in to.
    NoAccount,
    /// The right password, but `account_id` named no organization of the user.
    UnknownAccount,
}

impl LoginFailure {
    pub const ALL: [Self; 8] = [
        Self::UnknownUser,
        Self::WrongPassword,
        Self::NoPassword,
        Self::UserNotActive,
        Self::Throttled,
        Self::ManagedAccount,
        Self::NoAccount,
        Self::UnknownAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::NoPassword => "no_password",
            Self::UserNotActive => "user_not_active",
            Self::Throttled => "throttled",
            Self::ManagedAccount => "managed_account",
            Self::NoAccount => "no_account",
            Self::UnknownAccount => "unknown_account",
        }
    }
}

/// Where an outbox message was going, for `steward_outbox_deliveries_total{channel}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A notification to its sink (the configured endpoint, or the log).
    Notification,
    /// An event to an integrator's webhook endpoint.
    Webhook,
}

/// How a delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; it will be tried again.
    Failed,
    /// Failed for the last time: the message is now dead.
    Dead,
}

/// A password hashing operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashOperation {
    /// A new hash (sign-up, password change or reset).
    Hash,
    /// A check against a stored hash (login, password confirmation).
    Verify,
}

/// What is read when `/metrics` is scraped.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub pool: PoolUse,
    /// False while the database is marked down (requests answer 503 at once).
    pub database_available: bool,
    /// `None` when it could not be read (the database is down).
    pub outbox: Option<OutboxDepth>,
}

/// The two text formats a scraper may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (the default).
    Prometheus,
    /// OpenMetrics 1.0 text, for a scraper whose `Accept` prefers it.
    OpenMetrics,
}

impl Format {
    /// The format the `Accept` header prefers: OpenMetrics when it ranks that first among
    /// what is offered, else Prometheus text.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Self::Prometheus;
        };
        let mut best = (0.0_f32, Self::Prometheus);
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let format = match parts.next().map(str::to_ascii_lowercase).as_deref() {
                Some("application/openmetrics-text") => Self::OpenMetrics,
                Some("text/plain" | "text/*" | "*/*") => Self::Prometheus,
                _ => continue,
            };
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > best.0 {
                best = (q, format);
            }
        }
        best.1
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Password hashing: how many run and wait, how long each takes, how many were turned away.
#[derive(Clone)]
pub struct HashMetrics {
    in_progress: Gauge,
    waiting: Gauge,
    duration: Histograms<OperationLabel>,
    rejected: Counter,
}

impl Default for HashMetrics {
    fn default() -> Self {
        let metrics = Self {
            in_progress: Gauge::default(),
            waiting: Gauge::default(),
            duration: Family::new_with_constructor(hash_histogram),
            rejected: Counter::default(),
        };
        for operation in [HashOperation::Hash, HashOperation::Verify] {
            drop(metrics.duration.get_or_create(&OperationLabel::of(operation)));
        }
        metrics
    }
}

impl OperationLabel {
    fn of(operation: HashOperation) -> Self {
        let operation = match operation {
            HashOperation::Hash => "hash",
            HashOperation::Verify => "verify",
        };
        Self { operation }
    }
}

/// Counts a task in a gauge while it lives.
pub struct InGauge(Gauge);

impl Drop for InGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A hash being computed: counted as in progress, and timed, until dropped.
pub struct Hashing {
    _in_progress: InGauge,
    histogram: Histogram,
    started: Instant,
}

impl Drop for Hashing {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

impl HashMetrics {
    /// A request waiting for a hashing thread, until the guard is dropped.
    pub fn waiting(&self) -> InGauge {
        self.waiting.inc();
        InGauge(self.waiting.clone())
    }

    /// A hash running, until the guard is dropped.
    pub fn hashing(&self, operation: HashOperation) -> Hashing {
        self.in_progress.inc();
        Hashing {
            _in_progress: InGauge(self.in_progress.clone()),
            histogram: self.duration.get_or_create(&OperationLabel::of(operation)).clone(),
            started: Instant::now(),
        }
    }

    /// A request that waited too long for a hashing thread (503).
    pub fn rejected(&self) {
        self.rejected.inc();
    }
}

/// The application's metrics. Clones share the same values.
#[derive(Clone)]
pub struct Metrics {
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<HttpLabels>,
    login_failures: Family<ReasonLabel, Counter>,
    rate_limited: Family<LimitLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    hashing: HashMetrics,
}

impl Default for Metrics {
    /// Every series whose labels are known in advance starts at 0, so that it is there to
    /// be found, and `rate()` sees its first increase.
    fn default() -> Self {
        let metrics = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_histogram),
            login_failures: Family::default(),
            rate_limited: Family::default(),
            deliveries: Family::default(),
            hashing: HashMetrics::default(),
        };
        for reason in LoginFailure::ALL {
            drop(metrics.login_failures.get_or_create(&ReasonLabel::of(reason)));
        }
        for bucket in Bucket::ALL {
            drop(metrics.rate_limited.get_or_create(&LimitLabel::of(bucket)));
        }
        for channel in [Channel::Notification, Channel::Webhook] {
            for outcome in [
                DeliveryOutcome::Delivered,
                DeliveryOutcome::Failed,
                DeliveryOutcome::Dead,
            ] {
                drop(metrics.deliveries.get_or_create(&DeliveryLabels::of(channel, outcome)));
            }
        }
        metrics
    }
}

impl ReasonLabel {
    fn of(reason: LoginFailure) -> Self {
        Self {
            reason: reason.as_str(),
        }
    }
}

impl LimitLabel {
    fn of(bucket: Bucket) -> Self {
        Self { limit: bucket.as_str() }
    }
}

impl DeliveryLabels {
    fn of(channel: Channel, outcome: DeliveryOutcome) -> Self {
        Self {
            channel: match channel {
                Channel::Notification => "notification",
                Channel::Webhook => "webhook",
            },
            outcome: match outcome {
                DeliveryOutcome::Delivered => "delivered",
                DeliveryOutcome::Failed => "failed",
                DeliveryOutcome::Dead => "dead",
            },
        }
    }
}

impl Metrics {
    /// The hashing metrics, for the password hashing pool.
    pub fn hashing(&self) -> HashMetrics {
        self.hashing.clone()
    }

    /// One answered request: `route` is the matched template (or [`UNMATCHED`]).
    pub fn request(&self, method: &Method, route: Option<String>, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method: method_label(method),
            route: route.unwrap_or_else(|| UNMATCHED.to_string()),
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(seconds);
    }

    pub fn login_failed(&self, reason: LoginFailure) {
        self.login_failures.get_or_create(&ReasonLabel::of(reason)).inc();
    }

    /// An event a rate limit refused (429).
    pub fn rate_limited(&self, bucket: Bucket) {
        self.rate_limited.get_or_create(&LimitLabel::of(bucket)).inc();
    }

    pub fn delivery(&self, channel: Channel, outcome: DeliveryOutcome) {
        self.deliveries
            .get_or_create(&DeliveryLabels::of(channel, outcome))
            .inc();
    }

    /// Every metric, with the scrape's snapshot, in `format`.
    pub fn render(&self, snapshot: &Snapshot, format: Format) -> Result<String, std::fmt::Error> {
        let registry = self.registry(snapshot);
        let mut out = String::new();
        match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &registry)?,
            Format::OpenMetrics => text::encode(&mut out, &registry)?,
        }
        Ok(out)
    }

    fn registry(&self, snapshot: &Snapshot) -> Registry {
        let mut r = Registry::with_prefix("steward");
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (until the response starts), by method, route template and status",
            Unit::Seconds,
            self.http_duration.clone(),
        );
        r.register(
            "login_failures",
            "Refused logins, by reason",
            self.login_failures.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit (429), by limit",
            self.rate_limited.clone(),
        );
        r.register(
            "outbox_deliveries",
            "Outbox delivery attempts, by channel and outcome (delivered, failed and retried later, dead)",
            self.deliveries.clone(),
        );
        let h = &self.hashing;
        r.register(
            "password_hashes_in_progress",
            "Password hashes being computed now",
            h.in_progress.clone(),
        );
        r.register(
            "password_hashes_waiting",
            "Requests waiting for a password hashing thread",
            h.waiting.clone(),
        );
        r.register_with_unit(
            "password_hash_duration",
            "Time to compute one password hash, by operation (hash, verify)",
            Unit::Seconds,
            h.duration.clone(),
        );
        r.register(
            "password_hash_rejected",
            "Requests that waited too long for a hashing thread (503)",
            h.rejected.clone(),
        );
        Self::register_snapshot(&mut r, snapshot);
        r
    }

    fn register_snapshot(r: &mut Registry, snapshot: &Snapshot) {
        let gauge = |value: i64| {
            let g: Gauge = Gauge::default();
            g.set(value);
            g
        };
        let pool: Family<StateLabel, Gauge> = Family::default();
        pool.get_or_create(&StateLabel { state: "in_use" })
            .set(i64::from(snapshot.pool.in_use));
        pool.get_or_create(&StateLabel { state: "idle" })
            .set(i64::from(snapshot.pool.idle));
        r.register(
            "db_pool_connections",
            "Database connections open, by state (in_use, idle)",
            pool,
        );
        r.register(
            "db_pool_max_connections",
            "The most connections the pool opens",
            gauge(i64::from(snapshot.pool.max)),
        );
        r.register(
            "db_available",
            "0 while the database is marked down (requests answer 503 at once), else 1",
            gauge(i64::from(snapshot.database_available)),
        );
        if let Some(depth) = &snapshot.outbox {
            let pending: Family<StateLabel, Gauge> = Family::default();
            pending.get_or_create(&StateLabel { state: "due" }).set(depth.due);
            pending
                .get_or_create(&StateLabel { state: "scheduled" })
                .set(depth.scheduled);
            r.register(
                "outbox_pending",
                "Outbox messages not yet delivered, by state (due now, scheduled for a later retry)",
                pending,
            );
            r.register(
                "outbox_dead",
                "Outbox messages given up on after the last attempt",
                gauge(depth.dead),
            );
        }
    }
}

/// The method as a label: the standard methods by name, anything else as `OTHER`, so that
/// made-up methods cannot create new series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method.as_str()).unwrap_or("OTHER")
}

/// Middleware: counts and times every request by method, route template and status.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let method = crate::routing::original_method(&req);
    let route = req.match_pattern();
    let res = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &res {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        metrics.request(&method, route, status.as_u16(), started.elapsed().as_secs_f64());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        Format::negotiate(&headers)
    }

    #[test]
    fn the_scraper_chooses_the_format() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Prometheus);
        assert_eq!(accept("*/*"), Format::Prometheus);
        assert_eq!(accept("text/plain;version=0.0.4"), Format::Prometheus);
        // What Prometheus sends.
        assert_eq!(
            accept("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        assert_eq!(
            accept("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
    }

    #[test]
    fn both_formats_render_every_metric() {
        let metrics = Metrics::default();
        metrics.request(&Method::GET, Some("/v1/users/{id}".into()), 200, 0.012);
        metrics.request(&Method::from_bytes(b"BREW").unwrap(), None, 404, 0.001);
        metrics.login_failed(LoginFailure::WrongPassword);
        metrics.rate_limited(Bucket::LoginAccount);
        metrics.delivery(Channel::Webhook, DeliveryOutcome::Dead);
        drop(metrics.hashing().hashing(HashOperation::Verify));
        let snapshot = Snapshot {
            pool: PoolUse {
                in_use: 1,
                idle: 2,
                max: 10,
            },
            database_available: true,
            outbox: Some(OutboxDepth {
                due: 3,
                scheduled: 4,
                dead: 5,
            }),
        };
        let text = metrics.render(&snapshot, Format::Prometheus).unwrap();
        for line in [
            "# TYPE steward_http_requests_total counter",
            r#"steward_http_requests_total{method="GET",route="/v1/users/{id}",status="200"} 1"#,
            r#"steward_http_requests_total{method="OTHER",route="unmatched",status="404"} 1"#,
            r#"steward_http_request_duration_seconds_bucket{method="GET",route="/v1/users/{id}",status="200",le="0.025"} 1"#,
            r#"steward_login_failures_total{reason="wrong_password"} 1"#,
            r#"steward_rate_limited_total{limit="login.account"} 1"#,
            r#"steward_outbox_deliveries_total{channel="webhook",outcome="dead"} 1"#,
            "steward_password_hashes_in_progress 0",
            r#"steward_login_failures_total{reason="managed_account"} 0"#,
            r#"steward_rate_limited_total{limit="invite.organization"} 0"#,
            r#"steward_outbox_deliveries_total{channel="notification",outcome="delivered"} 0"#,
            r#"steward_password_hash_duration_seconds_count{operation="hash"} 0"#,
            r#"steward_password_hash_duration_seconds_count{operation="verify"} 1"#,
            r#"steward_db_pool_connections{state="in_use"} 1"#,
            "steward_db_pool_max_connections 10",
            "steward_db_available 1",
            r#"steward_outbox_pending{state="scheduled"} 4"#,
            "steward_outbox_dead 5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(!text.contains("# EOF"));
        let open = metrics.render(&snapshot, Format::OpenMetrics).unwrap();
        assert!(open.ends_with("# EOF\n"), "{open}");

        let down = Snapshot {
            database_available: false,
            outbox: None,
            ..snapshot
        };
        let text = metrics.render(&down, Format::Prometheus).unwrap();
        assert!(text.contains("steward_db_available 0"));
        assert!(!text.contains("steward_outbox_dead"), "absent, not stale");
    }
}
