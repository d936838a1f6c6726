//! The notification outbox worker. Messages are written in the same transaction as their
//! cause (see `db::repo::notifications::enqueue`); this worker leases due messages, hands
//! each to a sink, and records the outcome. A failed delivery is retried with exponential
//! backoff and jitter and given up on (`dead`) after the configured number of attempts; a
//! worker that crashes mid-way loses only its lease, so every message is delivered at least
//! once, even across a crash or restart and with several instances polling one database
//! (R13).
//!
//! Two sinks: [`HttpSink`] posts each message as JSON to a configured endpoint (a mail
//! provider's HTTP API or an integrator's relay), signed the Standard Webhooks way;
//! [`LogSink`] prints it, for development, when no endpoint is configured.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use futures_util::future::{self, BoxFuture};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::db::models::{NotificationRow, WebhookEndpointRow};
use crate::db::repo::{notifications, webhooks};
use crate::db::{Db, DbError};
use crate::metrics::{Channel, DeliveryOutcome, Metrics};

const BATCH: i64 = 50;
const LEASE_SECS: i64 = 60;

/// Where messages go.
pub trait Sink: Send + Sync + 'static {
    fn deliver<'a>(&'a self, message: &'a NotificationRow) -> BoxFuture<'a, Result<(), String>>;
}

/// Prints each message to the log. The default until a delivery endpoint is configured;
/// note that it prints links (reset, invitation) into the log, which suits development only.
pub struct LogSink;

impl Sink for LogSink {
    fn deliver<'a>(&'a self, m: &'a NotificationRow) -> BoxFuture<'a, Result<(), String>> {
        log::info!(
            target: "steward::notify",
            "{} to {}{}: {}\n{}",
            m.id,
            m.recipient_email,
            m.on_behalf_of_user_id.as_deref().map(|u| format!(" (for {u})")).unwrap_or_default(),
            m.subject,
            m.body
        );
        Box::pin(future::ready(Ok(())))
    }
}

/// The JSON body an endpoint receives (documented in the README, "Notification delivery").
#[derive(Debug, Serialize)]
pub struct Delivery<'a> {
    /// The notification's id (`ntf_…`), also the `webhook-id` header: the idempotency key
    /// for a receiver, since delivery is at least once.
    pub id: &'a str,
    /// What the message is about (`invite`, `password_reset`, …).
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub created_at: String,
    pub account_id: Option<&'a str>,
    pub recipient: Recipient<'a>,
    /// Set when the message is for a managed user and goes to their caretaker (R7).
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
    pub subject: &'a str,
    pub body: &'a str,
    /// Structured details of the message (links, ids), by kind.
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub user_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct OnBehalfOf<'a> {
    pub user_id: &'a str,
}

impl<'a> Delivery<'a> {
    pub fn of(m: &'a NotificationRow) -> Self {
        Self {
            id: m.id.as_str(),
            kind: &m.kind,
            created_at: format!("{}Z", m.created_at.format("%Y-%m-%dT%H:%M:%S%.6f")),
            account_id: m.account_id.as_deref(),
            recipient: Recipient {
                email: &m.recipient_email,
                user_id: m.recipient_user_id.as_deref(),
            },
            on_behalf_of: m.on_behalf_of_user_id.as_deref().map(|user_id| OnBehalfOf { user_id }),
            subject: &m.subject,
            body: &m.body,
            data: serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A Standard Webhooks signing secret: `whsec_` followed by base64 of 24 to 64 random bytes.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// A new random secret in its text form (`whsec_` and base64 of 32 bytes), for a webhook
    /// endpoint; shown once, kept to sign.
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        format!("whsec_{}", STANDARD.encode(bytes))
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw.trim().strip_prefix("whsec_").ok_or("must start with whsec_")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| format!("not base64 after whsec_: {e}"))?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("must hold 24 to 64 bytes".into());
        }
        Ok(Self(bytes))
    }

    /// `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, the `webhook-signature` value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

