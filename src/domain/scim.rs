//! SCIM 2.0 vocabulary (RFC 7643, RFC 7644) that is neither HTTP nor storage: the attributes
//! Steward's User and Group resources have, the documents a client sends, and PATCH
//! operations applied to a resource's JSON form.
//!
//! Steward keeps what its model has: a User is a member of the organization (`userName`,
//! `name.givenName`, `name.familyName`, one email, `externalId`, `active`); a Group is a
//! role (`displayName`, `members`). The schema published at `/scim/v2/Schemas` is
//! [`USER_ATTRIBUTES`] and [`GROUP_ATTRIBUTES`], so a client knows which attributes exist
//! and which it can change.

use serde_json::{Map, Value};

use crate::domain::scim_filter::{self, CompareOp, Filter, Literal, PatchPath};
use crate::error::{ApiError, ProblemKind};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM failure: a problem of `kind` (its status) with the RFC 7644 §3.12 `scimType`.
pub fn scim_error(scim_type: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(ProblemKind::ValidationFailed, detail).with_scim_type(scim_type)
}

fn invalid_value(detail: impl Into<String>) -> ApiError {
    scim_error("invalidValue", detail)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
        }
    }
}

/// One attribute of a resource's schema (RFC 7643 §7).
#[derive(Debug)]
pub struct Attribute {
    pub name: &'static str,
    /// `string`, `boolean`, `complex`, `reference`, `dateTime`.
    pub kind: &'static str,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    /// `always` or `default`.
    pub returned: &'static str,
    /// `none` or `server`.
    pub uniqueness: &'static str,
    pub description: &'static str,
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
}

const fn attr(name: &'static str, kind: &'static str, mutability: Mutability, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability,
        returned: "default",
        uniqueness: "none",
        description,
        reference_types: &[],
        sub_attributes: &[],
    }
}

use Mutability::{Immutable, ReadOnly, ReadWrite};

/// The User resource's attributes. `name` and its parts, `emails` and `active` are required:
/// Steward's users always have them, so they can be replaced but never removed.
pub static USER_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        uniqueness: "server",
        required: true,
        ..attr(
            "userName",
            "string",
            ReadWrite,
            "The identity provider's unique name for the user, unique within the organization regardless of case. A user created outside SCIM answers to their email.",
        )
    },
    Attribute {
        required: true,
        sub_attributes: &[
            Attribute {
                required: true,
                ..attr("givenName", "string", ReadWrite, "The first name (1 to 100 characters).")
            },
            Attribute {
                required: true,
                ..attr("familyName", "string", ReadWrite, "The last name (1 to 100 characters).")
            },
        ],
        ..attr("name", "complex", ReadWrite, "The components of the user's name.")
    },
    attr(
        "displayName",
        "string",
        ReadOnly,
        "The given name and the family name, as Steward shows them.",
    ),
    Attribute {
        multi_valued: true,
        required: true,
        sub_attributes: &[
            Attribute {
                required: true,
                ..attr("value", "string", ReadWrite, "The email address.")
            },
        ],
        ..attr(
            "emails",
            "complex",
            ReadWrite,
            "The user's email address: one, the primary one (or else the last) of those sent; `primary` and `type` are not kept. Optional on create when userName is an email address.",
        )
    },
    Attribute {
        case_exact: true,
        ..attr(
            "externalId",
            "string",
            ReadWrite,
            "The identity provider's id for the user (1 to 200 characters), unique within the organization.",
        )
    },
    Attribute {
        required: true,
        ..attr(
            "active",
            "boolean",
            ReadWrite,
            "false deactivates the membership (login refused, seat closed); true reactivates it.",
        )
    },
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            attr("value", "string", ReadOnly, "The group's id."),
            Attribute {
                reference_types: &["Group"],
                ..attr("$ref", "reference", ReadOnly, "The group's URI.")
            },
            attr("display", "string", ReadOnly, "The group's name."),
        ],
        ..attr(
            "groups",
            "complex",
            ReadOnly,
            "The groups (roles) the user holds; change them through the Groups.",
        )
    },
];

