//! Typed, opaque, prefixed identifiers (`usr_…`, `acc_…`).
//!
//! An id is its prefix followed by a lower-case ULID: 128 bits, unguessable in its random
//! part, and ordered by creation time so that keyset pagination on the id alone is stable
//! under inserts. Ids never change; integrators store them.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        /// Reading an id from outside (a path segment, a body) checks its shape, so a
        /// handler can take `web::Path<UserId>` and never see a malformed one: it answers
        /// 404 like any id that does not exist (R1).
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Self::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a {} id", $prefix))
                })
            }
        }

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, ulid::Ulid::new().to_string().to_lowercase()))
            }

            /// Parses an id received from outside; `None` when it cannot be one of ours.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?.strip_prefix('_')?;
                let valid = rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_alphanumeric());
                valid.then(|| Self(raw.to_ascii_lowercase()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Rows read back from the database.
        impl From<String> for $name {
            fn from(raw: String) -> Self {
                Self(raw)
            }
        }

        /// Values written to the database.
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

typed_id!(
    /// A person who can log in.
    UserId, "usr");
typed_id!(
    /// A tenant node: a root account (organization) or a sub-account.
    AccountId, "acc");
typed_id!(
    /// A role, built-in or custom, of one root account.
    RoleId, "rol");
typed_id!(
    /// A user's place in a root account.
    MembershipId, "mem");
typed_id!(
    /// A login session; the family of its refresh tokens.
    SessionId, "ses");
typed_id!(
    /// One refresh token of a session.
    RefreshTokenId, "rtk");
typed_id!(
    /// A password reset request.
    PasswordResetId, "pwr");
typed_id!(
    /// A message in the notification outbox.
    NotificationId, "ntf");
typed_id!(
    /// An entry of the audit trail.
    AuditEventId, "aud");
typed_id!(
    /// An invitation.
    InviteId, "inv");
typed_id!(
    /// A caretaker assignment: who manages whose account, from when to when (R7).
    CaretakerAssignmentId, "cta");
typed_id!(
    /// An impersonation: who logged in as whom, why, in which mode, until when (R9).
    ImpersonationId, "imp");
typed_id!(
    /// One billable period of a membership in the seat ledger (R10).
    SeatId, "sea");
typed_id!(
    /// A contact: a person in an account node who cannot log in (R12).
    ContactId, "con");
typed_id!(
    /// A webhook endpoint an organization registered.
    WebhookId, "whk");
typed_id!(
    /// An API key: a machine credential of an organization.
    ApiKeyId, "key");
typed_id!(
    /// An access token's unique id (`jti`).
    TokenId, "jti");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_carry_their_prefix() {
        let id = UserId::generate();
        assert!(id.as_str().starts_with("usr_"));
        assert_eq!(UserId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn foreign_or_malformed_ids_do_not_parse() {
        let acc = AccountId::generate();
        assert_eq!(UserId::parse(acc.as_str()), None);
        assert_eq!(UserId::parse("usr_"), None);
        assert_eq!(UserId::parse("usr_../../etc/passwd"), None);
        assert_eq!(UserId::parse(""), None);
    }

    #[test]
    fn ids_from_outside_are_checked_when_read() {
        let id = UserId::generate();
        let back: UserId = serde_json::from_value(serde_json::json!(id.as_str())).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_value::<UserId>(serde_json::json!(AccountId::generate().as_str())).is_err());
        assert!(serde_json::from_value::<UserId>(serde_json::json!("usr_x")).is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let a = UserId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = UserId::generate();
        assert!(a < b);
    }
}