/// Posts each message as JSON, signed with the Standard Webhooks headers (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`). A 2xx answer is a delivery; anything else,
/// a timeout or a connection failure is a failed attempt.
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    secret: SigningSecret,
    clock: SharedClock,
}

impl HttpSink {
    pub fn new(
        url: String,
        secret: SigningSecret,
        timeout: std::time::Duration,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            url,
            secret,
            clock,
        })
    }
}

impl Sink for HttpSink {
    fn deliver<'a>(&'a self, m: &'a NotificationRow) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&Delivery::of(m)).map_err(|e| e.to_string())?;
            let timestamp = self.clock.now().and_utc().timestamp();
            let response = signed_post(&self.client, &self.url, &self.secret, (m.id.as_str(), timestamp), body)
                .send()
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the endpoint answered {status}"))
            }
        })
    }
}

/// A JSON POST with the Standard Webhooks headers: `webhook-id`, `webhook-timestamp`, and
/// `webhook-signature` over both and the body.
fn signed_post(
    client: &reqwest::Client,
    url: &str,
    secret: &SigningSecret,
    (id, timestamp): (&str, i64),
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let signature = secret.sign(id, timestamp, &body);
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

/// Delay before the next attempt after `attempts + 1` failures: 10 s doubling, at most an hour,
/// then spread by ±20 % so that messages that failed together do not retry together.
pub fn backoff(attempts: i32) -> Duration {
    let secs = 10i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(3600);
    let spread = rand::thread_rng().gen_range(0.8..=1.2);
    Duration::milliseconds((secs as f64 * 1000.0 * spread) as i64)
}

/// The worker's settings.
#[derive(Clone)]
pub struct Outbox {
    pub db: Db,
    pub clock: SharedClock,
    pub sink: Arc<dyn Sink>,
    pub max_attempts: i32,
    /// Posts event deliveries to webhook endpoints (each with its own URL and secret).
    pub webhook_client: reqwest::Client,
    /// Whether endpoints may be loopback, private or link-local addresses.
    pub allow_private_webhooks: bool,
    /// Counts every attempt by channel and outcome.
    pub metrics: Metrics,
}

/// An attempt's outcome, and the status code the endpoint answered, if it answered.
type Attempt = (Result<(), String>, Option<i32>);

impl Outbox {
    /// Delivers every due message once; returns how many were handled.
    pub async fn deliver_due(&self) -> Result<usize, DbError> {
        let now = self.clock.now();
        let batch = self
            .db
            .read(move |conn| {
                notifications::claim_due(conn, now, Duration::seconds(LEASE_SECS), BATCH).map_err(DbError::from)
            })
            .await?;
        let endpoint_ids: Vec<String> = batch.iter().filter_map(|m| m.webhook_endpoint_id.clone()).collect();
        let endpoints = if endpoint_ids.is_empty() {
            Vec::new()
        } else {
            self.db
                .read(move |conn| {
                    let ids: Vec<&str> = endpoint_ids.iter().map(String::as_str).collect();
                    webhooks::by_ids(conn, &ids).map_err(DbError::from)
                })
                .await?
        };
        let outcomes = future::join_all(batch.iter().map(|m| self.attempt(m, &endpoints))).await;
        let now = self.clock.now();
        let max_attempts = self.max_attempts;
        let results: Vec<(NotificationRow, Attempt)> = batch.into_iter().zip(outcomes).collect();
        let handled = results.len();
        for (message, (outcome, _)) in &results {
            let channel = match message.webhook_endpoint_id {
                Some(_) => Channel::Webhook,
                None => Channel::Notification,
            };
            let verdict = match outcome {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(_) if is_last_attempt(message, max_attempts) => DeliveryOutcome::Dead,
                Err(_) => DeliveryOutcome::Failed,
            };
            self.metrics.delivery(channel, verdict);
        }
        self.db
            .write(move |conn| {
                for (message, (outcome, code)) in &results {
                    let held = record(conn, message, outcome, now, max_attempts)?;
                    if held && message.webhook_endpoint_id.is_some() {
                        webhooks::set_response_code(conn, &message.id, *code)?;
                    }
                }
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(handled)
    }

    /// One delivery attempt: a notification to its sink, an event to its endpoint.
    async fn attempt(&self, m: &NotificationRow, endpoints: &[WebhookEndpointRow]) -> Attempt {
        let Some(id) = &m.webhook_endpoint_id else {
            return (self.sink.deliver(m).await, None);
        };
        match endpoints.iter().find(|e| &e.id == id) {
            None => (Err("the endpoint was deleted".into()), None),
            Some(e) if !e.enabled => (Err("the endpoint is disabled".into()), None),
            Some(e) => self.post_event(m, e).await,
        }
    }

    /// Posts an event to an endpoint, signed with its own secret the Standard Webhooks way,
    /// after checking again where its URL leads (SSRF).
    async fn post_event(&self, m: &NotificationRow, endpoint: &WebhookEndpointRow) -> Attempt {
        if let Err(why) = crate::net_guard::check_url(&endpoint.url, self.allow_private_webhooks).await {
            return (Err(format!("the endpoint URL {why}")), None);
        }
        let secret = match SigningSecret::parse(&endpoint.secret) {
            Ok(secret) => secret,
            Err(why) => return (Err(format!("the endpoint's secret {why}")), None),
        };
        let body = m.payload.clone().into_bytes();
        let timestamp = self.clock.now().and_utc().timestamp();
        let sent = signed_post(
            &self.webhook_client,
            &endpoint.url,
            &secret,
            (m.id.as_str(), timestamp),
            body,
        )
        .send()
        .await;
        match sent {
            Err(e) => (Err(format!("request failed: {e}")), None),
            Ok(res) if res.status().is_success() => (Ok(()), Some(i32::from(res.status().as_u16()))),
            Ok(res) => (
                Err(format!("the endpoint answered {}", res.status())),
                Some(i32::from(res.status().as_u16())),
            ),
        }
    }

    /// Polls the outbox until the process ends.
    pub fn spawn(self, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = self.deliver_due().await {
                    log::warn!("outbox poll failed: {e}");
                }
            }
        })
    }
}

