//! The words of every message Steward sends, in one place: subject and body of each
//! notification kind. Services call these and write the result to the outbox.

// ---- invitations ----

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
