//! SCIM representations of Steward's users and groups (RFC 7643 §4).

use actix_web::HttpRequest;
use chrono::{NaiveDateTime, SecondsFormat};
use serde_json::{json, Value};

use crate::domain::scim::{GROUP_SCHEMA, LIST_SCHEMA, USER_SCHEMA};
use crate::domain::MembershipStatus;
use crate::service::scim::{Page, ScimGroup, ScimUser};

/// The absolute base URL of the SCIM service, as the client reached it.
pub fn base(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}/scim/v2", info.scheme(), info.host())
}

/// RFC 3339 in UTC, with the precision the time is stored with, so that a `meta.lastModified`
/// filter given back a time it read compares with it exactly.
pub fn time(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn meta(kind: &str, created: NaiveDateTime, modified: NaiveDateTime, location: String, version: &str) -> Value {
    json!({
        "resourceType": kind,
        "created": time(created),
        "lastModified": time(modified),
        "location": location,
        "version": format!("W/{version}"),
    })
}

pub fn user(u: &ScimUser, base: &str) -> Value {
    let groups: Vec<Value> = u
        .roles
        .iter()
        .map(|r| json!({ "value": r.id, "$ref": format!("{base}/Groups/{}", r.id), "display": r.name }))
        .collect();
    let mut doc = json!({
        "schemas": [USER_SCHEMA],
        "id": u.user.id,
        "userName": u.user_name(),
        "name": { "givenName": u.user.first_name, "familyName": u.user.last_name },
        "displayName": format!("{} {}", u.user.first_name, u.user.last_name),
        "emails": [{ "value": u.user.email }],
        "active": u.membership.status == MembershipStatus::Active,
        "meta": meta("User", u.membership.created_at, u.last_modified(), format!("{base}/Users/{}", u.user.id), &u.version()),
    });
    if let Some(external_id) = &u.membership.external_id {
        doc["externalId"] = external_id.clone().into();
    }
    if !groups.is_empty() {
        doc["groups"] = groups.into();
    }
    doc
}

pub fn group(g: &ScimGroup, base: &str) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|u| json!({ "value": u.id, "$ref": format!("{base}/Users/{}", u.id) }))
        .collect();
    let mut doc = json!({
        "schemas": [GROUP_SCHEMA],
        "id": g.role.id,
        "displayName": g.role.name,
        "meta": meta("Group", g.role.created_at, g.last_modified, format!("{base}/Groups/{}", g.role.id), &g.version()),
    });
    if let Some(external_id) = &g.role.external_id {
        doc["externalId"] = external_id.clone().into();
    }
    if !members.is_empty() {
        doc["members"] = members.into();
    }
    doc
}

/// A ListResponse (RFC 7644 §3.4.2) of already rendered resources.
pub fn list(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A page of resources, each rendered and projected.
pub fn page<T>(page: &Page<T>, render: impl Fn(&T) -> Value) -> Value {
    list(page.total, page.start_index, page.items.iter().map(render).collect())
}
