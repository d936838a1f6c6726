//! Contacts (R12): people in an account node who cannot log in. Create, read, change and
//! delete them; move them in bulk from one user to another; send notices to those who
//! subscribe.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::ValidationError;

use crate::api::extract::{Body, IfMatch, Query};
use crate::api::pagination::PageRequest;
use crate::api::views::{utc, versioned};
use crate::auth::extract::Principal;
use crate::db::models::Subscriptions;
use crate::domain::{self, AssigneeState, ContactSubscription, Email};
use crate::error::{ApiError, FieldError, Problem};
use crate::ids::{AccountId, ContactId, UserId};
use crate::service::contacts::{
    self, AssigneeIs, ContactInput, ContactNotice, ContactPatch, ContactQuery, CreateContact, Listed, Reassign,
};
use crate::service::{self, versions};
use crate::state::AppState;

/// The user a contact is assigned to, and where they stand in the contact's organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssigneeView {
    /// `usr_…`
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `active`; `deactivated` (their membership is deactivated, or they are no longer a
    /// member); `archived` (the user was archived). Anything but `active` means the contact
    /// needs a new owner.
    pub state: AssigneeState,
}

/// A contact: a person in an account node who cannot log in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    /// `con_…`
    pub id: String,
    /// The node the contact lives in (`acc_…`).
    pub account_id: String,
    pub name: String,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub phone: Option<String>,
    #[schema(required = true)]
    pub company: Option<String>,
    /// The notices the contact receives.
    pub subscriptions: Vec<ContactSubscription>,
    /// Null when the contact is assigned to nobody.
    #[schema(required = true)]
    pub assignee: Option<AssigneeView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Listed> for ContactView {
    fn from(listed: Listed) -> Self {
        let row = listed.row;
        Self {
            id: row.id.to_string(),
            account_id: row.account_id.to_string(),
            name: row.name,
            email: row.email,
            phone: row.phone,
            company: row.company,
            subscriptions: row.subscriptions.list().to_vec(),
            assignee: listed.assignee.map(|(user, state)| AssigneeView {
                id: user.id.to_string(),
                email: user.email,
                first_name: user.first_name,
                last_name: user.last_name,
                state,
            }),
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<ContactView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Keeps a parsed value, or notes its error under `field` and keeps nothing.
fn keep<T>(errors: &mut Vec<FieldError>, field: &str, parsed: Result<T, ValidationError>) -> Option<T> {
    parsed
        .map_err(|e| {
            let message = e.message.as_ref().map_or_else(|| e.code.to_string(), |m| m.to_string());
            errors.push(FieldError::new(field, &e.code, message));
        })
        .ok()
}

/// A contact's name: trimmed, 1 to 200 characters.
fn contact_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if !(1..=200).contains(&name.chars().count()) {
        let mut e = ValidationError::new("length");
        e.message = Some("must be 1 to 200 characters long".into());
        return Err(e);
    }
    Ok(name.to_string())
}

/// A company: trimmed, at most 200 characters; blank means none.
fn company(raw: &str) -> Result<Option<String>, ValidationError> {
    let company = raw.trim();
    if company.chars().count() > 200 {
        let mut e = ValidationError::new("length");
        e.message = Some("must be at most 200 characters long".into());
        return Err(e);
    }
    Ok((!company.is_empty()).then(|| company.to_string()))
}

/// Create a contact.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContactRequest {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Required when any subscription is on.
    #[serde(default)]
    #[schema(format = "email", max_length = 254)]
    pub email: Option<String>,
    /// 5 to 32 characters: digits, spaces, `+`, `-`, `.`, `(` and `)`, at least 5 digits.
    #[serde(default)]
    #[schema(min_length = 5, max_length = 32)]
    pub phone: Option<String>,
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub company: Option<String>,
    /// The notices the contact receives (default none).
    #[serde(default)]
    pub subscriptions: Option<Vec<ContactSubscription>>,
    /// The user (`usr_…`) the contact is assigned to: an active member of the organization who
    /// can see the contact's node. Absent: the caller, if they hold `contacts.read_assigned`
    /// alone (they may only assign contacts to themselves), else nobody. Null: nobody.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(value_type = Option<String>, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub assigned_user_id: Option<Option<UserId>>,
}

impl CreateContactRequest {
    fn command(self, account: AccountId) -> Result<CreateContact, ApiError> {
        let mut errors = Vec::new();
        let name = keep(&mut errors, "name", contact_name(&self.name));
        let email = self.email.map(|e| keep(&mut errors, "email", Email::parse(&e)));
        let phone = self.phone.map(|p| keep(&mut errors, "phone", domain::parse_phone(&p)));
        let company = self.company.map(|c| keep(&mut errors, "company", company(&c)));
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(ApiError::validation(errors));
        };
        Ok(CreateContact {
            account,
            fields: ContactInput {
                name,
                email: email.flatten(),
                phone: phone.flatten(),
                company: company.flatten().flatten(),
                subscriptions: Subscriptions::new(self.subscriptions.unwrap_or_default()),
            },
            assigned_user_id: self.assigned_user_id,
        })
    }
}

