//! Enums stored as TEXT. The text is part of the API and the database; never renumber.
//!
//! The wire form is the variant's snake_case name, for serde and for the OpenAPI document
//! alike (`rename_all` is the one attribute both read the same way); `as_str` must agree with
//! it, and a unit test checks that it does for every variant.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What every text enum has: the list of variants, the text of each, parsing, and the
/// conversions diesel uses to store and read it as TEXT.
macro_rules! text_impls {
    ($name:ident { $($variant:ident => $text:literal),+ }) => {
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

/// An enum that is part of the API: serialized and documented as its snake_case text.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        text_impls!($name { $($variant => $text),+ });
    };
}

/// Like `text_enum!`, for vocabularies that are stored and logged but not part of a request
/// or response schema (their text may hold dots, which serde's `rename_all` cannot make).
macro_rules! text_vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        text_impls!($name { $($variant => $text),+ });
    };
}

text_vocabulary!(
    /// What an audit event records. The text is stored and is part of the audit API.
    AuditAction {
        AccountBillingUpdated => "account.billing_updated",
        AccountClosed => "account.closed",
        AccountCreated => "account.created",
        AccountMoved => "account.moved",
        AccountOwnershipTransferred => "account.ownership_transferred",
        AccountUpdated => "account.updated",
        AuthAccountSwitched => "auth.account_switched",
        AuthLogin => "auth.login",
        /// A wrong password for a known user (one event per organization they belong to).
        AuthLoginFailed => "auth.login_failed",
        AuthLogout => "auth.logout",
        AuthPasswordReset => "auth.password_reset",
        AuthPasswordResetRequested => "auth.password_reset_requested",
        AuthRefreshTokenReused => "auth.refresh_token_reused",
        InviteAccepted => "invite.accepted",
        InviteCreated => "invite.created",
        InviteRevoked => "invite.revoked",
        /// An invitation ran out unanswered (announced by the housekeeping sweep).
        InviteExpired => "invite.expired",
        InviteResent => "invite.resent",
        InviteLinkCopied => "invite.link_copied",
        MembershipMoved => "membership.moved",
        MembershipRolesChanged => "membership.roles_changed",
        RoleCreated => "role.created",
        RoleDeleted => "role.deleted",
        RoleUpdated => "role.updated",
        UserCreated => "user.created",
        UserPasswordChanged => "user.password_changed",
        UserUpdated => "user.updated",
        CaretakerAssigned => "caretaker.assigned",
        CaretakerReplaced => "caretaker.replaced",
        CaretakerRemoved => "caretaker.removed",
        DelegationStarted => "delegation.started",
        DelegationEnded => "delegation.ended",
        NotificationPosted => "notification.posted",
        NotificationRetried => "notification.retried",
        ImpersonationStarted => "impersonation.started",
        ImpersonationEnded => "impersonation.ended",
        /// A request made under an impersonation token, reads included (R9).
        ImpersonationRequest => "impersonation.request",
        MembershipDeactivated => "membership.deactivated",
        MembershipReactivated => "membership.reactivated",
        MembershipRemoved => "membership.removed",
        UserArchived => "user.archived",
        UserRestored => "user.restored",
        WebhookCreated => "webhook.created",
        WebhookUpdated => "webhook.updated",
        WebhookDeleted => "webhook.deleted",
        WebhookDeliveryReplayed => "webhook.delivery_replayed",
        ApiKeyCreated => "api_key.created",
        ApiKeyRotated => "api_key.rotated",
        ApiKeyRevoked => "api_key.revoked",
        /// An access token was issued for an API key (client-credentials grant).
        ApiKeyTokenIssued => "api_key.token_issued",
        ContactCreated => "contact.created",
        ContactUpdated => "contact.updated",
        ContactDeleted => "contact.deleted",
        /// A bulk reassign (R12): one event with the count, the two users and the contacts.
        ContactReassigned => "contact.reassigned",
        /// A notice to the contacts of a subtree subscribed to one kind of notice.
        ContactNoticeSent => "contact_notice.sent",
    }
);

