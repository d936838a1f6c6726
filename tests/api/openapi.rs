//! The committed OpenAPI document is the one the code generates and the one it serves.

use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashSet;

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
        let res = app.client.get(app.url("/openapi.json")).send().await.unwrap();
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
