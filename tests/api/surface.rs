//! The HTTP surface: security headers on every response, CORS by configured origins, and
//! HEAD wherever GET answers.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::contract::Response;
use crate::helpers::*;

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn assert_common_headers(headers: &HeaderMap, what: &str) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert!(
        get("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}: {headers:?}"
    );
    // The test servers' public URL is https.
    assert_eq!(get("strict-transport-security"), "max-age=31536000", "{what}");
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>, token: Option<&str>) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send_checked().await.expect("request sent")
}

/// A request to make: method, path, body, bearer token, and the status it should get.
type Case<'a> = (Method, &'a str, Option<Value>, Option<&'a str>, u16);

#[tokio::test]
async fn every_response_carries_the_security_headers_whoever_answered() {
    on_each_backend(|app| async move {
        let signup = app.sign_up("ada@example.com").await;
        let access = token(&signup);
        let cases: Vec<Case<'_>> = vec![
            (Method::GET, "/healthz", None, None, 200),
            (Method::GET, "/v1/me", None, Some(access.as_str()), 200),
            (Method::GET, "/v1/me", None, None, 401),
            (Method::GET, "/v1/nothing-here", None, None, 404),
            (Method::DELETE, "/healthz", None, None, 405),
            (
                Method::POST,
                "/v1/auth/login",
                Some(json!({"identifier": 1})),
                None,
                422,
            ),
            (Method::GET, "/openapi.json", None, None, 200),
            (Method::GET, "/docs/", None, None, 200),
            (Method::GET, "/.well-known/jwks.json", None, None, 200),
        ];
        for (method, path, body, token, expected) in cases {
            let what = format!("{method} {path}");
            let res = send(&app, method, path, body, token).await;
            assert_eq!(res.status().as_u16(), expected, "{what}");
            assert_common_headers(res.headers(), &what);
            if path == "/.well-known/jwks.json" {
                // Public and the same for everyone: its own caching stands.
                assert_eq!(header(res.headers(), "cache-control"), "public, max-age=300");
            } else {
                assert_eq!(header(res.headers(), "cache-control"), "no-store", "{what}");
            }
            if !path.starts_with("/docs/") {
                assert_eq!(header(res.headers(), "content-security-policy"), API_CSP, "{what}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn answers_that_carry_tokens_or_secrets_are_never_stored() {
    on_each_backend(|app| async move {
        let res = send(
            &app,
            Method::POST,
            "/v1/auth/signup",
            Some(json!({
                "organization_name": "Acme", "email": "ada@example.com",
                "first_name": "Ada", "last_name": "Lovelace", "password": PASSWORD,
            })),
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(header(res.headers(), "cache-control"), "no-store");
        let body: Value = res.json().await.unwrap();
        let refresh = body["refresh_token"].as_str().unwrap().to_string();

        for (path, body) in [
            (
                "/v1/auth/login",
                json!({"identifier": "ada@example.com", "password": PASSWORD}),
            ),
            ("/v1/auth/refresh", json!({"refresh_token": refresh})),
        ] {
            let res = send(&app, Method::POST, path, Some(body), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(header(res.headers(), "cache-control"), "no-store", "{path}");
            assert!(res.headers().get("pragma").is_none(), "no legacy headers needed");
        }
    })
    .await;
}

#[tokio::test]
async fn the_swagger_ui_loads_its_own_scripts_under_its_policy() {
    on_each_backend(|app| async move {
        let res = send(&app, Method::GET, "/docs/", None, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let csp = header(res.headers(), "content-security-policy").to_string();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        let page = res.text().await.unwrap();

        // Every script is a file of its own origin (no inline code, which the policy would
        // block), and each one loads.
        let mut scripts = 0;
        for tag in page.split("<script").skip(1) {
            let (attributes, rest) = tag.split_once('>').expect("a closed tag");
            let inline = rest.split("</script>").next().unwrap_or("");
            assert!(inline.trim().is_empty(), "inline script: {inline}");
            let src = attributes
                .split("src=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a script with src");
            assert!(!src.contains("//"), "a script from elsewhere: {src}");
            let path = format!("/docs/{}", src.trim_start_matches("./"));
            let res = send(&app, Method::GET, &path, None, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert!(header(res.headers(), "content-type").contains("javascript"), "{path}");
            assert_common_headers(res.headers(), &path);
            scripts += 1;
        }
        assert!(scripts >= 2, "the page loads its bundle and its initializer");
    })
    .await;
}

#[tokio::test]
async fn strict_transport_security_only_when_the_public_url_is_https() {
    on_each_backend_with(&[("STEWARD_PUBLIC_URL", "http://localhost:8080")], |app| async move {
        let res = send(&app, Method::GET, "/healthz", None, None).await;
        assert!(res.headers().get("strict-transport-security").is_none());
        assert_eq!(header(res.headers(), "x-frame-options"), "DENY");
    })
    .await;
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str, headers: &str) -> Response {
    let mut req = app
        .client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method);
    if !headers.is_empty() {
        req = req.header("access-control-request-headers", headers);
    }
    req.send_checked().await.expect("request sent")
}

async fn from_origin(app: &TestApp, path: &str, origin: &str, token: &str) -> Response {
    app.client
        .get(app.url(path))
        .header("origin", origin)
        .bearer_auth(token)
        .send_checked()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn cors_is_closed_by_default() {
    on_each_backend(|app| async move {
        let access = token(&app.sign_up("ada@example.com").await);
        let res = preflight(&app, "/v1/me", "https://app.example.com", "GET", "authorization").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().get("access-control-allow-origin").is_none());
        assert_common_headers(res.headers(), "a refused preflight");
        let body: Value = res.json().await.unwrap();
        assert_problem(StatusCode::FORBIDDEN, &body, 403, "cors-refused");

        let res = from_origin(&app, "/v1/me", "https://app.example.com", &access).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cors: Vec<_> = res
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "no CORS header at all: {cors:?}");
    })
    .await;
}

#[tokio::test]
async fn configured_origins_may_call_the_api_from_a_browser_and_others_may_not() {
    let settings = [(
        "STEWARD_CORS_ALLOWED_ORIGINS",
        "https://app.example.com, http://localhost:5173",
    )];
    on_each_backend_with(&settings, |app| async move {
        let signup = app.sign_up("ada@example.com").await;
        let access = token(&signup);
        let origin = "https://app.example.com";

        let res = preflight(
            &app,
            "/v1/users/usr_00000000000000000000000000",
            origin,
            "PATCH",
            "authorization,content-type,if-match,idempotency-key",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(header(h, "access-control-allow-origin"), origin);
        assert!(header(h, "access-control-allow-methods").contains("PATCH"), "{h:?}");
        let allowed = header(h, "access-control-allow-headers").to_ascii_lowercase();
        for name in ["authorization", "content-type", "if-match", "idempotency-key"] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert_eq!(header(h, "access-control-max-age"), "600");
        assert!(
            h.get("access-control-allow-credentials").is_none(),
            "tokens are not cookies"
        );
        assert_common_headers(h, "an answered preflight");

        let res = from_origin(&app, "/v1/me", origin, &access).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(res.headers(), "access-control-allow-origin"), origin);
        let exposed = header(res.headers(), "access-control-expose-headers").to_ascii_lowercase();
        for name in ["etag", "location", "retry-after", "idempotent-replayed", "x-request-id"] {
            assert!(exposed.contains(name), "{name} in {exposed}");
        }
        assert!(header(res.headers(), "vary").to_ascii_lowercase().contains("origin"));
        let res = from_origin(&app, "/v1/me", "http://localhost:5173", &access).await;
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            "http://localhost:5173"
        );

        // Another origin: its preflight is refused, and its request is answered without the
        // header that would let its page read the answer.
        let evil = "https://evil.example";
        let res = preflight(&app, "/v1/me", evil, "GET", "authorization").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let body: Value = res.json().await.unwrap();
        assert_problem(StatusCode::FORBIDDEN, &body, 403, "cors-refused");
        let res = from_origin(&app, "/v1/me", evil, &access).await;
        assert!(res.headers().get("access-control-allow-origin").is_none());

        // A header outside the list is refused even for an allowed origin.
        let res = preflight(&app, "/v1/me", origin, "GET", "x-something-else").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body: Value = res.json().await.unwrap();
        assert_problem(StatusCode::FORBIDDEN, &body, 403, "cors-refused");
    })
    .await;
}

#[tokio::test]
async fn head_answers_wherever_get_does() {
    on_each_backend(|app| async move {
        let org = app.org("ada@example.com").await;
        let me = format!("/v1/users/{}", org.owner_id);
        for (path, token) in [
            ("/healthz", None),
            ("/readyz", None),
            ("/.well-known/jwks.json", None),
            ("/openapi.json", None),
            ("/v1/me", Some(org.owner_token.as_str())),
            (me.as_str(), Some(org.owner_token.as_str())),
            ("/v1/users", Some(org.owner_token.as_str())),
        ] {
            let get = send(&app, Method::GET, path, None, token).await;
            let head = send(&app, Method::HEAD, path, None, token).await;
            assert_eq!(head.status(), get.status(), "HEAD {path}");
            assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
            assert_eq!(
                header(head.headers(), "content-type"),
                header(get.headers(), "content-type"),
                "HEAD {path}"
            );
            assert_eq!(
                header(head.headers(), "etag"),
                header(get.headers(), "etag"),
                "HEAD {path}"
            );
            assert_common_headers(head.headers(), &format!("HEAD {path}"));
            assert!(head.text().await.unwrap().is_empty(), "HEAD {path} has no body");
        }

        // Without a token, HEAD is refused as GET is; unknown paths and POST-only paths
        // answer as they would to GET.
        let res = send(&app, Method::HEAD, "/v1/me", None, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = send(&app, Method::HEAD, "/v1/nothing-here", None, None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = send(&app, Method::HEAD, "/v1/auth/login", None, None).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(res.headers(), "allow"), "POST");
        let res = send(&app, Method::DELETE, "/healthz", None, None).await;
        assert_eq!(header(res.headers(), "allow"), "GET, HEAD");
    })
    .await;
}
