//! SCIM 2.0 provisioning (RFC 7643, RFC 7644) of the caller's organization.
//!
//! Every operation needs `scim.provision` over the root account ([`policy::require_scim`])
//! and then goes through the service that makes the same change from the REST API, so its
//! rules, audit events, webhooks and seats hold alike:
//!
//! - a User is a member of the organization: creating one is [`members::insert`] at the
//!   root with the built-in `standard` role and no usable password (the person sets one
//!   through a reset link, or signs in through the product's single sign-on); `active`
//!   is [`lifecycle::deactivate`] / [`lifecycle::reactivate`]; DELETE is
//!   [`lifecycle::remove`]; names, email, `externalId` and `userName` are [`members::update`];
//! - a Group is a role of the organization ([`roles`]): `displayName` is its name, its
//!   members are the users who hold it, and adding or removing one is
//!   [`members::set_roles`] (so nobody grants what they do not hold, R4). New groups are
//!   custom roles with no permissions, which an administrator then gives them.
//!
//! A write that honours `If-Match` compares the SCIM resource's version once, under the
//! organization's lock, before anything changes ([`Tx::check_version_once`]).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::{MembershipRow, RoleRow, UserRow};
use crate::db::repo::memberships::{self, ChangedBound, ScimMemberFilter};
use crate::db::repo::roles as roles_repo;
use crate::domain::permissions::{BuiltinRole, PermissionSet};
use crate::domain::scim::{self, scim_error, GroupDocument, PatchOperation, UserDocument};
use crate::domain::scim_filter::{CompareOp, Filter, Literal};
use crate::domain::{self, Email, MembershipStatus};
use crate::error::{ApiError, ProblemKind};
use crate::ids::{AccountId, RoleId, UserId};
use crate::service::members::{self, Member, NewMember, Preferences, ProfileChanges};
use crate::service::roles::{self, NewRole, RoleChanges};
use crate::service::{lifecycle, versions, Tx};

/// The most resources one list response holds (`filter.maxResults`).
pub const MAX_RESULTS: i64 = 200;

/// What a list asks for: a parsed filter, the 1-based index of the first result, and how
/// many (0: only the total).
#[derive(Debug)]
pub struct ListRequest {
    pub filter: Option<Filter>,
    pub start_index: i64,
    pub count: i64,
}

pub struct Page<T> {
    pub total: i64,
    pub start_index: i64,
    pub items: Vec<T>,
}

/// A member of the organization as a SCIM User.
pub struct ScimUser {
    pub membership: MembershipRow,
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
}

impl ScimUser {
    fn from_member(m: Member) -> Self {
        Self {
            membership: m.membership,
            user: m.user,
            roles: m.roles,
        }
    }

    /// The identity provider's `userName`, or the email of a member who has none.
    pub fn user_name(&self) -> &str {
        self.membership.scim_user_name.as_deref().unwrap_or(&self.user.email)
    }

    pub fn version(&self) -> String {
        versions::of_member_parts(&self.user, &self.membership, &self.roles)
    }

    /// The later of the user's and the membership's last change.
    pub fn last_modified(&self) -> NaiveDateTime {
        self.user.updated_at.max(self.membership.updated_at)
    }
}

/// A role of the organization as a SCIM Group, with the users who hold it.
pub struct ScimGroup {
    pub role: RoleRow,
    permissions: PermissionSet,
    pub members: Vec<UserRow>,
    /// The later of the role's last change and its holders' memberships' last change.
    pub last_modified: NaiveDateTime,
}

impl ScimGroup {
    pub fn version(&self) -> String {
        let ids: Vec<&str> = self.members.iter().map(|u| u.id.as_str()).collect();
        versions::of_group(&self.role, &self.permissions, &ids)
    }
}

fn invalid_filter(detail: impl Into<String>) -> ApiError {
    scim_error("invalidFilter", detail)
}

fn invalid_value(detail: impl Into<String>) -> ApiError {
    scim_error("invalidValue", detail)
}

