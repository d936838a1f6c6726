//! SCIM 2.0 provisioning under `/scim/v2` (RFC 7643, RFC 7644): Users are the members of the
//! caller's organization, Groups its roles (see `service::scim`). SCIM is documented by its
//! own discovery endpoints, not by the OpenAPI document, and speaks `application/scim+json`
//! with SCIM error bodies ([`protocol`]).
//!
//! Each handler parses the request, makes one service call and renders the resource.

pub mod discovery;
pub mod protocol;
pub mod render;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::extract::IfMatch;
use crate::auth::extract::Principal;
use crate::domain::scim::{parse_patch, GroupDocument, UserDocument};
use crate::error::ApiError;
use crate::service::{self, scim};
use crate::state::AppState;
use protocol::{list_params, projection_of, resource, respond, strong_if_match, ScimBody, ScimError};

type Reply = Result<HttpResponse, ScimError>;

/// A resource whose other methods answer 405 with `Allow`, as a SCIM error.
fn resource_at(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, ScimError>(ApiError::method_not_allowed(allow.to_string()).into())
    }))
}

/// Every SCIM route. Unknown paths below `/scim/v2` answer 404 as a SCIM error (see
/// [`protocol::middleware`]).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put};
    cfg.service(
        web::scope("/scim/v2")
            .service(resource_at("/ServiceProviderConfig", "GET").route(get().to(discovery::service_provider_config)))
            .service(resource_at("/ResourceTypes", "GET").route(get().to(discovery::list_resource_types)))
            .service(resource_at("/ResourceTypes/{id}", "GET").route(get().to(discovery::get_resource_type)))
            .service(resource_at("/Schemas", "GET").route(get().to(discovery::list_schemas)))
            .service(resource_at("/Schemas/{id}", "GET").route(get().to(discovery::get_schema)))
            .service(resource_at("/.search", "POST").route(post().to(search)))
            .service(
                resource_at("/Users", "GET, POST")
                    .route(get().to(list_users))
                    .route(post().to(create_user)),
            )
            .service(resource_at("/Users/.search", "POST").route(post().to(search)))
            .service(
                resource_at("/Users/{id}", "DELETE, GET, PATCH, PUT")
                    .route(get().to(get_user))
                    .route(put().to(replace_user))
                    .route(patch().to(patch_user))
                    .route(delete().to(delete_user)),
            )
            .service(
                resource_at("/Groups", "GET, POST")
                    .route(get().to(list_groups))
                    .route(post().to(create_group)),
            )
            .service(resource_at("/Groups/.search", "POST").route(post().to(search)))
            .service(
                resource_at("/Groups/{id}", "DELETE, GET, PATCH, PUT")
                    .route(get().to(get_group))
                    .route(put().to(replace_group))
                    .route(patch().to(patch_group))
                    .route(delete().to(delete_group)),
            ),
    );
}

/// `POST /.search` (RFC 7644 §3.4.3) is not supported: use GET with `filter`.
async fn search() -> HttpResponse {
    let detail = "POST .search is not supported; list with GET and a filter.";
    respond(
        StatusCode::NOT_IMPLEMENTED,
        &protocol::error_body(StatusCode::NOT_IMPLEMENTED, None, detail),
    )
}

async fn list_users(state: web::Data<AppState>, principal: Principal, req: HttpRequest) -> Reply {
    let params = list_params(&req)?;
    let page = service::read(&state, move |tx| scim::list_users(tx, &principal, params.request)).await?;
    let base = render::base(&req);
    let body = render::page(&page, |u| params.projection.apply(render::user(u, &base)));
    Ok(respond(StatusCode::OK, &body))
}

async fn get_user(state: web::Data<AppState>, principal: Principal, req: HttpRequest, id: web::Path<String>) -> Reply {
    let id = id.into_inner();
    let user = service::read(&state, move |tx| scim::get_user(tx, &principal, &id)).await?;
    let body = projection_of(&req).apply(render::user(&user, &render::base(&req)));
    Ok(resource(StatusCode::OK, &body, &user.version()))
}

