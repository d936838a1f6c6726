//! JSON logs (issue 14): with `STEWARD_LOG_FORMAT=json` every line the real binary writes is
//! one JSON object, and a request's access log line names the request, the real actor and
//! the effective user, which differ under an impersonation.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::ServerProcess;

/// Runs the binary on the app's database and signing key, with JSON logs, until `f` is done;
/// returns every line it wrote to its log.
async fn json_log_of<F, Fut>(app: &TestApp, f: F) -> Vec<Value>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let key = app.signing_key_file();
    let settings = [
        ("STEWARD_DATABASE_URL", app.database_url.as_str()),
        ("STEWARD_SIGNING_KEY_FILE", key.to_str().unwrap()),
        // The same issuer as the app's, so that its tokens are accepted.
        ("STEWARD_PUBLIC_URL", "https://app.example.test"),
        ("STEWARD_LOG", "info"),
        ("STEWARD_LOG_FORMAT", "json"),
    ];
    let mut server = ServerProcess::start(dir.path(), "json", &settings).await;
    f(server.base.clone()).await;
    server.kill();
    server
        .log()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}

fn access_line<'a>(lines: &'a [Value], request_id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["target"] == "steward::access" && l["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no access line for {request_id} in {lines:#?}"))
}

#[tokio::test]
async fn json_logs_name_the_request_the_real_actor_and_the_effective_user() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let (admin_id, _) = app
            .member(&org.owner_token, "admin@example.com", &["admin"], &org.root)
            .await;
        let (status, started) = app.impersonate(&org.owner_token, &admin_id, json!({})).await;
        assert_eq!(status.as_u16(), 201, "{started}");
        let impersonating = token(&started);
        let client = app.client.clone();
        let owner_token = org.owner_token.clone();

        let lines = json_log_of(&app, |base| async move {
            for (request_id, token) in [
                ("log-impersonated", Some(impersonating.as_str())),
                ("log-owner", Some(owner_token.as_str())),
                ("log-anonymous", None),
            ] {
                let mut req = client.get(format!("{base}/v1/me")).header("x-request-id", request_id);
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                req.send_checked().await.unwrap();
            }
        })
        .await;

        for line in &lines {
            for field in ["ts", "level", "target", "msg"] {
                assert!(line[field].is_string(), "{field} in {line}");
            }
            let ts = line["ts"].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
                "{ts}"
            );
        }
        let started_line = lines
            .iter()
            .find(|l| l["msg"].as_str().unwrap().starts_with("steward listening"))
            .expect("the start-up line");
        assert!(
            started_line.get("request_id").is_none() && started_line.get("actor").is_none(),
            "a line outside a request has no request fields: {started_line}"
        );

        let line = access_line(&lines, "log-impersonated");
        assert_eq!(line["level"], "info");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["route"], "/v1/me");
        assert_eq!(line["path"], "/v1/me");
        assert_eq!(line["status"], 200);
        assert!(line["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
        assert_eq!(line["actor"], org.owner_id.as_str(), "the real actor: {line}");
        assert_eq!(line["effective_user"], admin_id.as_str(), "whom it acts as: {line}");

        let line = access_line(&lines, "log-owner");
        assert_eq!(line["actor"], org.owner_id.as_str());
        assert_eq!(line["effective_user"], org.owner_id.as_str());

        let line = access_line(&lines, "log-anonymous");
        assert_eq!(line["status"], 401);
        assert!(line["actor"].is_null() && line["effective_user"].is_null(), "{line}");
    })
    .await;
}