/// The Group resource's attributes.
pub static GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        case_exact: true,
        ..attr(
            "externalId",
            "string",
            ReadWrite,
            "The identity provider's id for the group (1 to 200 characters). Built-in roles take none.",
        )
    },
    Attribute {
        required: true,
        uniqueness: "server",
        ..attr(
            "displayName",
            "string",
            ReadWrite,
            "The role's name (1 to 100 characters), unique within the organization. Built-in roles cannot be renamed.",
        )
    },
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            attr("value", "string", Immutable, "The user's id."),
            Attribute {
                reference_types: &["User"],
                ..attr("$ref", "reference", Immutable, "The user's URI.")
            },
        ],
        ..attr(
            "members",
            "complex",
            ReadWrite,
            "The users who hold the role. A user keeps at least one role.",
        )
    },
];

/// The attribute a path names (case-insensitive), if the resource has it.
fn lookup<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

// ---- documents ----

/// A user as a client describes it (POST, PUT, or the result of a PATCH); whatever is
/// absent is `None`. Attributes Steward does not keep are ignored.
#[derive(Debug, Default, PartialEq)]
pub struct UserDocument {
    pub user_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The primary email, or else the last one (the one added last).
    pub email: Option<String>,
    /// `Some(None)`: absent or null, which clears it.
    pub external_id: Option<String>,
    pub active: Option<bool>,
}

fn text(doc: &Map<String, Value>, name: &str, field: &str) -> Result<Option<String>, ApiError> {
    match get(doc, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_value(format!("{field} must be a string."))),
    }
}

/// A member of an object by attribute name, regardless of case.
fn get<'a>(doc: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    doc.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// SCIM booleans, and the strings `"True"`/`"False"` some identity providers send.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl UserDocument {
    pub fn parse(doc: &Value) -> Result<Self, ApiError> {
        let doc = doc
            .as_object()
            .ok_or_else(|| scim_error("invalidSyntax", "The body must be a JSON object."))?;
        let name = match get(doc, "name") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid_value("name must be an object.")),
        };
        let active = match get(doc, "active") {
            None | Some(Value::Null) => None,
            Some(v) => Some(boolean(v).ok_or_else(|| invalid_value("active must be true or false."))?),
        };
        Ok(Self {
            user_name: text(doc, "userName", "userName")?,
            given_name: text(&name, "givenName", "name.givenName")?,
            family_name: text(&name, "familyName", "name.familyName")?,
            email: primary_email(get(doc, "emails"))?,
            external_id: text(doc, "externalId", "externalId")?,
            active,
        })
    }
}

/// The primary address of `emails`, else the last.
fn primary_email(emails: Option<&Value>) -> Result<Option<String>, ApiError> {
    let list = match emails {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid_value("emails must be an array.")),
    };
    let primary = list
        .iter()
        .find(|e| e.get("primary").and_then(boolean) == Some(true))
        .or_else(|| list.last());
    match primary.map(|e| e.get("value")) {
        None | Some(None) | Some(Some(Value::Null)) => Ok(None),
        Some(Some(Value::String(s))) => Ok(Some(s.clone())),
        Some(Some(_)) => Err(invalid_value("emails[].value must be a string.")),
    }
}

/// A group as a client describes it.
#[derive(Debug, Default, PartialEq)]
pub struct GroupDocument {
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// The members' user ids, as sent; `None` when `members` is absent.
    pub members: Option<Vec<String>>,
}