/// Change a contact: a field left out stays as it is; null clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContactRequest {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Null clears it (refused while any subscription is on).
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(format = "email", max_length = 254)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(min_length = 5, max_length = 32)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(max_length = 200)]
    pub company: Option<Option<String>>,
    /// Replaces the subscriptions; null or `[]` turns them all off.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    pub subscriptions: Option<Option<Vec<ContactSubscription>>>,
    /// Null unassigns (not allowed to a caller with `contacts.read_assigned` alone).
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(value_type = Option<String>, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub assigned_user_id: Option<Option<UserId>>,
}

impl UpdateContactRequest {
    fn command(self) -> Result<ContactPatch, ApiError> {
        let mut errors = Vec::new();
        let name = self.name.map(|n| keep(&mut errors, "name", contact_name(&n)));
        let email = self
            .email
            .map(|e| e.map(|e| keep(&mut errors, "email", Email::parse(&e))));
        let phone = self
            .phone
            .map(|p| p.map(|p| keep(&mut errors, "phone", domain::parse_phone(&p))));
        let company = self
            .company
            .map(|c| c.map(|c| keep(&mut errors, "company", company(&c))));
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(ContactPatch {
            name: name.flatten(),
            email: email.map(Option::flatten),
            phone: phone.map(Option::flatten),
            company: company.map(|c| c.flatten().flatten()),
            subscriptions: self.subscriptions.map(|s| Subscriptions::new(s.unwrap_or_default())),
            assigned_user_id: self.assigned_user_id,
        })
    }
}

/// Narrows the assignee filter.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeStateFilter {
    Active,
    Deactivated,
    Archived,
    Unassigned,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListContactsQuery {
    /// Only contacts at or below this node (`acc_…`, within the caller's reach).
    pub account_id: Option<String>,
    /// Only contacts assigned to this user (`usr_…`).
    pub assigned_to: Option<String>,
    /// Only contacts whose assignee is `active`, `deactivated` or `archived`, or that are
    /// `unassigned`.
    #[param(inline)]
    pub assignee_state: Option<AssigneeStateFilter>,
    /// `true`: only contacts assigned to a user who is not active (deactivated or archived):
    /// the contacts that need a new owner. Not combined with `assignee_state`.
    pub assignee_not_active: Option<bool>,
    /// Only contacts subscribed to this notice.
    pub subscription: Option<ContactSubscription>,
    /// Case-insensitive substring of the name or the email.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListContactsQuery {
    fn command(self) -> Result<(ContactQuery, PageRequest), ApiError> {
        let page = PageRequest::parse(self.limit, self.cursor.as_deref(), |id| ContactId::parse(id).is_some())?;
        let assignee = match (self.assignee_state, self.assignee_not_active) {
            (Some(_), Some(true)) => {
                return Err(ApiError::field(
                    "assignee_not_active",
                    "conflict",
                    "cannot be combined with assignee_state",
                ))
            }
            (None, Some(true)) => Some(AssigneeIs::NotActive),
            (Some(AssigneeStateFilter::Active), _) => Some(AssigneeIs::Active),
            (Some(AssigneeStateFilter::Deactivated), _) => Some(AssigneeIs::Deactivated),
            (Some(AssigneeStateFilter::Archived), _) => Some(AssigneeIs::Archived),
            (Some(AssigneeStateFilter::Unassigned), _) => Some(AssigneeIs::Unassigned),
            (None, _) => None,
        };
        if self.q.as_ref().is_some_and(|q| q.trim().chars().count() > 200) {
            return Err(ApiError::field("q", "length", "must be at most 200 characters long"));
        }
        let query = ContactQuery {
            account_id: self.account_id,
            assigned_to: self.assigned_to,
            assignee,
            subscription: self.subscription,
            text: self.q.filter(|q| !q.trim().is_empty()),
        };
        Ok((query, page))
    }
}

