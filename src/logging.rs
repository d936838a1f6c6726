//! The log: env_logger, filtered by `STEWARD_LOG`, written as text (the default) or, with
//! `STEWARD_LOG_FORMAT=json`, as one JSON object per line for a log pipeline:
//!
//! - `ts` (RFC 3339, UTC, microseconds), `level` (`error` … `trace`), `target`, `msg`;
//! - on a line written while a request is served: `request_id`, `actor` (the real actor: a
//!   user id or an API key id) and `effective_user` (whom the request acts as), `null`
//!   until a credential is checked or when there is none;
//! - the line's own fields: the access log line (`steward::access`) has `method`, `route`
//!   (the matched template, or `unmatched`), `path`, `status`, `duration_ms` and `peer`.
//!
//! Lines written outside a request (start-up, the outbox worker) have no request fields.
//! Work run on the blocking pool (database calls) is outside the request's task, so its
//! rare lines carry no request fields either.

use chrono::{DateTime, SecondsFormat, Utc};
use log::kv::{Key, Value, VisitSource};
use serde_json::{Map, Value as Json};
use std::io::Write as _;

use crate::config::LogFormat;
use crate::request_id::{self, Scope};

/// Installs the process's logger. Call once, at start.
pub fn init(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    match format {
        LogFormat::Text => {
            builder.format_timestamp_millis();
        }
        LogFormat::Json => {
            builder.format(|out, record| {
                let scope = request_id::current_scope();
                writeln!(out, "{}", json_line(record, scope.as_deref(), Utc::now()))
            });
        }
    }
    builder.init();
}

/// One log record as a JSON object on one line.
pub fn json_line(record: &log::Record<'_>, scope: Option<&Scope>, now: DateTime<Utc>) -> String {
    let mut line = Map::new();
    line.insert("ts".into(), now.to_rfc3339_opts(SecondsFormat::Micros, true).into());
    line.insert("level".into(), record.level().as_str().to_ascii_lowercase().into());
    line.insert("target".into(), record.target().into());
    line.insert("msg".into(), record.args().to_string().into());
    if let Some(scope) = scope {
        let caller = scope.caller();
        line.insert("request_id".into(), scope.id.clone().into());
        line.insert("actor".into(), caller.actor.into());
        line.insert("effective_user".into(), caller.effective_user.into());
    }
    // A field that cannot be visited is left out; the line itself is still written.
    let _ = record.key_values().visit(&mut Fields(&mut line));
    Json::Object(line).to_string()
}

/// Copies a record's key-value fields into the JSON object, numbers as numbers.
struct Fields<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            Json::from(n)
        } else if let Some(n) = value.to_i64() {
            Json::from(n)
        } else if let Some(f) = value.to_f64() {
            Json::from(f)
        } else if let Some(b) = value.to_bool() {
            Json::from(b)
        } else {
            Json::from(value.to_string())
        };
        self.0.insert(key.as_str().to_string(), json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_id::Caller;

    fn parse(line: &str) -> Json {
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(line).expect("a JSON object")
    }

    #[test]
    fn a_line_outside_a_request_has_no_request_fields() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00.5Z").unwrap().to_utc();
        let record = log::Record::builder()
            .level(log::Level::Warn)
            .target("steward::notify")
            .args(format_args!("delivery of ntf_1 failed: \"boom\"\nsecond line"))
            .build();
        let line = parse(&json_line(&record, None, now));
        assert_eq!(line["ts"], "2026-12-06T10:00:00.500000Z");
        assert_eq!(line["level"], "warn");
        assert_eq!(line["target"], "steward::notify");
        assert_eq!(line["msg"], "delivery of ntf_1 failed: \"boom\"\nsecond line");
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
    }

    #[test]
    fn an_access_line_carries_the_request_the_actor_and_the_effective_user() {
        let scope = Scope::for_test(
            "req-1",
            Caller {
                actor: Some("usr_actor".into()),
                effective_user: Some("usr_target".into()),
            },
        );
        let fields: [(&str, Value<'_>); 5] = [
            ("method", Value::from("GET")),
            ("route", Value::from("/v1/users/{user_id}")),
            ("status", Value::from(200u16)),
            ("duration_ms", Value::from(1.25f64)),
            ("path", Value::from("/v1/users/usr_target")),
        ];
        let record = log::Record::builder()
            .level(log::Level::Info)
            .target("steward::access")
            .args(format_args!("GET /v1/users/usr_target 200"))
            .key_values(&fields)
            .build();
        let line = parse(&json_line(&record, Some(&scope), Utc::now()));
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["actor"], "usr_actor");
        assert_eq!(line["effective_user"], "usr_target");
        assert_eq!(line["route"], "/v1/users/{user_id}");
        assert_eq!(line["status"], 200);
        assert_eq!(line["duration_ms"], 1.25);

        let anonymous = Scope::for_test("req-2", Caller::default());
        let line = parse(&json_line(&record, Some(&anonymous), Utc::now()));
        assert_eq!(line["request_id"], "req-2");
        assert!(line["actor"].is_null() && line["effective_user"].is_null(), "{line}");
    }
}
