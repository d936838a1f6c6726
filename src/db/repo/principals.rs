//! What an authenticated request needs to know about its caller, each in ONE query: the
//! session with its user, its real actor's status, and the caller's place in the account
//! (membership, node, root account, roles and the custom roles' permissions). What it loads
//! is kept between requests only while the database provably has not changed
//! (`auth::principal_cache`), so a revocation or a change of rights takes effect at once on
//! every instance.

use diesel::prelude::*;

use super::RepoResult;
use crate::db::models::{AccountRow, MembershipRow, RoleRow, SessionRow, UserRow};
use crate::db::schema::{accounts, membership_roles, memberships, role_permissions, roles, sessions, users};
use crate::db::DbConnection;
use crate::ids::{AccountId, SessionId, UserId};

/// The columns of [`AccountRow`], in its field order, for selecting it from an alias.
macro_rules! account_columns {
    () => {
        (
            accounts::id,
            accounts::root_id,
            accounts::parent_id,
            accounts::path,
            accounts::depth,
            accounts::kind,
            accounts::name,
            accounts::address,
            accounts::phone,
            accounts::status,
            accounts::created_at,
            accounts::updated_at,
            accounts::closed_at,
        )
    };
}

/// `$query` (which has `memberships`) with the membership's roles and, for each custom role,
/// its permissions, left-joined: a membership without roles still has its row.
macro_rules! with_roles {
    ($query:expr) => {
        $query
            .left_join(membership_roles::table.on(membership_roles::membership_id.eq(memberships::id)))
            .left_join(roles::table.on(roles::id.eq(membership_roles::role_id)))
            .left_join(
                role_permissions::table.on(role_permissions::role_id
                    .eq(roles::id)
                    .and(roles::builtin_key.is_null())),
            )
    };
}

/// The columns of a [`RightsRow`], with `$root` the alias of the organization's account.
macro_rules! rights_columns {
    ($root:expr) => {
        (
            Option::<MembershipRow>::as_select(),
            Option::<AccountRow>::as_select(),
            $root.fields(account_columns!()).nullable(),
            Option::<RoleRow>::as_select(),
            role_permissions::permission.nullable(),
        )
    };
}

/// A member's place in one organization, as stored.
#[derive(Debug)]
pub struct MemberRights {
    pub membership: MembershipRow,
    pub node: AccountRow,
    pub root: AccountRow,
    /// The membership's roles, ordered by name.
    pub roles: Vec<RoleRow>,
    /// `(role id, permission name)` of each custom role among `roles`; built-in roles keep
    /// their permissions in code.
    pub stored_permissions: Vec<(String, String)>,
}

/// A session as the extractor sees it.
#[derive(Debug)]
pub struct SessionPrincipal {
    pub session: SessionRow,
    pub user: UserRow,
    /// The status of the real actor of a delegated session; `None` when there is none (or
    /// the row is gone).
    pub actor_status: Option<String>,
    /// The membership in the session's account; `None` without an account or a membership.
    pub rights: Option<MemberRights>,
}

/// One row of a principal query: a membership with one of its roles and, for a custom role,
/// one of its permissions. Several rows repeat the membership, node and root.
type RightsRow = (
    Option<MembershipRow>,
    Option<AccountRow>,
    Option<AccountRow>,
    Option<RoleRow>,
    Option<String>,
);

/// Folds the rows of one membership; `None` when the membership, its node or its root is
/// missing.
fn fold(rows: impl IntoIterator<Item = RightsRow>) -> Option<MemberRights> {
    let mut rights: Option<MemberRights> = None;
    for (membership, node, root, role, permission) in rows {
        let (Some(membership), Some(node), Some(root)) = (membership, node, root) else {
            return None;
        };
        let current = rights.get_or_insert_with(|| MemberRights {
            membership,
            node,
            root,
            roles: Vec::new(),
            stored_permissions: Vec::new(),
        });
        if let Some(role) = role {
            if let Some(name) = permission {
                current.stored_permissions.push((role.id.to_string(), name));
            }
            if !current.roles.iter().any(|r| r.id == role.id) {
                current.roles.push(role);
            }
        }
    }
    if let Some(rights) = rights.as_mut() {
        rights.roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    rights
}

/// The session `id` with everything the extractor checks, in one query.
pub fn for_session(conn: &mut DbConnection, id: &SessionId) -> RepoResult<Option<SessionPrincipal>> {
    let (actor, root) = diesel::alias!(users as actor, accounts as root);
    let rows: Vec<(SessionRow, UserRow, Option<String>, RightsRow)> = with_roles!(sessions::table
        .inner_join(users::table.on(users::id.eq(sessions::user_id)))
        .left_join(actor.on(sessions::actor_user_id.eq(actor.field(users::id).nullable())))
        .left_join(
            memberships::table.on(memberships::user_id
                .eq(sessions::user_id)
                .and(sessions::account_id.eq(memberships::root_account_id.nullable()))),
        )
        .left_join(accounts::table.on(accounts::id.eq(memberships::account_id)))
        .left_join(root.on(sessions::account_id.eq(root.field(accounts::id).nullable()))))
    .filter(sessions::id.eq(id.as_str()))
    .select((
        SessionRow::as_select(),
        UserRow::as_select(),
        actor.field(users::status).nullable(),
        rights_columns!(root),
    ))
    .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((session, user, actor_status, first)) = rows.next() else {
        return Ok(None);
    };
    let rights = fold(std::iter::once(first).chain(rows.map(|(_, _, _, r)| r)));
    Ok(Some(SessionPrincipal {
        session,
        user,
        actor_status,
        rights,
    }))
}

/// `user`'s membership in the organization `root` with its node, root, roles and
/// permissions, in one query.
pub fn for_member(conn: &mut DbConnection, user: &UserId, root_id: &AccountId) -> RepoResult<Option<MemberRights>> {
    let root = diesel::alias!(accounts as root);
    let rows: Vec<RightsRow> = with_roles!(memberships::table
        .inner_join(accounts::table.on(accounts::id.eq(memberships::account_id)))
        .inner_join(root.on(root.field(accounts::id).eq(memberships::root_account_id))))
    .filter(memberships::user_id.eq(user.as_str()))
    .filter(memberships::root_account_id.eq(root_id.as_str()))
    .select(rights_columns!(root))
    .load(conn)?;
    Ok(fold(rows))
}