impl AuditAction {
    /// The webhook event type a change is announced to integrators as, if it is one: the
    /// action's own name, but for an invitation created, which is `invite.sent`.
    pub fn webhook_event(self) -> Option<&'static str> {
        use AuditAction::*;
        match self {
            InviteCreated => Some("invite.sent"),
            UserCreated
            | UserUpdated
            | UserArchived
            | UserRestored
            | MembershipDeactivated
            | MembershipReactivated
            | MembershipRemoved
            | MembershipRolesChanged
            | MembershipMoved
            | InviteAccepted
            | InviteRevoked
            | InviteExpired
            | CaretakerAssigned
            | CaretakerReplaced
            | CaretakerRemoved
            | ImpersonationStarted
            | ImpersonationEnded
            | ContactCreated
            | ContactUpdated
            | ContactDeleted
            | ContactReassigned
            | AccountCreated
            | AccountUpdated
            | AccountClosed
            | AccountMoved
            | AccountOwnershipTransferred
            | RoleCreated
            | RoleUpdated
            | RoleDeleted => Some(self.as_str()),
            _ => None,
        }
    }

    /// Every webhook event type, sorted.
    pub fn webhook_events() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = Self::ALL.iter().filter_map(|a| a.webhook_event()).collect();
        all.sort_unstable();
        all
    }
}

text_vocabulary!(
    /// What a notification in the outbox is about.
    NotificationKind {
        Invite => "invite",
        PasswordReset => "password_reset",
        PasswordChanged => "password_changed",
        CaretakerAssigned => "caretaker_assigned",
        CaretakerRemoved => "caretaker_removed",
        /// Posted by the account's own services for a user (e.g. "text message received").
        Message => "message",
        /// An archived user is back, with a link to set a password.
        AccountRestored => "account_restored",
        /// A notice to a contact, by subscription (the row records the contact).
        ContactNotice => "contact_notice",
        /// An event delivered to a webhook endpoint (the row records the endpoint).
        Webhook => "webhook",
    }
);

text_enum!(
    /// The notices a contact may subscribe to.
    ContactSubscription {
        Invoices => "invoices",
        ProductUpdates => "product_updates",
        ServiceNotices => "service_notices",
    }
);

text_enum!(
    /// Where the user a contact is assigned to stands in the contact's organization, so a
    /// front end can flag contacts whose user is gone (R10, R11).
    AssigneeState {
        /// An active user with an active membership.
        Active => "active",
        /// The membership is deactivated (or the user is no longer a member).
        Deactivated => "deactivated",
        /// The user is archived (the API's delete of a user).
        Archived => "archived",
    }
);

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
    /// Why a billable period of the seat ledger ended (R10).
    SeatEndReason {
        /// The membership was deactivated.
        Deactivated => "deactivated",
        /// The user was archived.
        Archived => "archived",
        /// The membership was removed from the organization.
        Removed => "removed",
        /// The member's roles no longer include a billable one (only `guest`).
        RolesChanged => "roles_changed",
    }
);

text_enum!(
    /// What an impersonation session may do (R9).
    ImpersonationMode {
        /// Every state-changing request is refused (the default).
        ReadOnly => "read_only",
        /// Changes are allowed, within what an acting-as session may ever do (R8).
        Full => "full",
    }
);

text_enum!(
    /// Where an impersonation stands: running, ended by someone, or past its expiry.
    ImpersonationState { Active => "active", Ended => "ended", Expired => "expired" }
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
        CaretakerAssigned => "caretaker_assigned",
        CaretakerRemoved => "caretaker_removed",
        DelegationSwitched => "delegation_switched",
        DelegationEnded => "delegation_ended",
        MembershipDeactivated => "membership_deactivated",
        MembershipRemoved => "membership_removed",
        UserArchived => "user_archived",
    }
);

text_enum!(
    /// Where an invitation stands. `expired` is computed from `expires_at`, never stored.
    InviteStatus { Pending => "pending", Accepted => "accepted", Revoked => "revoked", Expired => "expired" }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<T: Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    macro_rules! check {
        ($($name:ident),+) => {$(
            for v in $name::ALL {
                assert_eq!(wire(v), v.as_str(), "{} {:?}", stringify!($name), v);
                assert_eq!($name::parse(v.as_str()), Some(*v));
                let back: $name = serde_json::from_value(serde_json::json!(v.as_str())).unwrap();
                assert_eq!(back, *v);
            }
            let schema = serde_json::to_value(<$name as utoipa::PartialSchema>::schema()).unwrap();
            let listed: Vec<&str> = schema["enum"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
            let texts: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
            assert_eq!(listed, texts, "the document lists {} as the wire does", stringify!($name));
        )+};
    }

    #[test]
    fn stored_vocabularies_read_back() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        for k in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(k.as_str()), Some(*k));
        }
    }

    #[test]
    fn the_wire_the_database_and_the_document_agree_on_every_variant() {
        check!(
            UserStatus,
            AccountKind,
            AccountStatus,
            MembershipStatus,
            Delegation,
            NotificationStatus,
            ImpersonationMode,
            ImpersonationState,
            SeatEndReason,
            RevokeReason,
            InviteStatus,
            ContactSubscription,
            AssigneeState
        );
    }
}