/// Create a contact in an account node.
///
/// Needs `contacts.write` over the node. A caller with `contacts.read_assigned` alone (limited
/// users) may only create contacts assigned to themselves, and theirs are when
/// `assigned_user_id` is left out.
#[utoipa::path(
    tag = "contacts",
    operation_id = "createContact",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The node (`acc_…`)", pattern = "^acc_[0-9A-Za-z]{26}$")),
    request_body = CreateContactRequest,
    responses(
        (status = 201, description = "Created", body = ContactView,
            headers(("Location" = String, description = "The contact's URL"))),
        (status = 403, description = "Needs contacts.write over the node; a caller with contacts.read_assigned alone assigns only to themselves", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account, or no such user to assign to, in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`assignee-unavailable`: the user is not active, cannot reach the node, or may not read contacts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; `email` is required (`required_with_subscriptions`) when any subscription is on", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/{account_id}/contacts")]
pub async fn create_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    body: Body<CreateContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command(path.into_inner())?;
    let listed = service::write(&state, move |tx| contacts::create(tx, &principal, cmd)).await?;
    let view = ContactView::from(listed);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/contacts/{}", view.id)))
        .json(view))
}

/// The contacts the caller can see, oldest first.
///
/// `contacts.read_all`: every contact at or below the caller's node; `contacts.read_assigned`
/// alone: only those assigned to the caller.
#[utoipa::path(
    tag = "contacts",
    operation_id = "listContacts",
    security(("bearer" = [])),
    params(ListContactsQuery),
    responses(
        (status = 200, description = "One page", body = ContactPage),
        (status = 403, description = "Needs contacts.read_all or contacts.read_assigned", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter, the cursor or the limit is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/contacts")]
pub async fn list_contacts(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ListContactsQuery>,
) -> Result<web::Json<ContactPage>, ApiError> {
    let (query, page) = query.into_inner().command()?;
    let (rows, next_cursor) = service::read(&state, move |tx| contacts::list(tx, &principal, query, &page)).await?;
    Ok(web::Json(ContactPage {
        items: rows.into_iter().map(ContactView::from).collect(),
        next_cursor,
    }))
}

/// One contact.
#[utoipa::path(
    tag = "contacts",
    operation_id = "getContact",
    security(("bearer" = [])),
    params(("contact_id" = String, Path, description = "A contact id (`con_…`)", pattern = "^con_[0-9A-Za-z]{26}$")),
    responses(
        (status = 200, description = "The contact", body = ContactView),
        (status = 403, description = "Needs contacts.read_all or contacts.read_assigned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact the caller can see", body = Problem, content_type = "application/problem+json"),
    )
)]
// The id's shape is in the route, so that `/v1/contacts/reassign` called with another method
// reaches the fallback (405 with `Allow`) instead of being taken for a contact.
#[get("/v1/contacts/{contact_id:con_[0-9A-Za-z]+}")]
pub async fn get_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ContactId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let listed = service::read(&state, move |tx| contacts::get(tx, &principal, &id)).await?;
    Ok(versioned(versions::of_contact(&listed.row), &ContactView::from(listed)))
}

/// Change a contact.
///
/// Needs `contacts.write`, on a contact the caller can see.
#[utoipa::path(
    tag = "contacts",
    operation_id = "updateContact",
    security(("bearer" = [])),
    params(("contact_id" = String, Path, description = "A contact id (`con_…`)", pattern = "^con_[0-9A-Za-z]{26}$")),
    request_body = UpdateContactRequest,
    responses(
        (status = 200, description = "Changed", body = ContactView),
        (status = 403, description = "Needs contacts.write; a caller with contacts.read_assigned alone assigns only to themselves", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact the caller can see, or no such user to assign to", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`assignee-unavailable`: the user is not active, cannot reach the contact's node, or may not read contacts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; `email` is required (`required_with_subscriptions`) while any subscription is on", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/contacts/{contact_id:con_[0-9A-Za-z]+}")]
pub async fn update_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ContactId>,
    if_match: IfMatch,
    body: Body<UpdateContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, patch) = (path.into_inner(), body.into_inner().command()?);
    let listed = service::write_if(&state, if_match.0, move |tx| {
        contacts::update(tx, &principal, &id, patch)
    })
    .await?;
    Ok(versioned(versions::of_contact(&listed.row), &ContactView::from(listed)))
}

/// Delete a contact.
///
/// Needs `contacts.delete` (standard users do not hold it), on a contact the caller can see.
#[utoipa::path(
    tag = "contacts",
    operation_id = "deleteContact",
    security(("bearer" = [])),
    params(("contact_id" = String, Path, description = "A contact id (`con_…`)", pattern = "^con_[0-9A-Za-z]{26}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs contacts.delete", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact the caller can see", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/contacts/{contact_id:con_[0-9A-Za-z]+}")]