/// A `meta.lastModified` bound: an RFC 3339 time.
fn changed_bound(op: CompareOp, value: &Literal) -> Result<(ChangedBound, NaiveDateTime), ApiError> {
    let bound = match op {
        CompareOp::Gt => ChangedBound::After,
        CompareOp::Ge => ChangedBound::AtOrAfter,
        CompareOp::Lt => ChangedBound::Before,
        CompareOp::Le => ChangedBound::AtOrBefore,
        _ => return Err(invalid_filter("meta.lastModified takes gt, ge, lt or le.")),
    };
    let Literal::Text(text) = value else {
        return Err(invalid_filter(
            "meta.lastModified compares with a quoted RFC 3339 time.",
        ));
    };
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid_filter(format!("{text:?} is not an RFC 3339 time.")))?;
    Ok((bound, at.naive_utc()))
}

/// The user filters Steward answers: `userName`, `externalId`, `id` and `emails[.value]`
/// with `eq`, `active eq true|false`, and `meta.lastModified` with `gt`, `ge`, `lt`, `le`,
/// combined with `and`.
fn user_filter(filter: Option<&Filter>) -> Result<ScimMemberFilter, ApiError> {
    let mut out = ScimMemberFilter::default();
    for term in filter.map(Filter::conjuncts).unwrap_or_default() {
        let Filter::Compare { attr, op, value } = term else {
            return Err(invalid_filter("Only comparisons combined with and are supported."));
        };
        match (attr.as_str(), op, value) {
            ("username", CompareOp::Eq, Literal::Text(v)) => out.user_names.push(v.to_lowercase()),
            ("externalid", CompareOp::Eq, Literal::Text(v)) => out.external_ids.push(v.clone()),
            ("id", CompareOp::Eq, Literal::Text(v)) => out.user_ids.push(v.clone()),
            ("emails" | "emails.value", CompareOp::Eq, Literal::Text(v)) => out.emails.push(v.to_lowercase()),
            ("active", CompareOp::Eq, Literal::Bool(active)) => {
                let status = if *active {
                    MembershipStatus::Active
                } else {
                    MembershipStatus::Deactivated
                };
                if out.status.is_some_and(|s| s != status) {
                    out.user_ids.push(String::new());
                }
                out.status = Some(status);
            }
            ("meta.lastmodified", op, value) => out.changed.push(changed_bound(*op, value)?),
            _ => {
                return Err(invalid_filter(format!(
                    "Users filter on userName, externalId, id or emails with eq, active eq true|false, and meta.lastModified with gt, ge, lt or le; not {attr} {op:?}."
                )))
            }
        }
    }
    Ok(out)
}

/// One page of the organization's users that match the filter, by id.
pub fn list_users(tx: &mut Tx<'_>, caller: &Principal, req: ListRequest) -> Result<Page<ScimUser>, ApiError> {
    let root = policy::require_scim(caller)?.root.clone();
    let filter = user_filter(req.filter.as_ref())?;
    let total = memberships::scim_count(tx.conn, &root, &filter)?;
    let rows = if req.count > 0 {
        memberships::scim_page(tx.conn, &root, &filter, req.start_index - 1, req.count)?
    } else {
        Vec::new()
    };
    let ids: Vec<String> = rows.iter().map(|(m, _)| m.id.to_string()).collect();
    let held = memberships::roles_of_many(tx.conn, &ids)?;
    let items = rows
        .into_iter()
        .map(|(membership, user)| ScimUser {
            roles: crate::service::roles::held_by(&held, membership.id.as_str()),
            membership,
            user,
        })
        .collect();
    Ok(Page {
        total,
        start_index: req.start_index,
        items,
    })
}

/// A user of the organization; one of another organization, or archived, answers 404 (R1).
fn find_user(tx: &mut Tx<'_>, root: &AccountId, raw: &str) -> Result<Member, ApiError> {
    let member = members::find(tx, root, raw)?;
    if member.user.status != domain::UserStatus::Active {
        return Err(ApiError::not_found("user"));
    }
    Ok(member)
}

pub fn get_user(tx: &mut Tx<'_>, caller: &Principal, raw: &str) -> Result<ScimUser, ApiError> {
    let root = policy::require_scim(caller)?.root.clone();
    find_user(tx, &root, raw).map(ScimUser::from_member)
}

/// A user's attributes as Steward keeps them, checked.
struct UserFields {
    user_name: String,
    given_name: String,
    family_name: String,
    email: Email,
    external_id: Option<String>,
    active: bool,
}

fn checked_name(raw: &str, field: &str) -> Result<String, ApiError> {
    domain::parse_name(raw).map_err(|e| invalid_value(format!("{field} {}.", message(&e))))
}