impl GroupDocument {
    pub fn parse(doc: &Value) -> Result<Self, ApiError> {
        let doc = doc
            .as_object()
            .ok_or_else(|| scim_error("invalidSyntax", "The body must be a JSON object."))?;
        let members = match get(doc, "members") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|m| match m.get("value") {
                        Some(Value::String(s)) => Ok(s.clone()),
                        _ => Err(invalid_value("Each member needs a value: the user's id.")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(invalid_value("members must be an array.")),
        };
        Ok(Self {
            display_name: text(doc, "displayName", "displayName")?,
            external_id: text(doc, "externalId", "externalId")?,
            members,
        })
    }
}

// ---- PATCH (RFC 7644 §3.5.2) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug)]
pub struct PatchOperation {
    pub kind: PatchKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Reads a PatchOp message: its schema, and `Operations` whose `op` names are compared
/// regardless of case (some identity providers send `"Replace"`).
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOperation>, ApiError> {
    let names_schema = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_SCHEMA)));
    if !names_schema {
        return Err(scim_error(
            "invalidSyntax",
            format!("A PATCH body lists the schema {PATCH_SCHEMA}."),
        ));
    }
    let operations = body
        .as_object()
        .and_then(|m| get(m, "Operations"))
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| scim_error("invalidSyntax", "A PATCH body has a non-empty Operations array."))?;
    operations.iter().map(parse_operation).collect()
}

fn parse_operation(op: &Value) -> Result<PatchOperation, ApiError> {
    let op = op
        .as_object()
        .ok_or_else(|| scim_error("invalidSyntax", "Each operation is an object."))?;
    let kind = match get(op, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => PatchKind::Add,
        Some("replace") => PatchKind::Replace,
        Some("remove") => PatchKind::Remove,
        _ => {
            return Err(scim_error(
                "invalidSyntax",
                "Each operation's op is add, replace or remove.",
            ))
        }
    };
    let path = match get(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(
            scim_filter::parse_path(p)
                .map_err(|e| scim_error("invalidPath", format!("The path {p:?} cannot be read: {e}.")))?,
        ),
        Some(_) => return Err(scim_error("invalidPath", "path must be a string.")),
    };
    let value = get(op, "value").cloned();
    if kind != PatchKind::Remove && value.is_none() {
        return Err(invalid_value("add and replace need a value."));
    }
    if kind == PatchKind::Remove && path.is_none() {
        return Err(scim_error("noTarget", "remove needs a path."));
    }
    Ok(PatchOperation { kind, path, value })
}

/// Applies operations, in order, to `doc`: a resource's writable attributes keyed by their
/// schema names. Every path must name an attribute of `attributes` that a client may change.
pub fn apply_patch(
    doc: &mut Map<String, Value>,
    attributes: &[Attribute],
    ops: &[PatchOperation],
) -> Result<(), ApiError> {
    for op in ops {
        match (&op.path, &op.value) {
            (Some(path), value) => apply_at(doc, attributes, op.kind, path, value.as_ref())?,
            (None, Some(Value::Object(values))) => {
                for (key, value) in values {
                    let path = scim_filter::parse_path(key)
                        .map_err(|e| scim_error("invalidPath", format!("{key:?} cannot be read: {e}.")))?;
                    // Attributes Steward does not keep are ignored in a value object, as in a
                    // POST or a PUT; a path that names one is refused.
                    let top = path.attr.split('.').next().unwrap_or_default();
                    if lookup(attributes, top).is_some() {
                        apply_at(doc, attributes, op.kind, &path, Some(value))?;
                    }
                }
            }
            (None, _) => return Err(invalid_value("An operation without a path takes an object value.")),
        }
    }
    Ok(())
}

