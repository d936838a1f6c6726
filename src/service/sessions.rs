//! Sessions: what signing in, refreshing and switching accounts share — the accounts a user
//! may pick, the tokens a session is handed — and the notices about a user's own credentials.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::auth::tokens::{SignedToken, Tokens};
use crate::db::models::{AccountRow, MembershipRow, SessionRow, UserRow};
use crate::db::repo::memberships;
use crate::db::repo::notifications::{self, Outgoing};
use crate::db::DbConnection;
use crate::domain::NotificationKind;
use crate::error::ApiError;
use crate::service::Tx;

/// An organization a user can log in to: the membership, its root account, and the names
/// of the user's roles there.
pub type AccountChoice = (MembershipRow, AccountRow, Vec<String>);

/// The accounts a user can log in to, with their role names there.
pub fn account_choices(conn: &mut DbConnection, user: &UserRow) -> Result<Vec<AccountChoice>, ApiError> {
    let mut out = Vec::new();
    for (membership, root) in memberships::usable_for_user(conn, &user.id)? {
        let roles = memberships::roles_of(conn, &membership.id)?
            .into_iter()
            .map(|r| r.name)
            .collect();
        out.push((membership, root, roles));
    }
    Ok(out)
}

/// What a session is handed: a signed access token, perhaps a refresh token, and the
/// accounts the user may pick.
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub user: UserRow,
    /// The account the access token is scoped to, if one is picked.
    pub account: Option<AccountRow>,
    /// The token has not picked an account yet (R5).
    pub account_selection_required: bool,
    pub choices: Vec<AccountChoice>,
}

/// Signs an access token for `session` and gathers what the response shows.
pub fn issue_tokens(
    tx: &mut Tx<'_>,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
) -> Result<IssuedTokens, ApiError> {
    let choices = account_choices(tx.conn, user)?;
    let signed = tx.tokens.issue(session, tx.now)?;
    issued(signed, session, refresh_token, user, choices)
}

/// Like [`issue_tokens`], for code that holds the parts of a transaction separately.
pub fn issue_tokens_with(
    conn: &mut DbConnection,
    tokens: &Tokens,
    now: NaiveDateTime,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
) -> Result<IssuedTokens, ApiError> {
    let choices = account_choices(conn, user)?;
    let signed = tokens.issue(session, now)?;
    issued(signed, session, refresh_token, user, choices)
}

fn issued(
    signed: SignedToken,
    session: &SessionRow,
    refresh_token: Option<String>,
    user: &UserRow,
    choices: Vec<AccountChoice>,
) -> Result<IssuedTokens, ApiError> {
    let account = session
        .account_id
        .as_deref()
        .and_then(|id| choices.iter().find(|(_, a, _)| a.id.as_str() == id))
        .map(|(_, a, _)| a.clone());
    Ok(IssuedTokens {
        access_token: signed.token,
        expires_in: signed.expires_in,
        refresh_token,
        user: user.clone(),
        account,
        account_selection_required: session.account_id.is_none(),
        choices,
    })
}

/// Tells the user their password changed, so that an unexpected change is noticed.
pub fn notify_password_changed(conn: &mut DbConnection, user: &UserRow, now: NaiveDateTime) -> Result<(), ApiError> {
    notifications::enqueue(
        conn,
        Outgoing {
            kind: NotificationKind::PasswordChanged,
            account_id: None,
            recipient_user_id: Some(user.id.to_string()),
            recipient_email: user.email.clone(),
            on_behalf_of_user_id: None,
            subject: "Your password was changed".into(),
            body: format!(
                "Hello {},\n\nThe password of your account was just changed and your other sessions were ended. If this was not you, reset your password now.",
                user.first_name
            ),
            payload: json!({}),
        },
        now,
    )?;
    Ok(())
}