fn message(e: &validator::ValidationError) -> String {
    e.message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| "is invalid".into())
}

/// Checks a user document. `keep` (a PUT) supplies what the document leaves out of the
/// name, the email and `active`; without it (a POST, or a PATCH's result) they are
/// required, but for an email that a `userName` which is an address stands in for on create.
fn user_fields(doc: UserDocument, keep: Option<&ScimUser>, creating: bool) -> Result<UserFields, ApiError> {
    let user_name = doc
        .user_name
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid_value("userName is required."))?;
    if user_name.chars().count() > 254 {
        return Err(invalid_value("userName must be at most 254 characters long."));
    }
    let given = doc.given_name.or_else(|| keep.map(|k| k.user.first_name.clone()));
    let family = doc.family_name.or_else(|| keep.map(|k| k.user.last_name.clone()));
    let email = doc
        .email
        .or_else(|| keep.map(|k| k.user.email.clone()))
        .or_else(|| (creating && Email::parse(&user_name).is_ok()).then(|| user_name.clone()))
        .ok_or_else(|| invalid_value("emails is required (or a userName that is an email address)."))?;
    let external_id = doc.external_id.map(|e| e.trim().to_string());
    if external_id
        .as_ref()
        .is_some_and(|e| e.is_empty() || e.chars().count() > 200)
    {
        return Err(invalid_value("externalId must be 1 to 200 characters long."));
    }
    Ok(UserFields {
        given_name: checked_name(
            &given.ok_or_else(|| invalid_value("name.givenName is required."))?,
            "name.givenName",
        )?,
        family_name: checked_name(
            &family.ok_or_else(|| invalid_value("name.familyName is required."))?,
            "name.familyName",
        )?,
        email: Email::parse(&email).map_err(|e| invalid_value(format!("The email {}.", message(&e))))?,
        active: doc
            .active
            .or_else(|| keep.map(|k| k.membership.status == MembershipStatus::Active))
            .unwrap_or(true),
        user_name,
        external_id,
    })
}

/// Creates a user at the root with the built-in `standard` role and no usable password;
/// `active: false` creates them deactivated.
pub fn create_user(tx: &mut Tx<'_>, caller: &Principal, doc: UserDocument) -> Result<ScimUser, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::require_scim(&caller)?.root.clone();
    let fields = user_fields(doc, None, true)?;
    let standard = roles_repo::find_builtin(tx.conn, &root, BuiltinRole::Standard)?
        .ok_or_else(|| ApiError::internal("built-in role standard missing"))?;
    let cmd = NewMember {
        email: fields.email,
        username: None,
        first_name: fields.given_name,
        last_name: fields.family_name,
        phone: None,
        password: None,
        role_ids: vec![standard.id.to_string()],
        account_id: Some(root.to_string()),
        external_id: fields.external_id,
        preferences: Preferences::default(),
        scim_user_name: Some(fields.user_name),
    };
    let member = members::insert(tx, &caller, cmd, None)?;
    if !fields.active {
        lifecycle::deactivate(tx, &caller, &member.user.id)?;
    }
    members::load(tx, &root, &member.user.id).map(ScimUser::from_member)
}

/// Locks the organization, checks the caller provisions it, loads the user and compares
/// its version with `If-Match`.
fn user_to_change(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &str,
) -> Result<(Principal, AccountId, ScimUser), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::require_scim(&caller)?.root.clone();
    let user = ScimUser::from_member(find_user(tx, &root, raw)?);
    tx.check_version_once(&user.version())?;
    Ok((caller, root, user))
}

/// PUT: the document replaces the user's attributes (a name, email or `active` left out
/// stays as it is; an `externalId` left out is cleared).
pub fn replace_user(tx: &mut Tx<'_>, caller: &Principal, raw: &str, doc: UserDocument) -> Result<ScimUser, ApiError> {
    let (caller, root, current) = user_to_change(tx, caller, raw)?;
    let fields = user_fields(doc, Some(&current), false)?;
    change_user(tx, &caller, &root, current, fields)
}

/// PATCH: the operations apply to the user's writable attributes, then the result is
/// written like a PUT.
pub fn patch_user(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &str,
    ops: Vec<PatchOperation>,
) -> Result<ScimUser, ApiError> {
    let (caller, root, current) = user_to_change(tx, caller, raw)?;
    let mut doc = writable_user(&current);
    scim::apply_patch(&mut doc, scim::USER_ATTRIBUTES, &ops)?;
    let fields = user_fields(UserDocument::parse(&serde_json::Value::Object(doc))?, None, false)?;
    change_user(tx, &caller, &root, current, fields)
}