fn apply_at(
    doc: &mut Map<String, Value>,
    attributes: &[Attribute],
    kind: PatchKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ApiError> {
    let (top, dotted_sub) = match path.attr.split_once('.') {
        Some((top, sub)) => (top, Some(sub.to_string())),
        None => (path.attr.as_str(), None),
    };
    let attribute = lookup(attributes, top).ok_or_else(|| {
        scim_error(
            "invalidPath",
            format!("This resource has no attribute {:?}.", path.attr),
        )
    })?;
    if attribute.mutability == ReadOnly {
        return Err(scim_error("mutability", format!("{} is read-only.", attribute.name)));
    }
    let sub_name = dotted_sub.or_else(|| path.sub.clone());
    let sub = match &sub_name {
        Some(s) => Some(
            lookup(attribute.sub_attributes, s)
                .ok_or_else(|| scim_error("invalidPath", format!("{} has no sub-attribute {s:?}.", attribute.name)))?,
        ),
        None => None,
    };
    let key = attribute.name.to_string();
    match (&path.filter, attribute.multi_valued) {
        (Some(filter), true) => apply_filtered(doc, &key, filter, sub, kind, value),
        (Some(_), false) => Err(scim_error(
            "invalidFilter",
            format!("{} is not multi-valued.", attribute.name),
        )),
        (None, true) => apply_multi(doc, &key, kind, value),
        (None, false) => apply_single(doc, &key, sub.map(|s| s.name), kind, value),
    }
}

fn apply_single(
    doc: &mut Map<String, Value>,
    key: &str,
    sub: Option<&str>,
    kind: PatchKind,
    value: Option<&Value>,
) -> Result<(), ApiError> {
    match (sub, kind, value) {
        (None, PatchKind::Remove, _) => {
            doc.remove(key);
        }
        (Some(sub), PatchKind::Remove, _) => {
            if let Some(Value::Object(m)) = doc.get_mut(key) {
                m.remove(sub);
            }
        }
        (None, _, Some(Value::Object(parts))) if doc.get(key).is_some_and(Value::is_object) => {
            // A complex value's sub-attributes replace or add to the ones there (§3.5.2.3).
            if let Some(Value::Object(m)) = doc.get_mut(key) {
                for (k, v) in parts {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        (None, _, Some(v)) => {
            doc.insert(key.to_string(), v.clone());
        }
        (Some(sub), _, Some(v)) => {
            let entry = doc.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(m) => {
                    m.insert(sub.to_string(), v.clone());
                }
                other => {
                    let mut m = Map::new();
                    m.insert(sub.to_string(), v.clone());
                    *other = Value::Object(m);
                }
            }
        }
        (_, _, None) => return Err(invalid_value("add and replace need a value.")),
    }
    Ok(())
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn apply_multi(
    doc: &mut Map<String, Value>,
    key: &str,
    kind: PatchKind,
    value: Option<&Value>,
) -> Result<(), ApiError> {
    match (kind, value) {
        (PatchKind::Remove, _) => {
            doc.remove(key);
        }
        (PatchKind::Replace, Some(v)) => {
            doc.insert(key.to_string(), Value::Array(as_list(v)));
        }
        (PatchKind::Add, Some(v)) => {
            let entry = doc.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Value::Array(Vec::new());
            }
            if let Value::Array(items) = entry {
                let added = as_list(v);
                // A new primary value makes the others secondary (RFC 7643 §2.4).
                if added.iter().any(|a| a.get("primary").and_then(boolean) == Some(true)) {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        item.insert("primary".into(), Value::Bool(false));
                    }
                }
                for item in added {
                    // Adding a value that is there already changes nothing (§3.5.2.1).
                    let same = |e: &Value| e.get("value").is_some() && e.get("value") == item.get("value");
                    if !items.iter().any(same) {
                        items.push(item);
                    }
                }
            }
        }
        (_, None) => return Err(invalid_value("add and replace need a value.")),
    }
    Ok(())
}

fn apply_filtered(
    doc: &mut Map<String, Value>,
    key: &str,
    filter: &Filter,
    sub: Option<&Attribute>,
    kind: PatchKind,
    value: Option<&Value>,
) -> Result<(), ApiError> {
    let mut items = doc.get(key).map(as_list).unwrap_or_default();
    let matched: Vec<usize> = (0..items.len()).filter(|&i| matches(&items[i], filter)).collect();
    match (kind, sub, value) {
        // Removing values that are not there changes nothing.
        (PatchKind::Remove, None, _) => {
            let mut index = 0;
            items.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
        }
        (PatchKind::Remove, Some(sub), _) => {
            for &i in &matched {
                if let Value::Object(m) = &mut items[i] {
                    m.remove(sub.name);
                }
            }
        }
        (_, _, None) => return Err(invalid_value("add and replace need a value.")),
        (_, _, Some(_)) if matched.is_empty() && kind == PatchKind::Replace => {
            return Err(scim_error(
                "noTarget",
                format!("No value of {key} matches the path's filter."),
            ))
        }
        (_, Some(sub), Some(v)) if matched.is_empty() => {
            // add to `emails[type eq "work"].value` when there is none: a new value.
            let mut item = equalities(filter);
            item.insert(sub.name.to_string(), v.clone());
            items.push(Value::Object(item));
        }
        (_, Some(sub), Some(v)) => {
            for &i in &matched {
                if let Value::Object(m) = &mut items[i] {
                    m.insert(sub.name.to_string(), v.clone());
                }
            }
        }
        (_, None, Some(v)) => {
            let replacement = as_list(v);
            let mut index = 0;
            items.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
            items.extend(replacement);
        }
    }
    doc.insert(key.to_string(), Value::Array(items));
    Ok(())
}

/// The `attr eq "value"` terms of a filter, as an object.
fn equalities(filter: &Filter) -> Map<String, Value> {
    let mut out = Map::new();
    for term in filter.conjuncts() {
        if let Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value: Literal::Text(v),
        } = term
        {
            out.insert(attr.clone(), Value::String(v.clone()));
        }
    }
    out
}

/// Whether one value of a multi-valued attribute matches a value filter. Strings compare
/// regardless of case (the sub-attributes Steward keeps are not case-exact).
pub fn matches(item: &Value, filter: &Filter) -> bool {
    let field = |attr: &str| item.as_object().and_then(|m| get(m, attr));
    match filter {
        Filter::And(a, b) => matches(item, a) && matches(item, b),
        Filter::Or(a, b) => matches(item, a) || matches(item, b),
        Filter::Not(inner) => !matches(item, inner),
        Filter::Present(attr) => field(attr).is_some_and(|v| !v.is_null()),
        Filter::ValuePath { .. } => false,
        Filter::Compare { attr, op, value } => match (field(attr), value) {
            (Some(Value::String(have)), Literal::Text(want)) => compare_text(have, *op, want),
            (Some(v), Literal::Bool(want)) => match op {
                CompareOp::Eq => boolean(v) == Some(*want),
                CompareOp::Ne => boolean(v) != Some(*want),
                _ => false,
            },
            (None | Some(Value::Null), Literal::Null) => *op == CompareOp::Eq,
            _ => *op == CompareOp::Ne,
        },
    }
}

fn compare_text(have: &str, op: CompareOp, want: &str) -> bool {
    let (have, want) = (have.to_lowercase(), want.to_lowercase());
    match op {
        CompareOp::Eq => have == want,
        CompareOp::Ne => have != want,
        CompareOp::Co => have.contains(&want),
        CompareOp::Sw => have.starts_with(&want),
        CompareOp::Ew => have.ends_with(&want),
        CompareOp::Gt => have > want,
        CompareOp::Ge => have >= want,
        CompareOp::Lt => have < want,
        CompareOp::Le => have <= want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, attributes: &[Attribute], ops: Value) -> Result<Value, ApiError> {
        let mut doc = doc.as_object().cloned().unwrap_or_default();
        let ops = parse_patch(&json!({ "schemas": [PATCH_SCHEMA], "Operations": ops }))?;
        apply_patch(&mut doc, attributes, &ops)?;
        Ok(Value::Object(doc))
    }

    fn user() -> Value {
        json!({
            "userName": "ada", "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@example.com", "primary": true, "type": "work" }],
            "externalId": "00u1", "active": true
        })
    }

    #[test]
    fn azure_style_operations_with_paths_and_capitalized_ops() {
        let doc = patch(
            user(),
            USER_ATTRIBUTES,
            json!([
                { "op": "Replace", "path": "active", "value": "False" },
                { "op": "replace", "path": "name.givenName", "value": "Augusta" },
                { "op": "Add", "path": "emails[type eq \"work\"].value", "value": "aug@example.com" },
                { "op": "Remove", "path": "externalId" }
            ]),
        )
        .unwrap();
        let parsed = UserDocument::parse(&doc).unwrap();
        assert_eq!(parsed.active, Some(false));
        assert_eq!(parsed.given_name.as_deref(), Some("Augusta"));
        assert_eq!(parsed.email.as_deref(), Some("aug@example.com"));
        assert_eq!(parsed.external_id, None);
    }

    #[test]
    fn an_added_email_takes_the_place_of_the_one_there() {
        let doc = json!({ "userName": "ada", "emails": [{ "value": "ada@example.com", "type": "work" }] });
        let doc = patch(
            doc,
            USER_ATTRIBUTES,
            json!([{ "op": "add", "path": "emails", "value": [{ "value": "new@example.com" }] }]),
        )
        .unwrap();
        assert_eq!(
            UserDocument::parse(&doc).unwrap().email.as_deref(),
            Some("new@example.com")
        );
        let two = json!({ "emails": [{ "value": "a@example.com", "primary": true }, { "value": "b@example.com" }] });
        assert_eq!(
            UserDocument::parse(&two).unwrap().email.as_deref(),
            Some("a@example.com"),
            "primary wins"
        );
    }

    #[test]
    fn okta_style_operations_without_a_path() {
        let doc = patch(
            user(),
            USER_ATTRIBUTES,
            json!([{ "op": "replace", "value": { "active": false, "name": { "familyName": "King" }, "title": "x" } }]),
        )
        .unwrap();
        let parsed = UserDocument::parse(&doc).unwrap();
        assert_eq!(parsed.active, Some(false));
        assert_eq!(parsed.family_name.as_deref(), Some("King"));
        assert_eq!(parsed.given_name.as_deref(), Some("Ada"), "other name parts stay");
    }

    #[test]
    fn group_members_are_added_once_and_removed_by_filter() {
        let doc = json!({ "displayName": "Sales", "members": [{ "value": "usr_1" }] });
        let doc = patch(
            doc,
            GROUP_ATTRIBUTES,
            json!([
                { "op": "add", "path": "members", "value": [{ "value": "usr_1" }, { "value": "usr_2" }] },
                { "op": "remove", "path": "members[value eq \"usr_1\"]" },
                { "op": "remove", "path": "members[value eq \"usr_9\"]" }
            ]),
        )
        .unwrap();
        assert_eq!(
            GroupDocument::parse(&doc).unwrap().members,
            Some(vec!["usr_2".to_string()])
        );
    }

    #[test]
    fn unsupported_operations_name_their_scim_type() {
        let cases = [
            (
                json!([{ "op": "replace", "path": "nickName", "value": "x" }]),
                "invalidPath",
            ),
            (
                json!([{ "op": "replace", "path": "groups", "value": [] }]),
                "mutability",
            ),
            (
                json!([{ "op": "replace", "path": "emails[type eq \"home\"].value", "value": "a@b.c" }]),
                "noTarget",
            ),
            (json!([{ "op": "remove" }]), "noTarget"),
            (json!([{ "op": "move", "path": "active" }]), "invalidSyntax"),
            (json!([{ "op": "replace", "path": "name[", "value": 1 }]), "invalidPath"),
        ];
        for (ops, scim_type) in cases {
            let err = patch(user(), USER_ATTRIBUTES, ops.clone()).unwrap_err();
            assert_eq!(err.scim_type(), Some(scim_type), "{ops}");
        }
        let err = parse_patch(&json!({ "Operations": [] })).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
    }
}