pub async fn delete_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ContactId>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    service::write_if(&state, if_match.0, move |tx| contacts::delete(tx, &principal, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move contacts from one user to another.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignContactsRequest {
    /// The user whose contacts move (`usr_…`; need not be a member any more).
    #[schema(value_type = String, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub from_user_id: UserId,
    /// The user who gets them (`usr_…`): an active member who can see every contact moved.
    #[schema(value_type = String, pattern = "^usr_[0-9A-Za-z]{26}$")]
    pub to_user_id: UserId,
    /// Only contacts at or below this node (`acc_…`); default the caller's whole reach.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^acc_[0-9A-Za-z]{26}$")]
    pub account_id: Option<AccountId>,
    /// Only these contacts (`con_…`, at most 1000); each must be one the caller can see, else
    /// nothing moves. Those not assigned to `from_user_id` stay as they are.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, max_items = 1000)]
    pub contact_ids: Option<Vec<ContactId>>,
}

impl ReassignContactsRequest {
    fn command(self) -> Result<Reassign, ApiError> {
        if self.from_user_id == self.to_user_id {
            return Err(ApiError::field(
                "to_user_id",
                "same_user",
                "must differ from from_user_id",
            ));
        }
        if self.contact_ids.as_ref().is_some_and(|ids| ids.len() > 1000) {
            return Err(ApiError::field(
                "contact_ids",
                "length",
                "must list at most 1000 contacts",
            ));
        }
        Ok(Reassign {
            from: self.from_user_id,
            to: self.to_user_id,
            account: self.account_id,
            contact_ids: self.contact_ids,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReassignedContacts {
    /// How many contacts moved.
    pub moved: usize,
}

/// Move every contact (or a filtered set) from one user to another, in one transaction.
///
/// Needs `contacts.write` and `contacts.read_all` over the node (`account_id`, default the
/// caller's own). Audited once, with the count.
#[utoipa::path(
    tag = "contacts",
    operation_id = "reassignContacts",
    security(("bearer" = [])),
    request_body = ReassignContactsRequest,
    responses(
        (status = 200, description = "How many moved", body = ReassignedContacts),
        (status = 403, description = "Needs contacts.write and contacts.read_all over the node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account, contact (among `contact_ids`) or target user in the caller's reach; nothing moved", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`assignee-unavailable`: the target user is not active, cannot reach a contact, or may not read contacts; nothing moved", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (the two users must differ)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/contacts/reassign")]
pub async fn reassign_contacts(
    state: web::Data<AppState>,
    principal: Principal,
    body: Body<ReassignContactsRequest>,
) -> Result<web::Json<ReassignedContacts>, ApiError> {
    let cmd = body.into_inner().command()?;
    let moved = service::write(&state, move |tx| contacts::reassign(tx, &principal, cmd)).await?;
    Ok(web::Json(ReassignedContacts { moved }))
}

/// A notice to the contacts who subscribe to it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactNoticeRequest {
    /// Which subscribers receive it.
    pub subscription: ContactSubscription,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// 1 to 10,000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
}

impl ContactNoticeRequest {
    fn command(self, account: AccountId) -> Result<ContactNotice, ApiError> {
        let errors: Vec<FieldError> = [("subject", &self.subject, 200), ("body", &self.body, 10_000)]
            .into_iter()
            .filter(|(_, text, max)| text.trim().is_empty() || text.chars().count() > *max)
            .map(|(field, _, max)| FieldError::new(field, "length", format!("must be 1 to {max} characters long")))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(ContactNotice {
            account,
            subscription: self.subscription,
            subject: self.subject,
            body: self.body,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedNotices {
    /// How many notifications were written (one per subscribed contact with an email).
    pub queued: usize,
}

/// Send a notice to every contact at or below a node who subscribes to it and has an email.
///
/// Needs `notifications.send` over the node. One notification per contact, each recording
/// the contact, written in one transaction and delivered like every notification.
#[utoipa::path(
    tag = "contacts",
    operation_id = "sendContactNotice",
    security(("bearer" = [])),
    params(("account_id" = String, Path, description = "The node (`acc_…`)", pattern = "^acc_[0-9A-Za-z]{26}$")),
    request_body = ContactNoticeRequest,
    responses(
        (status = 202, description = "Queued", body = QueuedNotices),
        (status = 403, description = "Needs notifications.send over the node", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (an unknown subscription, an empty subject)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/{account_id}/contact-notices")]
pub async fn send_contact_notice(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<AccountId>,
    body: Body<ContactNoticeRequest>,
) -> Result<HttpResponse, ApiError> {
    let cmd = body.into_inner().command(path.into_inner())?;
    let queued = service::write(&state, move |tx| contacts::send_notice(tx, &principal, cmd)).await?;
    Ok(HttpResponse::Accepted().json(QueuedNotices { queued }))
}