/// The attributes of a user a PATCH may change, as a SCIM document.
fn writable_user(u: &ScimUser) -> serde_json::Map<String, serde_json::Value> {
    let doc = serde_json::json!({
        "userName": u.user_name(),
        "name": { "givenName": u.user.first_name, "familyName": u.user.last_name },
        // Not marked primary, so that an added address takes its place; typed `work`, so that
        // `emails[type eq "work"]` (Entra ID) finds it.
        "emails": [{ "value": u.user.email, "type": "work" }],
        "externalId": u.membership.external_id,
        "active": u.membership.status == MembershipStatus::Active,
    });
    match doc {
        serde_json::Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => serde_json::Map::new(),
    }
}

/// Writes what differs through the member and life-cycle services.
fn change_user(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    current: ScimUser,
    new: UserFields,
) -> Result<ScimUser, ApiError> {
    let id = current.user.id.clone();
    let differs = |a: &str, b: &str| a != b;
    let changes = ProfileChanges {
        first_name: differs(&new.given_name, &current.user.first_name).then(|| new.given_name.clone()),
        last_name: differs(&new.family_name, &current.user.last_name).then(|| new.family_name.clone()),
        email: differs(new.email.as_str(), &current.user.email).then_some(new.email),
        external_id: (new.external_id != current.membership.external_id).then(|| new.external_id.clone()),
        scim_user_name: differs(&new.user_name, current.user_name()).then(|| Some(new.user_name.clone())),
        ..ProfileChanges::default()
    };
    let changed = changes.first_name.is_some()
        || changes.last_name.is_some()
        || changes.email.is_some()
        || changes.external_id.is_some()
        || changes.scim_user_name.is_some();
    if changed {
        members::update(tx, caller, &id, changes)?;
    }
    match (new.active, current.membership.status) {
        (false, MembershipStatus::Active) => {
            lifecycle::deactivate(tx, caller, &id)?;
        }
        (true, MembershipStatus::Deactivated) => {
            lifecycle::reactivate(tx, caller, &id)?;
        }
        _ => {}
    }
    members::load(tx, root, &id).map(ScimUser::from_member)
}

/// DELETE: archives the user, or removes them from the organization when they belong to
/// others too; either way the organization no longer lists them.
pub fn delete_user(tx: &mut Tx<'_>, caller: &Principal, raw: &str) -> Result<(), ApiError> {
    let (caller, _, user) = user_to_change(tx, caller, raw)?;
    lifecycle::remove(tx, &caller, &user.user.id).map(drop)
}

// ---- groups ----

/// The organization's roles as groups, with their holders, by id.
fn groups_of(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    only: Option<&RoleId>,
) -> Result<Vec<ScimGroup>, ApiError> {
    let details = match only {
        Some(id) => vec![roles::get(tx, caller, id)?],
        None => roles::list(tx, caller)?,
    };
    let ids: Vec<RoleId> = details.iter().map(|d| d.role.id.clone()).collect();
    let holders = memberships::holding_roles(tx.conn, root, &ids)?;
    let mut groups: Vec<ScimGroup> = details
        .into_iter()
        .map(|d| {
            let mine = holders.iter().filter(|(rid, _, _)| rid == d.role.id.as_str());
            let last_modified = mine
                .clone()
                .map(|(_, m, _)| m.updated_at)
                .fold(d.role.updated_at, NaiveDateTime::max);
            ScimGroup {
                members: mine.map(|(_, _, u)| u.clone()).collect(),
                last_modified,
                permissions: d.permissions,
                role: d.role,
            }
        })
        .collect();
    groups.sort_by(|a, b| a.role.id.as_str().cmp(b.role.id.as_str()));
    Ok(groups)
}

