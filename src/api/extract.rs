//! The one place where request input is read: JSON bodies and query strings.
//!
//! A body is accepted only when it is a JSON object whose every field the request type names
//! (the types carry `#[serde(deny_unknown_fields)]`, which also puts
//! `additionalProperties: false` in the OpenAPI document), and whose every string can be
//! stored (see [`storable`]). Anything else is a 422 problem listing each offending field,
//! decided before a handler runs, so bad input never reaches a write (R14). Query strings
//! get the same character check.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError, ProblemKind};

/// Characters no text field may hold: the C0 controls but tab, line feed and carriage
/// return, and DEL. PostgreSQL cannot store U+0000 at all, and none of these has a place
/// in a name, an address or an identifier; refusing them on both backends keeps SQLite
/// and PostgreSQL answering alike.
pub fn storable(text: &str) -> bool {
    !text
        .chars()
        .any(|c| (c.is_control() && (c as u32) < 0x80 && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}')
}

fn unstorable(field: &str) -> FieldError {
    FieldError::new(
        if field.is_empty() { "body" } else { field },
        "control_character",
        "must not contain control characters (such as U+0000)",
    )
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The longest text any field takes (a notice's or a notification's body); fields with a
/// shorter limit check their own.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// The most items any list in a body may hold (a bulk reassign's contact ids); lists with a
/// smaller limit check their own.
pub const MAX_ITEMS: usize = 1_000;
/// The longest value a query parameter may have (free-text filters check a shorter one).
pub const MAX_QUERY_VALUE_CHARS: usize = 1_000;
/// Unknown fields named in one answer: each costs a parse of the body, so a body made of
/// thousands of them must not cost thousands of parses.
const MAX_UNKNOWN_REPORTED: usize = 20;

/// Every string longer than [`MAX_TEXT_CHARS`] and every list longer than [`MAX_ITEMS`], as
/// field errors: no request is parsed, checked or stored with more than that.
fn find_oversized(prefix: &str, value: &Value, out: &mut Vec<FieldError>) {
    let name = |p: &str| {
        if p.is_empty() {
            "body".to_string()
        } else {
            p.to_string()
        }
    };
    match value {
        Value::String(s) if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS => {
            out.push(FieldError::new(
                &name(prefix),
                "length",
                format!("must be at most {MAX_TEXT_CHARS} characters long"),
            ))
        }
        Value::Array(items) if items.len() > MAX_ITEMS => out.push(FieldError::new(
            &name(prefix),
            "items",
            format!("must list at most {MAX_ITEMS} items"),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_oversized(&format!("{prefix}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                find_oversized(&join(prefix, key), item, out);
            }
        }
        _ => {}
    }
}

/// A list field that must name something (`minItems: 1`), checked by the handler before the
/// write, so that an empty list is refused as bad input whatever `If-Match` says.
pub fn not_empty<T>(field: &str, items: &[T], what: &str) -> Result<(), ApiError> {
    if items.is_empty() {
        return Err(ApiError::field(
            field,
            "required",
            format!("must name at least one {what}"),
        ));
    }
    Ok(())
}

/// A list field's upper bound, checked by the handler that reads it.
pub fn at_most<T>(field: &str, items: &[T], max: usize) -> Result<(), ApiError> {
    if items.len() > max {
        return Err(ApiError::field(
            field,
            "items",
            format!("must list at most {max} items"),
        ));
    }
    Ok(())
}

/// Every string in `value` (keys included) that cannot be stored, as field errors.
fn find_unstorable(prefix: &str, value: &Value, out: &mut Vec<FieldError>) {
    match value {
        Value::String(s) if !storable(s) => out.push(unstorable(prefix)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_unstorable(&format!("{prefix}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = join(prefix, key);
                if !storable(key) {
                    out.push(unstorable(&path));
                } else {
                    find_unstorable(&path, item, out);
                }
            }
        }
        _ => {}
    }
}

/// Numbers written with a zero fraction (`196.0`) become integers: JSON Schema counts them as
/// integers (draft 2020-12 §6.1.1 of the validation vocabulary), so a field the document
/// types `integer` takes them, while serde would refuse them for an integer type.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                // Exactly representable, within i64: 2^63 itself is not.
                if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// The object holding the last key of a serde path (`preferences.x` → `preferences`), for
/// removing an unknown key.
fn parent_object<'a>(root: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Map<String, Value>> {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let mut here = root;
    for segment in &segments[..segments.len().saturating_sub(1)] {
        here = match segment {
            Segment::Map { key } => here.get_mut(key.as_str())?,
            Segment::Seq { index } => here.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    here.as_object_mut()
}

/// The field named by serde's "unknown field `x`, expected …" message.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// The field named by serde's "missing field `x`" message.
fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else {
        text
    }
}

/// A body that is a JSON object within the bounds on every string and list.
fn check_shape(value: &Value) -> Result<(), ApiError> {
    if !value.is_object() {
        return Err(
            ApiError::new(ProblemKind::ValidationFailed, "The body must be a JSON object.")
                .with_errors(vec![FieldError::new("body", "type", "must be a JSON object")]),
        );
    }
    let mut errors = Vec::new();
    find_oversized("", value, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Turns a JSON value into `T`, or into every problem with it: not an object, too long a
/// string or list, unknown fields (by name, up to a bound), unstorable characters, then the
/// first type error.
pub fn parse_object<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    check_shape(&value)?;
    integral_numbers(&mut value);
    let mut errors = Vec::new();
    find_unstorable("", &value, &mut errors);
    // Each pass names one unknown field; drop it and look again, so all are reported (up
    // to a bound).
    for _ in 0..=count_keys(&value).min(MAX_UNKNOWN_REPORTED) {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) if errors.is_empty() => return Ok(parsed),
            Ok(_) => break,
            Err(err) => err,
        };
        let message = err.inner().to_string();
        let Some(name) = unknown_field_name(&message).map(str::to_string) else {
            if errors.is_empty() {
                errors.push(type_error(&path_text(err.path()), &message));
            }
            break;
        };
        // The path ends with the unknown key itself.
        let field = path_text(err.path());
        let field = if field.is_empty() { name.clone() } else { field };
        errors.push(FieldError::new(
            &field,
            "unknown_field",
            "is not a field of this request",
        ));
        if parent_object(&mut value, err.path())
            .and_then(|map| map.remove(&name))
            .is_none()
        {
            break;
        }
    }
    Err(ApiError::validation(errors))
}

/// A missing field or a value of the wrong type, at `at` (empty: the body itself).
fn type_error(at: &str, message: &str) -> FieldError {
    match missing_field_name(message) {
        Some(name) => FieldError::new(&join(at, name), "required", "is required"),
        None if at.is_empty() => FieldError::new("body", "invalid", type_message(message)),
        None => FieldError::new(at, "invalid", type_message(message)),
    }
}

fn count_keys(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        Value::Array(items) => items.iter().map(count_keys).sum(),
        _ => 0,
    }
}

/// serde's wording, minus the Rust-isms a front end should not show.
fn type_message(message: &str) -> String {
    message.replace("a string", "text").replace("`", "'")
}

/// A JSON object request body, fully checked (see the module docs). Size and content type
/// are checked first by actix's JSON reader, configured in `lib.rs`.
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            parse_object(value).map(Body).map_err(Into::into)
        })
    }
}

