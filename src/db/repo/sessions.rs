use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::memberships::UsableMembershipRow;
use super::RepoResult;
use crate::db::models::{
    AccountRow, MembershipRow, NewRefreshToken, NewSession, RefreshTokenRow, RoleRow, SessionRow, UserRow,
};
use crate::db::schema::{accounts, membership_roles, memberships, refresh_tokens, roles, sessions, users};
use crate::db::DbConnection;
use crate::domain::{AccountStatus, Delegation, MembershipStatus, RevokeReason};
use crate::ids::{SessionId, UserId};

pub fn insert(conn: &mut DbConnection, session: NewSession) -> RepoResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &SessionId) -> RepoResult<Option<SessionRow>> {
    sessions::table
        .find(id.as_str())
        .select(SessionRow::as_select())
        .get_result(conn)
        .optional()
}

/// Ends one session (and with it every refresh token of its family).
pub fn revoke(conn: &mut DbConnection, id: &SessionId, reason: RevokeReason, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(sessions::table.find(id.as_str()).filter(sessions::revoked_at.is_null()))
        .set((
            sessions::revoked_at.eq(Some(now)),
            sessions::revoked_reason.eq(Some(reason.as_str())),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Ends every live session in which the user is the effective user, except `keep`.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user: &UserId,
    keep: Option<&SessionId>,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    let keep = keep.map(|s| s.as_str().to_string()).unwrap_or_default();
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.as_str()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep)),
    )
    .set((
        sessions::revoked_at.eq(Some(now)),
        sessions::revoked_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)
}

/// Ends every live session in which `actor` acts as `user` in the given way (removing a
/// caretaker ends all of theirs at once).
pub fn revoke_delegated(
    conn: &mut DbConnection,
    user: &UserId,
    actor: &UserId,
    delegation: Delegation,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.as_str()))
            .filter(sessions::actor_user_id.eq(actor.as_str()))
            .filter(sessions::delegation.eq(delegation.as_str()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Some(now)),
        sessions::revoked_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)
}

pub fn insert_refresh_token(conn: &mut DbConnection, token: NewRefreshToken) -> RepoResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// A refresh token found, with what a refresh needs besides.
pub struct FoundRefreshToken {
    pub token: RefreshTokenRow,
    pub session: SessionRow,
    pub user: UserRow,
    pub usable_memberships: Vec<UsableMembershipRow>,
}

/// One row of [`find_refresh_token_with_memberships`]: a membership (if any) with its
/// organization and node id (if active) and one of its roles.
type RefreshTokenRowWithMembership = (
    RefreshTokenRow,
    SessionRow,
    UserRow,
    Option<MembershipRow>,
    Option<AccountRow>,
    Option<String>,
    Option<RoleRow>,
);

/// A refresh token by the digest of its secret, with its session, the session's user, and
/// the user's usable memberships (active, at an active node of an active organization) with
/// their organizations and roles, in one query: a refresh needs them all, and each round
/// trip counts on every refresh.
pub fn find_refresh_token_with_memberships(
    conn: &mut DbConnection,
    token_hash: &str,
) -> RepoResult<Option<FoundRefreshToken>> {
    let node = diesel::alias!(accounts as node);
    let active = AccountStatus::Active.as_str();
    let rows: Vec<RefreshTokenRowWithMembership> = refresh_tokens::table
        .inner_join(sessions::table.on(sessions::id.eq(refresh_tokens::session_id)))
        .inner_join(users::table.on(users::id.eq(sessions::user_id)))
        .left_join(
            memberships::table.on(memberships::user_id
                .eq(users::id)
                .and(memberships::status.eq(MembershipStatus::Active.as_str()))),
        )
        .left_join(
            accounts::table.on(accounts::id
                .eq(memberships::root_account_id)
                .and(accounts::status.eq(active))),
        )
        .left_join(
            node.on(node
                .field(accounts::id)
                .eq(memberships::account_id)
                .and(node.field(accounts::status).eq(active))),
        )
        .left_join(membership_roles::table.on(membership_roles::membership_id.eq(memberships::id)))
        .left_join(roles::table.on(roles::id.eq(membership_roles::role_id)))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .order((accounts::name.asc(), memberships::id.asc(), roles::name.asc()))
        .select((
            RefreshTokenRow::as_select(),
            SessionRow::as_select(),
            UserRow::as_select(),
            Option::<MembershipRow>::as_select(),
            Option::<AccountRow>::as_select(),
            node.field(accounts::id).nullable(),
            Option::<RoleRow>::as_select(),
        ))
        .load(conn)?;
    let mut rows = rows.into_iter().peekable();
    let Some((token, session, user, ..)) = rows.peek().cloned() else {
        return Ok(None);
    };
    let usable_memberships = rows
        .filter_map(
            |(_, _, _, membership, root, node, role)| match (membership, root, node) {
                (Some(membership), Some(root), Some(_)) => Some((membership, root, role)),
                _ => None,
            },
        )
        .collect();
    Ok(Some(FoundRefreshToken {
        token,
        session,
        user,
        usable_memberships,
    }))
}