fn group_matches(group: &ScimGroup, term: &Filter) -> Result<bool, ApiError> {
    let Filter::Compare { attr, op, value } = term else {
        return Err(invalid_filter("Only comparisons combined with and are supported."));
    };
    Ok(match (attr.as_str(), op, value) {
        ("displayname", CompareOp::Eq, Literal::Text(v)) => group.role.name.to_lowercase() == v.to_lowercase(),
        ("id", CompareOp::Eq, Literal::Text(v)) => group.role.id.as_str() == v,
        ("externalid", CompareOp::Eq, Literal::Text(v)) => group.role.external_id.as_deref() == Some(v.as_str()),
        ("meta.lastmodified", op, value) => {
            let (bound, at) = changed_bound(*op, value)?;
            match bound {
                ChangedBound::After => group.last_modified > at,
                ChangedBound::AtOrAfter => group.last_modified >= at,
                ChangedBound::Before => group.last_modified < at,
                ChangedBound::AtOrBefore => group.last_modified <= at,
            }
        }
        _ => {
            return Err(invalid_filter(format!(
                "Groups filter on displayName, id or externalId with eq, and meta.lastModified with gt, ge, lt or le; not {attr} {op:?}."
            )))
        }
    })
}

/// One page of the organization's groups that match the filter, by id.
pub fn list_groups(tx: &mut Tx<'_>, caller: &Principal, req: ListRequest) -> Result<Page<ScimGroup>, ApiError> {
    let root = policy::require_scim(caller)?.root.clone();
    let terms: Vec<Filter> = req
        .filter
        .as_ref()
        .map(|f| f.conjuncts().into_iter().cloned().collect())
        .unwrap_or_default();
    let mut matching = Vec::new();
    for group in groups_of(tx, caller, &root, None)? {
        let mut keep = true;
        for term in &terms {
            keep &= group_matches(&group, term)?;
        }
        if keep {
            matching.push(group);
        }
    }
    let total = matching.len() as i64;
    let skip = usize::try_from(req.start_index - 1).unwrap_or(0);
    let take = usize::try_from(req.count).unwrap_or(0);
    Ok(Page {
        total,
        start_index: req.start_index,
        items: matching.into_iter().skip(skip).take(take).collect(),
    })
}

fn group_id(raw: &str) -> Result<RoleId, ApiError> {
    RoleId::parse(raw).ok_or_else(|| ApiError::not_found("group"))
}

fn one_group(tx: &mut Tx<'_>, caller: &Principal, root: &AccountId, id: &RoleId) -> Result<ScimGroup, ApiError> {
    let found = groups_of(tx, caller, root, Some(id));
    let missing = |e: ApiError| {
        if e.kind() == ProblemKind::NotFound {
            ApiError::not_found("group")
        } else {
            e
        }
    };
    found
        .map_err(missing)?
        .pop()
        .ok_or_else(|| ApiError::not_found("group"))
}

pub fn get_group(tx: &mut Tx<'_>, caller: &Principal, raw: &str) -> Result<ScimGroup, ApiError> {
    let root = policy::require_scim(caller)?.root.clone();
    one_group(tx, caller, &root, &group_id(raw)?)
}

fn group_name(doc: &GroupDocument) -> Result<String, ApiError> {
    let name = doc
        .display_name
        .as_deref()
        .ok_or_else(|| invalid_value("displayName is required."))?;
    checked_name(name, "displayName")
}

fn group_external_id(doc: &GroupDocument) -> Result<Option<String>, ApiError> {
    let external_id = doc.external_id.as_ref().map(|e| e.trim().to_string());
    if external_id
        .as_ref()
        .is_some_and(|e| e.is_empty() || e.chars().count() > 200)
    {
        return Err(invalid_value("externalId must be 1 to 200 characters long."));
    }
    Ok(external_id)
}

/// Creates a custom role with no permissions, held by the members listed.
pub fn create_group(tx: &mut Tx<'_>, caller: &Principal, doc: GroupDocument) -> Result<ScimGroup, ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::require_scim(&caller)?.root.clone();
    let name = group_name(&doc)?;
    let role = roles::create(
        tx,
        &caller,
        NewRole {
            name,
            description: String::new(),
            permissions: PermissionSet::new(),
            external_id: group_external_id(&doc)?,
        },
    )?
    .role;
    set_members(tx, &caller, &root, &role.id, &[], &doc.members.unwrap_or_default())?;
    one_group(tx, &caller, &root, &role.id)
}

fn group_to_change(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &str,
) -> Result<(Principal, AccountId, ScimGroup), ApiError> {
    let caller = tx.lock_tenant(caller)?;
    let root = policy::require_scim(&caller)?.root.clone();
    let group = one_group(tx, &caller, &root, &group_id(raw)?)?;
    tx.check_version_once(&group.version())?;
    Ok((caller, root, group))
}

