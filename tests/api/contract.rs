//! The committed document is the wire: every response the suite receives goes through
//! [`check`] against `openapi/openapi.json`, and a response the document does not describe
//! fails the test that asked for it.
//!
//! Requests are sent with [`SendChecked::send_checked`] (the harness's `call` does so), never
//! with reqwest's bare `send`; a test below keeps it that way. For each response:
//!
//! - the operation is found by method and path template (`/v1/users/{user_id}`);
//! - its status must be documented (or covered by `4XX`/`default`);
//! - its content type must be one the document lists for that status, and a status
//!   documented without content must come without a body;
//! - a JSON body must validate (draft 2020-12, formats included) against the schema, with
//!   every object closed: a field the document does not name is a mismatch too; a JSON Lines
//!   body (`application/jsonl`) must be lines of JSON that each validate against it;
//! - every header the document marks required must be present.
//!
//! A documented path called with an undocumented method must answer a 405 problem. Paths
//! outside the document are listed in [`OUTSIDE_THE_DOCUMENT`]; they are only checked to
//! answer problem documents when they fail.
//!
//! SCIM (`/scim/v2/…`) is documented by its own discovery endpoints, not by the OpenAPI
//! document: its responses are checked against RFC 7644 instead ([`check_scim`]).

use jsonschema::Validator;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, OnceLock};

pub const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

/// Paths served outside the document, and why. `*` ends a prefix.
pub const OUTSIDE_THE_DOCUMENT: &[(&str, &str)] = &[
    ("/openapi.json", "the document itself"),
    ("/docs", "redirects to the Swagger UI"),
    ("/docs/*", "the Swagger UI's files"),
    (
        "/metrics",
        "for Prometheus, in its text format; off unless STEWARD_METRICS_TOKEN is set",
    ),
    (
        "/v1/nothing-here",
        "a deliberately unknown route: must answer a 404 problem",
    ),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// What one documented response allows.
struct DocumentedResponse {
    /// Content type → validator of its schema (None: the type is documented without one).
    content: BTreeMap<String, Option<Arc<Validator>>>,
    /// Header names (lower case) the document marks required.
    required_headers: Vec<String>,
}

struct Operation {
    id: String,
    method: Method,
    template: String,
    /// Literal segments, or None for a `{parameter}`.
    segments: Vec<Option<String>>,
    /// Status (`200`, `4XX`, `default`) → what it allows.
    responses: BTreeMap<String, DocumentedResponse>,
}

struct Contract {
    operations: Vec<Operation>,
    problem: Arc<Validator>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract::compile(DOCUMENT))
}

/// Adds `additionalProperties: false` to every object schema that lists its properties and
/// says nothing about others, so that undocumented fields on the wire are caught.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                // Examples and defaults are data, not schemas.
                if key != "example" && key != "examples" && key != "default" && key != "enum" && key != "const" {
                    close_objects(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

/// Follows a local `$ref` (`#/components/responses/X`) to what it names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolvable $ref {pointer} in openapi/openapi.json")),
        None => value,
    }
}

impl Contract {
    fn compile(text: &str) -> Self {
        let doc: Value = serde_json::from_str(text).expect("openapi/openapi.json is JSON");
        let mut components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
        close_objects(&mut components);
        // One validator per distinct schema (most responses share `Problem`).
        let compiled: RefCell<HashMap<String, Arc<Validator>>> = RefCell::default();
        let validator = |schema: &Value| -> Arc<Validator> {
            let key = schema.to_string();
            if let Some(found) = compiled.borrow().get(&key) {
                return found.clone();
            }
            let mut schema = schema.clone();
            close_objects(&mut schema);
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "allOf": [schema],
                "components": components,
            });
            let built = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"));
            let built = Arc::new(built);
            compiled.borrow_mut().insert(key, built.clone());
            built
        };
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(op) = item.get(*method) else { continue };
                let mut responses = BTreeMap::new();
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let response = resolve(&doc, response);
                    let content = response
                        .get("content")
                        .and_then(Value::as_object)
                        .map(|c| {
                            c.iter()
                                .map(|(ct, media)| (ct.clone(), media.get("schema").map(&validator)))
                                .collect()
                        })
                        .unwrap_or_default();
                    let required_headers = response
                        .get("headers")
                        .and_then(Value::as_object)
                        .map(|h| {
                            h.iter()
                                .filter(|(_, header)| resolve(&doc, header)["required"] == true)
                                .map(|(name, _)| name.to_ascii_lowercase())
                                .collect()
                        })
                        .unwrap_or_default();
                    responses.insert(
                        status.clone(),
                        DocumentedResponse {
                            content,
                            required_headers,
                        },
                    );
                }
                operations.push(Operation {
                    id: op["operationId"].as_str().unwrap_or("?").to_string(),
                    method: Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method"),
                    template: template.clone(),
                    segments: segments(template)
                        .into_iter()
                        .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
                        .collect(),
                    responses,
                });
            }
        }
        let problem = validator(&json!({ "$ref": "#/components/schemas/Problem" }));
        Self { operations, problem }
    }

    /// The operations whose template matches `path`; where several templates do, only the
    /// most literal ones (OpenAPI matches `/v1/contacts/reassign` before
    /// `/v1/contacts/{contact_id}`, as `src/routing.rs` does).
    fn matching(&self, path: &str) -> Vec<&Operation> {
        let parts = segments(path);
        let mut found: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|op| {
                op.segments.len() == parts.len()
                    && op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                        Some(literal) => literal == part,
                        None => !part.is_empty(),
                    })
            })
            .collect();
        let literals = |op: &Operation| op.segments.iter().map(Option::is_some).collect::<Vec<bool>>();
        let Some(best) = found.iter().map(|op| literals(op)).max() else {
            return found;
        };
        found.retain(|op| literals(op) == best);
        found
    }
}