async fn create_user(state: web::Data<AppState>, principal: Principal, req: HttpRequest, body: ScimBody) -> Reply {
    let doc = UserDocument::parse(&body.0)?;
    let user = service::write(&state, move |tx| scim::create_user(tx, &principal, doc)).await?;
    let body = render::user(&user, &render::base(&req));
    Ok(resource(StatusCode::CREATED, &body, &user.version()))
}

async fn replace_user(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    (id, if_match, body): (web::Path<String>, IfMatch, ScimBody),
) -> Reply {
    let (id, doc) = (id.into_inner(), UserDocument::parse(&body.0)?);
    let if_match = strong_if_match(if_match.0);
    let user = service::write_if(&state, if_match, move |tx| scim::replace_user(tx, &principal, &id, doc)).await?;
    let body = render::user(&user, &render::base(&req));
    Ok(resource(StatusCode::OK, &body, &user.version()))
}

async fn patch_user(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    (id, if_match, body): (web::Path<String>, IfMatch, ScimBody),
) -> Reply {
    let (id, ops) = (id.into_inner(), parse_patch(&body.0)?);
    let if_match = strong_if_match(if_match.0);
    let user = service::write_if(&state, if_match, move |tx| scim::patch_user(tx, &principal, &id, ops)).await?;
    let body = render::user(&user, &render::base(&req));
    Ok(resource(StatusCode::OK, &body, &user.version()))
}

async fn delete_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Reply {
    let id = id.into_inner();
    let if_match = strong_if_match(if_match.0);
    service::write_if(&state, if_match, move |tx| scim::delete_user(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_groups(state: web::Data<AppState>, principal: Principal, req: HttpRequest) -> Reply {
    let params = list_params(&req)?;
    let page = service::read(&state, move |tx| scim::list_groups(tx, &principal, params.request)).await?;
    let base = render::base(&req);
    let body = render::page(&page, |g| params.projection.apply(render::group(g, &base)));
    Ok(respond(StatusCode::OK, &body))
}

async fn get_group(state: web::Data<AppState>, principal: Principal, req: HttpRequest, id: web::Path<String>) -> Reply {
    let id = id.into_inner();
    let group = service::read(&state, move |tx| scim::get_group(tx, &principal, &id)).await?;
    let body = projection_of(&req).apply(render::group(&group, &render::base(&req)));
    Ok(resource(StatusCode::OK, &body, &group.version()))
}

async fn create_group(state: web::Data<AppState>, principal: Principal, req: HttpRequest, body: ScimBody) -> Reply {
    let doc = GroupDocument::parse(&body.0)?;
    let group = service::write(&state, move |tx| scim::create_group(tx, &principal, doc)).await?;
    let body = render::group(&group, &render::base(&req));
    Ok(resource(StatusCode::CREATED, &body, &group.version()))
}

async fn replace_group(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    (id, if_match, body): (web::Path<String>, IfMatch, ScimBody),
) -> Reply {
    let (id, doc) = (id.into_inner(), GroupDocument::parse(&body.0)?);
    let if_match = strong_if_match(if_match.0);
    let group = service::write_if(&state, if_match, move |tx| {
        scim::replace_group(tx, &principal, &id, doc)
    })
    .await?;
    let body = render::group(&group, &render::base(&req));
    Ok(resource(StatusCode::OK, &body, &group.version()))
}

async fn patch_group(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    (id, if_match, body): (web::Path<String>, IfMatch, ScimBody),
) -> Reply {
    let (id, ops) = (id.into_inner(), parse_patch(&body.0)?);
    let if_match = strong_if_match(if_match.0);
    let group = service::write_if(&state, if_match, move |tx| scim::patch_group(tx, &principal, &id, ops)).await?;
    let body = render::group(&group, &render::base(&req));
    Ok(resource(StatusCode::OK, &body, &group.version()))
}

async fn delete_group(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Reply {
    let id = id.into_inner();
    let if_match = strong_if_match(if_match.0);
    service::write_if(&state, if_match, move |tx| scim::delete_group(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
