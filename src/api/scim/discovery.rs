//! The discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`. They describe what this server supports, the same for every organization, so
//! they need no credential (RFC 7644 §4 leaves it to the service provider).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::api::scim::protocol::{respond, ScimError};
use crate::api::scim::render::{base, list};
use crate::domain::scim::{Attribute, GROUP_ATTRIBUTES, GROUP_SCHEMA, USER_ATTRIBUTES, USER_SCHEMA};
use crate::error::ApiError;
use crate::service::scim::MAX_RESULTS;

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub async fn service_provider_config(req: HttpRequest) -> HttpResponse {
    let body = json!({
        "schemas": [SPC_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "Authorization: Bearer with a credential that holds scim.provision in the organization.",
            "primary": true
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", base(&req)) },
    });
    respond(StatusCode::OK, &body)
}

fn resource_types(base: &str) -> Vec<Value> {
    [
        ("User", "/Users", USER_SCHEMA, "A member of the organization"),
        ("Group", "/Groups", GROUP_SCHEMA, "A role of the organization"),
    ]
    .into_iter()
    .map(|(id, endpoint, schema, description)| {
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": id, "name": id, "endpoint": endpoint, "description": description,
            "schema": schema, "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{id}") },
        })
    })
    .collect()
}

pub async fn list_resource_types(req: HttpRequest) -> HttpResponse {
    let all = resource_types(&base(&req));
    respond(StatusCode::OK, &list(all.len() as i64, 1, all))
}

pub async fn get_resource_type(req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ScimError> {
    let found = resource_types(&base(&req)).into_iter().find(|r| r["id"] == id.as_str());
    let found = found.ok_or_else(|| ApiError::not_found("resource type"))?;
    Ok(respond(StatusCode::OK, &found))
}

fn attribute(a: &Attribute) -> Value {
    let mut doc = json!({
        "name": a.name, "type": a.kind, "multiValued": a.multi_valued, "description": a.description,
        "required": a.required, "caseExact": a.case_exact, "mutability": a.mutability.as_str(),
        "returned": a.returned, "uniqueness": a.uniqueness,
    });
    if !a.sub_attributes.is_empty() {
        doc["subAttributes"] = a.sub_attributes.iter().map(attribute).collect();
    }
    if !a.reference_types.is_empty() {
        doc["referenceTypes"] = json!(a.reference_types);
    }
    doc
}

/// A read-only attribute of the discovery schemas themselves.
fn meta_attribute(name: &str, kind: &str, multi_valued: bool) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": multi_valued, "description": name, "required": false,
        "caseExact": false, "mutability": "readOnly", "returned": "default", "uniqueness": "none",
    })
}

/// Each schema served: its id, name, description and attributes.
fn described() -> [(&'static str, &'static str, &'static str, Vec<Value>); 5] {
    let text = |n| meta_attribute(n, "string", false);
    [
        (
            USER_SCHEMA,
            "User",
            "A member of the organization",
            USER_ATTRIBUTES.iter().map(attribute).collect(),
        ),
        (
            GROUP_SCHEMA,
            "Group",
            "A role of the organization",
            GROUP_ATTRIBUTES.iter().map(attribute).collect(),
        ),
        (
            SPC_SCHEMA,
            "ServiceProviderConfig",
            "What this service provider supports",
            vec![text("documentationUri")],
        ),
        (
            RESOURCE_TYPE_SCHEMA,
            "ResourceType",
            "A type of resource",
            vec![text("name"), text("endpoint"), text("schema")],
        ),
        (
            SCHEMA_SCHEMA,
            "Schema",
            "A resource's attributes",
            vec![
                text("name"),
                text("description"),
                meta_attribute("attributes", "complex", true),
            ],
        ),
    ]
}

fn schemas(base: &str) -> Vec<Value> {
    described()
        .into_iter()
        .map(|(id, name, description, attributes)| {
            json!({
                "schemas": [SCHEMA_SCHEMA], "id": id, "name": name, "description": description, "attributes": attributes,
                "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
            })
        })
        .collect()
}

pub async fn list_schemas(req: HttpRequest) -> HttpResponse {
    let all = schemas(&base(&req));
    respond(StatusCode::OK, &list(all.len() as i64, 1, all))
}

pub async fn get_schema(req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ScimError> {
    let found = schemas(&base(&req)).into_iter().find(|s| s["id"] == id.as_str());
    let found = found.ok_or_else(|| ApiError::not_found("schema"))?;
    Ok(respond(StatusCode::OK, &found))
}