/// A query string whose values were checked for unstorable characters before being parsed
/// into `T` (filters such as `q` and `external_id` reach the database).
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn check_query(raw: &str) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
        ApiError::new(
            ProblemKind::ValidationFailed,
            format!("The query string is invalid: {e}."),
        )
    })?;
    let mut errors: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, v)| !storable(k) || !storable(v))
        .map(|(k, _)| unstorable(if storable(k) { k } else { "query" }))
        .collect();
    errors.extend(
        pairs
            .iter()
            .filter(|(k, v)| storable(k) && (k.chars().count() > 100 || v.chars().count() > MAX_QUERY_VALUE_CHARS))
            .map(|(k, _)| {
                FieldError::new(
                    if k.chars().count() > 100 { "query" } else { k },
                    "length",
                    format!("must be at most {MAX_QUERY_VALUE_CHARS} characters long"),
                )
            }),
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = check_query(req.query_string())
            .map_err(actix_web::Error::from)
            .and_then(|()| {
                web::Query::<T>::from_query(req.query_string())
                    .map(|q| Query(q.into_inner()))
                    .map_err(|e| crate::error::extractors::query(e, req))
            });
        std::future::ready(result)
    }
}

/// The request's `Idempotency-Key`, for a create that handles its own retries because its
/// answer carries a secret that is never kept (see `idempotency::NOT_KEPT`).
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = match req.headers().get(crate::idempotency::HEADER) {
            None => Ok(None),
            Some(raw) => crate::idempotency::sane_key(raw).map(Some).ok_or_else(|| {
                ApiError::field(
                    crate::idempotency::HEADER,
                    "format",
                    "must be 1 to 255 visible ASCII characters",
                )
            }),
        };
        std::future::ready(value.map(IdempotencyKey))
    }
}