/// Spends a refresh token. Exactly one caller can spend it: `false` means it was already
/// spent (a reuse, or a lost race with a concurrent refresh).
pub fn spend_refresh_token(conn: &mut DbConnection, token: &RefreshTokenRow, now: NaiveDateTime) -> RepoResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(token.id.as_str())
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// The statement of [`rotate_refresh_token`] on PostgreSQL: spend, slide the session, insert
/// the next token. A type of its own rather than `sql_query`, which diesel prepares anew (a
/// parse and a plan on the server, and a round trip more) at every execution: this one has a
/// static query id, so each connection prepares it once.
struct RotateOnPostgres<'a> {
    now: NaiveDateTime,
    spent: &'a str,
    session_expires_at: NaiveDateTime,
    next: &'a NewRefreshToken,
}

impl diesel::query_builder::QueryId for RotateOnPostgres<'_> {
    type QueryId = RotateOnPostgres<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for RotateOnPostgres<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("WITH spent AS (UPDATE refresh_tokens SET used_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.spent)?;
        out.push_sql(" AND used_at IS NULL RETURNING session_id), extended AS (UPDATE sessions SET expires_at = ");
        out.push_bind_param::<Timestamp, _>(&self.session_expires_at)?;
        out.push_sql(
            " WHERE id IN (SELECT session_id FROM spent) RETURNING id) \
             INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(self.next.id.as_str())?;
        out.push_sql(", id, ");
        out.push_bind_param::<Text, _>(&self.next.token_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.next.expires_at)?;
        out.push_sql(" FROM extended");
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for RotateOnPostgres<'_> {}

/// Spends `spent`, slides its session's end to `session_expires_at` and adds `next` to the
/// session: `false`, with nothing changed, when `spent` was already spent (as
/// [`spend_refresh_token`]). On PostgreSQL one statement does it all (a refresh is one round
/// trip shorter by each); on SQLite, three, in the caller's transaction.
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    spent: &RefreshTokenRow,
    session_expires_at: NaiveDateTime,
    next: NewRefreshToken,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    if let DbConnection::Postgres(pg) = conn {
        let statement = RotateOnPostgres {
            now,
            spent: spent.id.as_str(),
            session_expires_at,
            next: &next,
        };
        return Ok(statement.execute(pg)? == 1);
    }
    if !spend_refresh_token(conn, spent, now)? {
        return Ok(false);
    }
    extend(conn, &spent.session_id, session_expires_at)?;
    insert_refresh_token(conn, next)?;
    Ok(true)
}

/// Slides a session's end forward (on refresh).
pub fn extend(conn: &mut DbConnection, id: &SessionId, expires_at: NaiveDateTime) -> RepoResult<()> {
    diesel::update(sessions::table.find(id.as_str()))
        .set(sessions::expires_at.eq(expires_at))
        .execute(conn)
        .map(|_| ())
}

/// Points a session at another root account (R5: switching needs no new password).
pub fn rescope(conn: &mut DbConnection, id: &SessionId, account: &crate::ids::AccountId) -> RepoResult<()> {
    diesel::update(sessions::table.find(id.as_str()))
        .set(sessions::account_id.eq(Some(account.as_str())))
        .execute(conn)
        .map(|_| ())
}

/// Ends every live session the user takes part in, as its user or as its real actor; with
/// `root`, only the sessions scoped to that organization.
pub fn revoke_involving(
    conn: &mut DbConnection,
    user: &UserId,
    root: Option<&crate::ids::AccountId>,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> RepoResult<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(
            sessions::user_id
                .eq(user.as_str())
                .or(sessions::actor_user_id.eq(user.as_str())),
        )
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(root) = root {
        query = query.filter(sessions::account_id.eq(root.as_str()));
    }
    query
        .set((
            sessions::revoked_at.eq(Some(now)),
            sessions::revoked_reason.eq(Some(reason.as_str())),
        ))
        .execute(conn)
}