/// Whether this attempt is the message's last: failing it makes the message dead.
fn is_last_attempt(message: &NotificationRow, max_attempts: i32) -> bool {
    message.attempts + 1 >= max_attempts
}

/// Records an attempt's outcome, if the message's lease is still this worker's; returns
/// whether it was (a worker that outlived its lease leaves the message to its new holder).
fn record(
    conn: &mut crate::db::DbConnection,
    message: &NotificationRow,
    outcome: &Result<(), String>,
    now: NaiveDateTime,
    max_attempts: i32,
) -> Result<bool, DbError> {
    let Some(lease) = message.locked_until else {
        return Ok(false);
    };
    let held = match outcome {
        Ok(()) => notifications::mark_delivered(conn, &message.id, lease, now)?,
        Err(error) => {
            let attempts = message.attempts + 1;
            // After the first failure the wait is 10 s, then 20 s, 40 s, …
            let retry_at = (!is_last_attempt(message, max_attempts)).then(|| now + backoff(attempts - 1));
            if retry_at.is_some() {
                log::warn!("delivery of {} failed (attempt {attempts}): {error}", message.id);
            } else {
                log::error!(
                    "delivery of {} failed for good after {attempts} attempts: {error}",
                    message.id
                );
            }
            notifications::mark_failed(conn, (&message.id, lease), error, retry_at, now)?
        }
    };
    if !held {
        log::warn!(
            "the lease on {} ran out before its outcome was recorded; another attempt decides it",
            message.id
        );
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(0).num_milliseconds();
            assert!((8_000..=12_000).contains(&first), "{first}");
            let third = backoff(3).num_milliseconds();
            assert!((64_000..=96_000).contains(&third), "{third}");
            let late = backoff(30).num_milliseconds();
            assert!((2_880_000..=4_320_000).contains(&late), "{late}");
        }
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_follow_standard_webhooks() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_must_have_the_standard_form() {
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_AAAA").is_err(), "too short");
    }
}
