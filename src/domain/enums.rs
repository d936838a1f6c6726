//! Enums stored as TEXT. The text is part of the API and the database; never renumber.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                Self::parse(&raw).ok_or_else(|| format!("unknown {} {raw:?}", stringify!($name)))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_string()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Whether a user can log in at all.
    UserStatus { Active => "active", Archived => "archived" }
);

text_enum!(
    /// What a tenant node is: a root organization, or a group or location below it.
    AccountKind { Organization => "organization", Group => "group", Location => "location" }
);

text_enum!(
    /// A closed node and its subtree grant no access; their data is kept.
    AccountStatus { Active => "active", Closed => "closed" }
);

text_enum!(
    /// A deactivated membership cannot log in to that account and is not billed.
    MembershipStatus { Active => "active", Deactivated => "deactivated" }
);

text_enum!(
    /// How a session acts as someone else (R8).
    Delegation {
        /// A caretaker manages the user's account while they are away (R7).
        Caretaker => "caretaker",
        /// Support "log in as" (R9).
        Impersonation => "impersonation",
    }
);

text_enum!(
    /// Where a message in the outbox stands.
    NotificationStatus { Pending => "pending", Delivered => "delivered", Dead => "dead" }
);

text_enum!(
    /// Why a session ended.
    RevokeReason {
        Logout => "logout",
        PasswordChanged => "password_changed",
        PasswordReset => "password_reset",
        RefreshTokenReused => "refresh_token_reused",
    }
);

text_enum!(
    /// Where an invitation stands. `expired` is computed from `expires_at`, never stored.
    InviteStatus { Pending => "pending", Accepted => "accepted", Revoked => "revoked", Expired => "expired" }
);
