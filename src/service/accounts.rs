//! Accounts: the organization tree, profiles, closing and billing.

use crate::db::models::AccountRow;
use crate::db::repo::accounts;
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::ids::AccountId;

/// Reads a node named in a path; unknown and malformed ids answer 404.
pub fn find(conn: &mut DbConnection, raw: &str) -> Result<AccountRow, ApiError> {
    let id = AccountId::parse(raw).ok_or_else(|| ApiError::not_found("account"))?;
    accounts::find(conn, &id)?.ok_or_else(|| ApiError::not_found("account"))
}