fn outside_the_document(path: &str) -> bool {
    OUTSIDE_THE_DOCUMENT
        .iter()
        .any(|(listed, _)| match listed.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *listed,
        })
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

fn errors_of(validator: &Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

/// One response under check, for the failure message.
struct Seen<'a> {
    method: &'a Method,
    path: &'a str,
    status: StatusCode,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Seen<'_> {
    fn fail(&self, what: String) -> ! {
        panic!(
            "response does not conform to openapi/openapi.json\n  request:  {} {}\n  status:   {}\n  content-type: {}\n  problem:  {what}\n  body:     {}",
            self.method,
            self.path,
            self.status,
            media_type(self.headers).unwrap_or_else(|| "(none)".into()),
            String::from_utf8_lossy(self.body),
        )
    }

    /// An error outside the operations' documentation must still be a problem document.
    fn problem_if_error(&self, problem: &Validator, why: &str) {
        if !(self.status.is_client_error() || self.status.is_server_error()) {
            return;
        }
        if media_type(self.headers).as_deref() != Some("application/problem+json") {
            self.fail(format!("{why}: an error must be an application/problem+json document"));
        }
        if *self.method == Method::HEAD {
            return;
        }
        let value: Value = serde_json::from_slice(self.body)
            .unwrap_or_else(|e| self.fail(format!("{why}: the problem is not JSON: {e}")));
        let errors = errors_of(problem, &value);
        if !errors.is_empty() {
            self.fail(format!("{why}: not a Problem:\n    {}", errors.join("\n    ")));
        }
    }
}

