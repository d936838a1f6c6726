//! The audit log's read side (R13): an organization's events, newest first, narrowed by
//! filters. Events are only ever appended (by every other capability, in the transaction of
//! the change) and the database refuses to change or delete them; nothing here writes.

use crate::auth::extract::Principal;
use crate::auth::policy;
use crate::db::models::AuditEventRow;
use crate::db::repo::audit;
use crate::domain::page::PageRequest;
use crate::error::ApiError;
use crate::ids::AccountId;
use crate::service::{accounts, Tx};

pub use crate::db::repo::audit::AuditFilter;

/// One page of `account`'s events that pass `filter`, newest first: `page.fetch()` rows at
/// most, below `page.after`. Needs `audit.read` over the organization (see
/// [`policy::require_audit_log`]); asked again for every page and every export batch.
pub fn list(
    tx: &mut Tx<'_>,
    caller: &Principal,
    account: &AccountId,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Vec<AuditEventRow>, ApiError> {
    let account = accounts::load(tx.conn, account)?;
    policy::require_audit_log(caller, &account)?;
    Ok(audit::page_for_account(
        tx.conn,
        &account.id,
        filter,
        page.after.as_deref(),
        page.fetch(),
    )?)
}