/// The request's `If-Match` header (RFC 9110 §13.1.1), for writes that honour it.
pub struct IfMatch(pub Option<String>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = match req.headers().get(actix_web::http::header::IF_MATCH) {
            None => Ok(None),
            // An empty value names no entity tag at all: it is malformed, not a precondition
            // that fails (the document says `minLength: 1`).
            Some(v) => match v.to_str().map(str::trim) {
                Ok(s) if !s.is_empty() => Ok(Some(s.to_string())),
                _ => Err(ApiError::field(
                    "If-Match",
                    "format",
                    "must be an entity tag from an ETag header, or *",
                )),
            },
        };
        std::future::ready(value.map(IfMatch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        line1: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Request {
        name: String,
        address: Option<Inner>,
    }

    fn fields(err: ApiError) -> Vec<(String, String)> {
        err.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect()
    }

    #[test]
    fn only_objects_are_bodies() {
        for body in [json!(["renamed", null]), json!("x"), json!(1), json!(null), json!(true)] {
            let err = parse_object::<Request>(body).unwrap_err();
            assert_eq!(err.kind(), ProblemKind::ValidationFailed);
            assert_eq!(fields(err), vec![("body".into(), "type".into())]);
        }
        assert!(parse_object::<Request>(json!({"name": "a"})).is_ok());
    }

    #[test]
    fn every_unknown_field_is_named_at_any_depth() {
        let err =
            parse_object::<Request>(json!({"name": "a", "nmae": 1, "zzz": 2, "address": {"line9": "x"}})).unwrap_err();
        let mut got = fields(err);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("address.line9".into(), "unknown_field".into()),
                ("nmae".into(), "unknown_field".into()),
                ("zzz".into(), "unknown_field".into()),
            ]
        );
    }

    #[test]
    fn integral_numbers_are_integers() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Grace {
            grace_seconds: i64,
            price: f64,
        }
        let parsed: Grace = parse_object(json!({"grace_seconds": 196.0, "price": 2.5})).unwrap();
        assert_eq!((parsed.grace_seconds, parsed.price), (196, 2.5));
        let err = parse_object::<Grace>(json!({"grace_seconds": 1.5, "price": 1})).unwrap_err();
        assert_eq!(fields(err), vec![("grace_seconds".into(), "invalid".into())]);
    }

    #[test]
    fn control_characters_are_refused_wherever_they_are() {
        let err = parse_object::<Request>(json!({"name": "a\u{0}b", "address": {"line1": "x\u{1b}"}})).unwrap_err();
        let mut got = fields(err);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("address.line1".into(), "control_character".into()),
                ("name".into(), "control_character".into()),
            ]
        );
        assert!(storable("tab\there\r\nnew line, ünïcode ✓"));
        assert!(!storable("\u{7f}"));
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = parse_object::<Request>(json!({"name": 5})).unwrap_err();
        assert_eq!(fields(err), vec![("name".into(), "invalid".into())]);
        let err = parse_object::<Request>(json!({})).unwrap_err();
        assert_eq!(fields(err), vec![("name".into(), "required".into())]);
    }

    #[test]
    fn query_strings_are_checked_too() {
        assert!(check_query("q=ada&limit=5").is_ok());
        assert!(check_query("q=a%00b").is_err());
        assert!(check_query("q=ok%0Aline").is_ok());
    }
}
