//! The words of every message Steward sends, in one place: subject and body of each
//! notification kind. Services call these and write the result to the outbox.

// ---- invitations ----

/// The invitation email's subject: who invites the reader to which organization.
pub fn invitation_subject(
    inviter: &crate::db::models::UserRow,
    organization: &crate::db::models::AccountRow,
) -> String {
    format!(
        "{} {} invited you to {}",
        inviter.first_name, inviter.last_name, organization.name
    )
}

/// The invitation email's body: who invites the reader where, the registration link, and for
/// how many days it works.
pub fn invitation_body(
    inviter: &crate::db::models::UserRow,
    organization: &crate::db::models::AccountRow,
    link: &str,
    valid_days: u64,
) -> String {
    format!(
        "Hello,\n\n{} {} invited you to join {}. Register within {valid_days} days with this link:\n{link}\n",
        inviter.first_name, inviter.last_name, organization.name
    )
}

// ---- sessions and passwords ----
