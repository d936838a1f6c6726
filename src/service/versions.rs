//! Versions of mutable resources, sent as `ETag` and checked against `If-Match` (RFC 9110).
//! A version is a digest of what the resource's representation is made of, so any change
//! to it, by any route, gives a new version; it says nothing about the content itself.

use sha2::{Digest, Sha256};

use crate::db::models::AccountRow;
use crate::service::members::Member;

fn tag(parts: &str) -> String {
    let digest = Sha256::digest(parts.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A member: their profile, their membership and its roles.
pub fn of_member(m: &Member) -> String {
    of_member_parts(&m.user, &m.membership, &m.roles)
}

/// [`of_member`], from its parts (a list row has no node).
pub fn of_member_parts(
    user: &crate::db::models::UserRow,
    membership: &crate::db::models::MembershipRow,
    roles: &[crate::db::models::RoleRow],
) -> String {
    let mut roles: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
    roles.sort_unstable();
    tag(&format!(
        "member|{}|{}|{}|{:?}|{roles:?}",
        user.id, user.status, user.updated_at, membership
    ))
}

/// An account node.
pub fn of_account(a: &AccountRow) -> String {
    tag(&format!("account|{a:?}"))
}

/// A role: its name, description and permissions.
pub fn of_role(r: &crate::db::models::RoleRow, permissions: &crate::domain::permissions::PermissionSet) -> String {
    tag(&format!("role|{r:?}|{permissions:?}"))
}

/// A SCIM group: its role and who holds it (user ids, in any order).
pub fn of_group(
    role: &crate::db::models::RoleRow,
    permissions: &crate::domain::permissions::PermissionSet,
    holders: &[&str],
) -> String {
    let mut holders = holders.to_vec();
    holders.sort_unstable();
    tag(&format!("group|{}|{holders:?}", of_role(role, permissions)))
}

/// An organization's billing profile.
pub fn of_billing(b: &crate::db::models::BillingProfileRow) -> String {
    tag(&format!("billing|{b:?}"))
}

/// A caretaker assignment (replacing the caretaker makes a new one).
pub fn of_caretaker(a: &crate::db::models::CaretakerAssignmentRow) -> String {
    tag(&format!("caretaker|{a:?}"))
}

/// A contact's own fields (its assignee's state is the assignee's, not the contact's).
pub fn of_contact(c: &crate::db::models::ContactRow) -> String {
    tag(&format!("contact|{c:?}"))
}

/// Whether an `If-Match` value names `current`: `*`, or a list of entity tags one of which
/// is it (weak tags never match: the comparison is strong, RFC 9110 §13.1.1).
pub fn matches(if_match: &str, current: &str) -> bool {
    if_match.trim() == "*" || if_match.split(',').map(str::trim).any(|t| t == current)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn if_match_takes_a_star_or_a_list_and_compares_strongly() {
        assert!(matches("*", "\"a\""));
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("\"b\", \"a\"", "\"a\""));
        assert!(!matches("W/\"a\"", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
        assert!(!matches("a", "\"a\""));
    }
}