/// PUT: renames the role if the name differs, and makes exactly the members listed hold it.
pub fn replace_group(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &str,
    doc: GroupDocument,
) -> Result<ScimGroup, ApiError> {
    let (caller, root, group) = group_to_change(tx, caller, raw)?;
    change_group(tx, &caller, &root, group, doc)
}

/// PATCH: the operations apply to the group's name and members, then the result is written
/// like a PUT.
pub fn patch_group(
    tx: &mut Tx<'_>,
    caller: &Principal,
    raw: &str,
    ops: Vec<PatchOperation>,
) -> Result<ScimGroup, ApiError> {
    let (caller, root, group) = group_to_change(tx, caller, raw)?;
    let members: Vec<serde_json::Value> = group
        .members
        .iter()
        .map(|u| serde_json::json!({ "value": u.id }))
        .collect();
    let mut doc = serde_json::Map::new();
    doc.insert("displayName".into(), group.role.name.clone().into());
    if let Some(external_id) = &group.role.external_id {
        doc.insert("externalId".into(), external_id.clone().into());
    }
    doc.insert("members".into(), members.into());
    scim::apply_patch(&mut doc, scim::GROUP_ATTRIBUTES, &ops)?;
    let doc = GroupDocument::parse(&serde_json::Value::Object(doc))?;
    change_group(tx, &caller, &root, group, doc)
}

fn change_group(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    group: ScimGroup,
    doc: GroupDocument,
) -> Result<ScimGroup, ApiError> {
    let name = group_name(&doc)?;
    let external_id = group_external_id(&doc)?;
    let id = group.role.id.clone();
    if name != group.role.name || external_id != group.role.external_id {
        let changes = RoleChanges {
            name: (name != group.role.name).then_some(name),
            description: None,
            permissions: None,
            external_id: (external_id != group.role.external_id).then_some(external_id),
        };
        roles::update(tx, caller, &id, changes)?;
    }
    let current: Vec<UserId> = group.members.iter().map(|u| u.id.clone()).collect();
    set_members(tx, caller, root, &id, &current, &doc.members.unwrap_or_default())?;
    one_group(tx, caller, root, &id)
}

/// Gives the role to the users in `wanted` who lack it and takes it from those in `current`
/// who are not in `wanted`, through the role-assignment service.
fn set_members(
    tx: &mut Tx<'_>,
    caller: &Principal,
    root: &AccountId,
    role: &RoleId,
    current: &[UserId],
    wanted: &[String],
) -> Result<(), ApiError> {
    let wanted: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    let held: BTreeSet<&str> = current.iter().map(UserId::as_str).collect();
    for raw in wanted.difference(&held) {
        let member = find_user(tx, root, raw).map_err(|e| match e.kind() {
            ProblemKind::NotFound => invalid_value(format!("There is no user {raw} in this organization.")),
            _ => e,
        })?;
        let mut ids: Vec<String> = member.roles.iter().map(|r| r.id.to_string()).collect();
        ids.push(role.to_string());
        members::set_roles(tx, caller, &member.user.id, &ids)?;
    }
    for raw in held.difference(&wanted) {
        take_role(tx, caller, root, role, raw)?;
    }
    Ok(())
}

fn take_role(tx: &mut Tx<'_>, caller: &Principal, root: &AccountId, role: &RoleId, raw: &str) -> Result<(), ApiError> {
    let member = find_user(tx, root, raw)?;
    let ids: Vec<String> = member
        .roles
        .iter()
        .filter(|r| &r.id != role)
        .map(|r| r.id.to_string())
        .collect();
    policy::keeps_a_role(ids.len())?;
    members::set_roles(tx, caller, &member.user.id, &ids).map(drop)
}

/// DELETE: takes the role from its holders (each keeps at least one other) and deletes it.
/// Built-in roles are never deleted.
pub fn delete_group(tx: &mut Tx<'_>, caller: &Principal, raw: &str) -> Result<(), ApiError> {
    let (caller, root, group) = group_to_change(tx, caller, raw)?;
    if group.role.builtin.is_none() {
        for user in &group.members {
            take_role(tx, &caller, &root, &group.role.id, user.id.as_str())?;
        }
    }
    roles::delete(tx, &caller, &group.role.id)
}
