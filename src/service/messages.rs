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

/// The password reset link (subject, body), valid for `minutes`.
pub fn password_reset(first_name: &str, link: &str, minutes: u64) -> (String, String) {
    (
        "Reset your password".into(),
        format!(
            "Hello {first_name},\n\nSomeone asked to reset your password. If it was you, open this link within {minutes} minutes:\n{link}\n\nIf it was not, ignore this message."
        ),
    )
}

/// To a restored user: their account is back, and a link sets a password (R11).
pub fn account_restored(first_name: &str, organization: &str, link: &str, minutes: u64) -> (String, String) {
    (
        "Your account is back".into(),
        format!(
            "Hello {first_name},\n\nYour account at {organization} has been restored, with the roles you had. Choose a new password within {minutes} minutes:\n{link}"
        ),
    )
}

/// The notice that a user's password changed (subject, body), so that an unexpected change
/// is noticed.
pub fn password_changed(first_name: &str) -> (String, String) {
    (
        "Your password was changed".into(),
        format!(
            "Hello {first_name},\n\nThe password of your account was just changed and your other sessions were ended. If this was not you, reset your password now."
        ),
    )
}

// ---- caretakers ----

use crate::db::models::UserRow;

fn name(user: &UserRow) -> String {
    format!("{} {}", user.first_name, user.last_name)
}

/// To a caretaker, when they start or stop managing someone's account.
pub fn caretaker_to_caretaker(caretaker: &UserRow, managed: &UserRow, assigned: bool) -> (String, String) {
    if assigned {
        (
            format!("You now manage {}'s account", name(managed)),
            format!(
                "Hello {},\n\nYou are now the caretaker of {}'s account while they are away. Their messages come to you, marked as theirs, and you can act as them from your own account (\"Managed users\").",
                caretaker.first_name,
                name(managed)
            ),
        )
    } else {
        (
            format!("You no longer manage {}'s account", name(managed)),
            format!(
                "Hello {},\n\nYou are no longer the caretaker of {}'s account; any session in which you were acting as them has ended.",
                caretaker.first_name,
                name(managed)
            ),
        )
    }
}

/// To the managed user themself, when a caretaker starts or stops managing their account.
pub fn caretaker_to_managed(managed: &UserRow, caretaker: &UserRow, assigned: bool) -> (String, String) {
    if assigned {
        (
            "Your account is being managed while you are away".into(),
            format!(
                "Hello {},\n\n{} ({}) now manages your account while you are away. You cannot log in until an admin ends this; your sessions have been ended.",
                managed.first_name,
                name(caretaker),
                caretaker.email
            ),
        )
    } else {
        (
            "Your account is yours again".into(),
            format!(
                "Hello {},\n\n{} no longer manages your account. You can log in again.",
                managed.first_name,
                name(caretaker)
            ),
        )
    }
}