/// Checks one response against the document; panics, naming everything, on a mismatch.
pub fn check(method: &Method, path: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    let contract = contract();
    let seen = Seen {
        method,
        path,
        status,
        headers,
        body,
    };

    if path.starts_with("/scim/") {
        return check_scim(&seen);
    }
    let candidates = contract.matching(path);
    if *method == Method::OPTIONS && !candidates.is_empty() && status != StatusCode::METHOD_NOT_ALLOWED {
        // A CORS preflight (see src/cors.rs): answered, empty, naming the origin, or refused
        // with a problem.
        if status.is_success() {
            if !headers.contains_key("access-control-allow-origin") || !body.is_empty() {
                seen.fail("an answered preflight names the origin and has no body".into());
            }
            return;
        }
        seen.problem_if_error(&contract.problem, "a refused preflight");
        return;
    }
    // HEAD is answered wherever GET is (src/routing.rs): the GET's status and headers, no body.
    let head = *method == Method::HEAD;
    if head && !body.is_empty() {
        seen.fail("a HEAD response carries no body".into());
    }
    let documented_as = if head { Method::GET } else { method.clone() };
    let Some(op) = candidates.iter().find(|op| op.method == documented_as) else {
        if let Some(other) = candidates.first() {
            if status != StatusCode::METHOD_NOT_ALLOWED {
                seen.fail(format!(
                    "{method} is not documented for {}, so it must answer 405",
                    other.template
                ));
            }
            seen.problem_if_error(&contract.problem, "an undocumented method");
            return;
        }
        if !outside_the_document(path) {
            seen.fail(
                "the path is neither in the document nor in contract::OUTSIDE_THE_DOCUMENT; \
document it, or list it there with a reason"
                    .into(),
            );
        }
        seen.problem_if_error(&contract.problem, "a path outside the document");
        return;
    };

    let code = status.as_u16().to_string();
    let range = format!("{}XX", status.as_u16() / 100);
    let Some(documented) = op
        .responses
        .get(&code)
        .or_else(|| op.responses.get(&range))
        .or_else(|| op.responses.get("default"))
    else {
        seen.fail(format!(
            "{} ({method} {}) does not document status {code}; it documents {:?}",
            op.id,
            op.template,
            op.responses.keys().collect::<Vec<_>>()
        ));
    };

    for header in &documented.required_headers {
        if !headers.contains_key(header.as_str()) {
            seen.fail(format!("{}: the required header {header} is missing", op.id));
        }
    }

    if head {
        return;
    }
    if documented.content.is_empty() {
        if !body.is_empty() {
            seen.fail(format!("{} documents {code} without content, but a body came", op.id));
        }
        return;
    }
    let listed = || documented.content.keys().cloned().collect::<Vec<_>>();
    let Some(ct) = media_type(headers) else {
        seen.fail(format!(
            "{} documents {code} as {:?}, but the response has no content type",
            op.id,
            listed()
        ));
    };
    let Some(schema) = documented.content.get(&ct) else {
        seen.fail(format!("{} documents {code} as {:?}, not {ct}", op.id, listed()));
    };
    let values: Vec<(String, Value)> = if is_json(&ct) {
        let value = serde_json::from_slice(body).unwrap_or_else(|e| seen.fail(format!("the body is not JSON: {e}")));
        vec![(String::new(), value)]
    } else if ct == JSON_LINES {
        json_lines(&seen)
    } else {
        return;
    };
    let Some(validator) = schema else { return };
    for (at, value) in values {
        let errors = errors_of(validator, &value);
        if !errors.is_empty() {
            seen.fail(format!(
                "the body{at} does not match the schema of {} {code} {ct}:\n    {}",
                op.id,
                errors.join("\n    ")
            ));
        }
    }
}

const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SCIM_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
];

/// A SCIM response (RFC 7644): `application/scim+json` whenever there is a body; an error
/// is a SCIM Error message whose `status` is the HTTP status; a list is a ListResponse of
/// resources; a resource has `schemas` and `meta`, and its `ETag` is its `meta.version`.
fn check_scim(seen: &Seen<'_>) {
    if seen.body.is_empty() {
        if seen.status != StatusCode::NO_CONTENT {
            seen.fail("SCIM: only a 204 comes without a body".into());
        }
        return;
    }
    if media_type(seen.headers).as_deref() != Some("application/scim+json") {
        seen.fail("SCIM: a body must be application/scim+json".into());
    }
    let value: Value = serde_json::from_slice(seen.body).unwrap_or_else(|e| seen.fail(format!("SCIM: not JSON: {e}")));
    let schemas = value["schemas"].as_array().cloned().unwrap_or_default();
    if seen.status.is_client_error() || seen.status.is_server_error() {
        let fits = schemas == [json!(SCIM_ERROR)]
            && value["status"] == json!(seen.status.as_u16().to_string())
            && value["detail"].is_string()
            && (value.get("scimType").is_none() || SCIM_TYPES.iter().any(|t| value["scimType"] == *t));
        if !fits {
            seen.fail("SCIM: an error must be an Error message (RFC 7644 §3.12)".into());
        }
        return;
    }
    if schemas == [json!(SCIM_LIST)] {
        let resources = value["Resources"].as_array().cloned().unwrap_or_default();
        let fits = value["totalResults"].is_u64()
            && value["startIndex"].is_u64()
            && value["itemsPerPage"] == json!(resources.len())
            && resources.iter().all(|r| r["schemas"].is_array() && r["id"].is_string());
        if !fits {
            seen.fail("SCIM: not a ListResponse of resources (RFC 7644 §3.4.2)".into());
        }
        return;
    }
    // `meta` may be left out of a partial representation (`attributes=…`), never half there.
    let meta_fits = value.get("meta").is_none()
        || (value["meta"]["resourceType"].is_string() && value["meta"]["location"].is_string());
    if schemas.is_empty() || !meta_fits {
        seen.fail("SCIM: a resource has schemas, and a meta with resourceType and location (RFC 7643 §3.1)".into());
    }
    if let Some(version) = value["meta"]["version"].as_str() {
        let etag = seen.headers.get(reqwest::header::ETAG).and_then(|v| v.to_str().ok());
        if etag.is_some_and(|e| e != version) {
            seen.fail("SCIM: the ETag must be the resource's meta.version".into());
        }
    }
}

/// JSON Lines (`application/jsonl`): the schema documented for the content type is the
/// schema of every line.
const JSON_LINES: &str = "application/jsonl";

