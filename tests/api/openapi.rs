//! The committed OpenAPI document is the one the code generates and the one it serves.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};

use crate::helpers::*;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_document_matches_the_code() {
    let generated = steward::openapi::document_json();
    if generated != COMMITTED {
        panic!(
            "openapi/openapi.json is out of date. Regenerate it with:\n    cargo run -- openapi > openapi/openapi.json\nand commit it."
        );
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    on_each_backend(|app| async move {
        let res = app.client.get(app.url("/openapi.json")).send_checked().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.unwrap(), COMMITTED);
    })
    .await;
}

#[test]
fn every_operation_is_named_documented_and_describes_its_errors() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            assert!(op["summary"].is_string(), "{id} has no summary");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{id} has no tag");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{id} documents no success"
            );
            assert!(responses.contains_key("500"), "{id} does not document 500");
            for (status, response) in responses {
                if !status.starts_with('2') && !status.starts_with('3') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{id} {status} is not documented as a problem"
                    );
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(
                    responses.contains_key("401"),
                    "{id} is secured but does not document 401"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("422"),
                    "{id} takes a body but does not document 422"
                );
            }
        }
    }
}

/// Every operation states its security (`[]` for a public one) rather than leaving it to a
/// default; every response documents the `X-Request-Id` header the middleware sets; the
/// document names the server its paths are relative to.
#[test]
fn operations_state_security_responses_carry_the_request_id_and_servers_are_named() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let servers = doc["servers"].as_array().expect("servers");
    assert!(!servers.is_empty(), "no servers");
    assert!(servers.iter().all(|s| s["url"].is_string()), "a server without url");

    let header = &doc["components"]["headers"]["X-Request-Id"];
    assert_eq!(header["required"], true, "X-Request-Id is not required: {header}");
    assert_eq!(header["schema"]["type"], "string");

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or(path);
            assert!(
                op["security"].is_array(),
                "{id} ({method} {path}) does not state its security"
            );
            for (status, response) in op["responses"].as_object().unwrap() {
                assert_eq!(
                    response["headers"]["X-Request-Id"]["$ref"], "#/components/headers/X-Request-Id",
                    "{id} {status} does not document X-Request-Id"
                );
            }
        }
    }
    for public in ["/healthz", "/readyz", "/.well-known/jwks.json", "/v1/permissions"] {
        assert_eq!(doc["paths"][public]["get"]["security"], json!([]), "{public} is public");
    }
    for public in [
        "/v1/auth/signup",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/password-reset",
    ] {
        assert_eq!(
            doc["paths"][public]["post"]["security"],
            json!([]),
            "{public} is public"
        );
    }
}

/// Response fields a response may leave out (serialized only when set). Every other field
/// of a response schema is on the wire every time, so the document must say `required`
/// (a nullable one as `required` and nullable); the contract check then proves it on every
/// response the suite receives.
const MAY_BE_ABSENT: &[(&str, &str)] = &[
    ("AcceptedInvitation", "session"),
    ("InviteView", "registration_url"),
    ("Problem", "error"),
    ("Problem", "errors"),
    ("Problem", "request_id"),
    ("TokenResponse", "refresh_token"),
];

fn referenced_schemas(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item.as_str()) {
                    ("$ref", Some(r)) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            out.insert(name.to_string());
                        }
                    }
                    _ => referenced_schemas(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| referenced_schemas(i, out)),
        _ => {}
    }
}

#[test]
fn response_fields_are_required_unless_they_may_be_absent() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut reachable = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            referenced_schemas(&op["responses"], &mut reachable);
        }
    }
    loop {
        let mut next = reachable.clone();
        for name in &reachable {
            referenced_schemas(&schemas[name], &mut next);
        }
        if next == reachable {
            break;
        }
        reachable = next;
    }
    let mut wrong = Vec::new();
    for name in &reachable {
        let schema = &schemas[name];
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (field, property) in properties {
            let may_be_absent = MAY_BE_ABSENT.contains(&(name.as_str(), field.as_str()));
            if !may_be_absent && !required.contains(&field.as_str()) {
                wrong.push(format!("{name}.{field} is always sent but not required"));
            }
            if may_be_absent {
                if required.contains(&field.as_str()) {
                    wrong.push(format!("{name}.{field} may be absent but is required"));
                }
                if property.to_string().contains("\"null\"") {
                    wrong.push(format!("{name}.{field} is absent rather than null, but is nullable"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "response schemas disagree with the wire:\n{}",
        wrong.join("\n")
    );
}

/// Every `$ref` names something the document defines: a dangling one breaks every client
/// generator (a query enum used nowhere else once left its schema out).
#[test]
fn every_reference_resolves() {
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match (key.as_str(), item.as_str()) {
                        ("$ref", Some(r)) => {
                            out.insert(r.to_string());
                        }
                        _ => refs(item, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(COMMITTED).expect("JSON");
    let mut found = BTreeSet::new();
    refs(&doc, &mut found);
    let dangling: Vec<&String> = found
        .iter()
        .filter(|r| {
            // `pointer` unescapes `~1` and `~0` itself (RFC 6901).
            doc.pointer(r.strip_prefix('#').unwrap_or(r)).is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

/// SCIM is documented by its own discovery endpoints (`/scim/v2/Schemas`, …), not here.
#[test]
fn scim_is_not_in_the_document() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.keys().all(|p| !p.starts_with("/scim")), "{:?}", paths.keys());
}
