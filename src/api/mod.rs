//! The HTTP surface: one module per resource, all registered in [`routes`].

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod caretakers;
pub mod contacts;
pub mod extract;
pub mod health;
pub mod impersonations;
pub mod invites;
pub mod lifecycle;
pub mod me;
pub mod metrics;
pub mod notifications;
pub mod pagination;
pub mod roles;
pub mod scim;
pub mod users;
pub mod views;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::state::AppState;

/// The most roles one request may name for a membership or an invitation.
pub const MAX_ROLE_IDS: usize = 50;

/// Every documented operation. The OpenAPI document is collected from exactly these.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::jwks)
        .service(auth::sign_up)
        .service(auth::log_in)
        .service(auth::refresh)
        .service(auth::log_out)
        .service(auth::switch_account)
        .service(auth::request_password_reset)
        .service(auth::confirm_password_reset)
        .service(me::get_me)
        .service(me::change_password)
        .service(accounts::list_my_accounts)
        .service(accounts::get_account)
        .service(accounts::get_account_tree)
        .service(accounts::create_sub_account)
        .service(accounts::update_account)
        .service(accounts::close_account)
        .service(accounts::move_account)
        .service(accounts::get_billing_profile)
        .service(accounts::update_billing_profile)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::set_user_roles)
        .service(users::move_user)
        .service(users::transfer_ownership)
        .service(lifecycle::deactivate_user)
        .service(lifecycle::reactivate_user)
        .service(lifecycle::delete_user)
        .service(lifecycle::restore_user)
        .service(lifecycle::get_seats)
        .service(roles::list_permissions)
        .service(roles::list_roles)
        .service(roles::create_role)
        .service(roles::get_role)
        .service(roles::update_role)
        .service(roles::delete_role)
        .service(invites::create_invite)
        .service(invites::list_invites)
        .service(invites::get_invite)
        .service(invites::resend_invite)
        .service(invites::copy_invite_link)
        .service(invites::revoke_invite)
        .service(invites::preview_invitation)
        .service(invites::accept_invitation)
        .service(caretakers::get_caretaker)
        .service(caretakers::assign_caretaker)
        .service(caretakers::replace_caretaker)
        .service(caretakers::remove_caretaker)
        .service(caretakers::list_managed_users)
        .service(caretakers::act_as)
        .service(caretakers::stop_acting_as)
        .service(impersonations::start_impersonation)
        .service(impersonations::get_impersonation)
        .service(impersonations::end_impersonation)
        .service(impersonations::list_impersonations)
        .service(impersonations::list_my_impersonations)
        .service(notifications::post_user_notification)
        .service(notifications::list_notifications)
        .service(notifications::retry_notification)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::list_webhook_deliveries)
        .service(webhooks::replay_webhook_delivery)
        .service(api_keys::create_api_key)
        .service(api_keys::list_api_keys)
        .service(api_keys::get_api_key)
        .service(api_keys::rotate_api_key)
        .service(api_keys::revoke_api_key)
        .service(api_keys::exchange_client_credentials)
        .service(audit::list_audit_events)
        .service(audit::export_audit_events)
        .service(contacts::create_contact)
        .service(contacts::list_contacts)
        .service(contacts::reassign_contacts)
        .service(contacts::get_contact)
        .service(contacts::update_contact)
        .service(contacts::delete_contact)
        .service(contacts::send_contact_notice);
}

/// `/openapi.json`: the document, byte for byte as committed in `openapi/openapi.json`.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

/// Anything no route took: 405 with `Allow` for a known path called with another method,
/// 404 otherwise (also when the method is allowed but a path parameter cannot be an id, such
/// as `GET /v1/contacts/x`, which no route takes).
pub async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let method = req.method().as_str();
    Err(match state.routes.allowed(req.path()) {
        Some(allow) if !allow.split(", ").any(|m| m == method) => ApiError::method_not_allowed(allow),
        _ => ApiError::new(
            crate::error::ProblemKind::NotFound,
            format!("There is no route {}.", req.path()),
        ),
    })
}

/// For PATCH fields where absent means "leave as is" and `null` means "clear":
/// `#[serde(default, deserialize_with = "crate::api::nullable")] field: Option<Option<T>>`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