/// Each line of a JSON Lines body, parsed, with where it is (" (line n)"). Every line ends
/// with a line feed, the last one included; no line is empty.
fn json_lines(seen: &Seen<'_>) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(seen.body).unwrap_or_else(|e| seen.fail(format!("JSON Lines must be UTF-8: {e}")));
    if !text.is_empty() && !text.ends_with('\n') {
        seen.fail("the last line of a JSON Lines body must end with a line feed".into());
    }
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let at = format!(" (line {})", i + 1);
            let value =
                serde_json::from_str(line).unwrap_or_else(|e| seen.fail(format!("line {} is not JSON: {e}", i + 1)));
            (at, value)
        })
        .collect()
}

/// A response read whole and checked against the document; reads like reqwest's.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub async fn text(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.body)
    }

    pub async fn json<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// `send` plus the contract check: what every test uses instead of reqwest's `send`.
pub trait SendChecked {
    fn send_checked(self) -> impl Future<Output = Result<Response, reqwest::Error>>;
}

impl SendChecked for reqwest::RequestBuilder {
    async fn send_checked(self) -> Result<Response, reqwest::Error> {
        let (client, request) = self.build_split();
        let request = request?;
        let method = request.method().clone();
        let path = request.url().path().to_string();
        let res = client.execute(request).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await?.to_vec();
        check(&method, &path, status, &headers, &body);
        Ok(Response { status, headers, body })
    }
}

#[test]
fn every_request_in_the_suite_goes_through_the_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api");
    let bare = [".send()", ".execute("].map(|s| s.to_string());
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(dir).expect("tests/api") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "contract.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read test file");
        for (n, line) in text.lines().enumerate() {
            if bare.iter().any(|b| line.contains(b.as_str())) {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "send requests with .send_checked() so the contract check sees the response:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_catches_what_the_document_does_not_say() {
    use std::panic::catch_unwind;
    let json_headers = |ct: &str| {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::CONTENT_TYPE, ct.parse().unwrap());
        h.insert("x-request-id", "01jd3k6x0n6qg8z7v2f4t9b1c5".parse().unwrap());
        h
    };
    let fails = |method: Method, path: &'static str, status: u16, ct: &'static str, body: Value| {
        let headers = json_headers(ct);
        catch_unwind(move || {
            check(
                &method,
                path,
                StatusCode::from_u16(status).unwrap(),
                &headers,
                body.to_string().as_bytes(),
            )
        })
        .is_err()
    };
    // The shape the document promises passes.
    assert!(!fails(
        Method::GET,
        "/healthz",
        200,
        "application/json",
        json!({ "status": "ok" })
    ));
    // A wrong type, an undocumented field, an undocumented status, a wrong content type.
    assert!(fails(
        Method::GET,
        "/healthz",
        200,
        "application/json",
        json!({ "status": 1 })
    ));
    assert!(fails(
        Method::GET,
        "/healthz",
        200,
        "application/json",
        json!({ "status": "ok", "x": 1 })
    ));
    assert!(fails(
        Method::GET,
        "/healthz",
        418,
        "application/problem+json",
        json!({})
    ));
    assert!(fails(
        Method::GET,
        "/healthz",
        200,
        "text/plain",
        json!({ "status": "ok" })
    ));
    // Templates match concrete paths; an undocumented path fails.
    assert!(fails(
        Method::GET,
        "/v1/users/usr_x",
        200,
        "application/json",
        json!({})
    ));
    assert!(fails(Method::GET, "/v1/not-documented", 404, "text/plain", json!("x")));
    // JSON Lines: every line must fit the documented item schema.
    let export = |body: String| {
        let headers = json_headers("application/jsonl");
        catch_unwind(move || {
            check(
                &Method::GET,
                "/v1/accounts/acc_x/audit-events/export",
                StatusCode::OK,
                &headers,
                body.as_bytes(),
            )
        })
        .is_err()
    };
    let event = json!({
        "id": "aud_01jd3k6x0n6qg8z7v2f4t9b1c5", "occurred_at": "2026-11-25T10:00:00Z",
        "action": "auth.login", "actor_user_id": null, "actor_api_key_id": null, "effective_user_id": null,
        "account_id": "acc_01jd3k6x0n6qg8z7v2f4t9b1c5", "target_type": null, "target_id": null,
        "request_id": null, "details": {},
    });
    assert!(!export(String::new()));
    assert!(!export(format!("{event}\n{event}\n")));
    assert!(export(format!("{event}\n{{\"id\": 1}}\n")));
    assert!(export(format!("{event}\nnot json\n")));
    assert!(export(format!("{event}")));
}
