//! The fixed permission catalog and the built-in roles, defined here and nowhere else.
//!
//! Built-in roles exist (as rows) in every root account so memberships can point at them,
//! but their permissions always come from this file: a new version of Steward that adds a
//! permission gives it to the built-in roles that should have it, with no data migration.

use serde::Serialize;
use std::collections::BTreeSet;
use utoipa::ToSchema;

macro_rules! permissions {
    ($($variant:ident => $text:literal : $doc:literal),+ $(,)?) => {
        /// One thing a membership may do.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission { $(#[doc = $doc] $variant),+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $text),+ }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some(Permission::$variant),)+ _ => None }
            }
        }
    };
}

permissions! {
    AccountUpdate => "account.update": "Edit the account profile, settings and sub-accounts.",
    AccountBilling => "account.billing": "Read and change the billing profile (\"Modify Master Account Profile\"): grant with care.",
    AccountTransfer => "account.transfer": "Transfer ownership of the account.",
    OwnersManage => "owners.manage": "Add, change or remove owners.",
    UsersRead => "users.read": "List and read the account's users.",
    UsersManage => "users.manage": "Create, edit, deactivate, archive and restore users and their roles.",
    UsersInvite => "users.invite": "Invite people and manage pending invitations.",
    RolesManage => "roles.manage": "Create and edit custom roles.",
    CaretakersManage => "caretakers.manage": "Assign and remove caretakers.",
    UsersImpersonate => "users.impersonate": "Log in as another user, for support.",
    ContactsReadAll => "contacts.read_all": "Read every contact of the account.",
    ContactsReadAssigned => "contacts.read_assigned": "Read the contacts assigned to oneself.",
    ContactsWrite => "contacts.write": "Create and edit contacts.",
    ContactsDelete => "contacts.delete": "Delete contacts.",
    MessagesRead => "messages.read": "Read messages.",
    MessagesSend => "messages.send": "Send messages.",
    AuditRead => "audit.read": "Read the audit trail.",
    WebhooksManage => "webhooks.manage": "Manage webhook subscriptions.",
    ApiKeysManage => "api_keys.manage": "Create, rotate and revoke the organization's API keys.",
    NotificationsSend => "notifications.send": "Post notifications for users (the account's own services, e.g. \"text message received\").",
    NotificationsManage => "notifications.manage": "Read the account's notification outbox and retry failed deliveries.",
    ScimProvision => "scim.provision": "Provision users and groups through SCIM.",
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

pub type PermissionSet = BTreeSet<Permission>;

/// A role every root account has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    Owner,
    Admin,
    Standard,
    Limited,
    Guest,
    MessagingAgent,
    Viewer,
}

impl BuiltinRole {
    pub const ALL: &'static [BuiltinRole] = &[
        Self::Owner,
        Self::Admin,
        Self::Standard,
        Self::Limited,
        Self::Guest,
        Self::MessagingAgent,
        Self::Viewer,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Standard => "standard",
            Self::Limited => "limited",
            Self::Guest => "guest",
            Self::MessagingAgent => "messaging_agent",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.key() == key)
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Admin => "Admin",
            Self::Standard => "Standard",
            Self::Limited => "Limited",
            Self::Guest => "Guest",
            Self::MessagingAgent => "Messaging agent",
            Self::Viewer => "Viewer",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Owner => "Everything, including billing and ownership transfer.",
            Self::Admin => "Everything but ownership transfer and managing owners.",
            Self::Standard => "All contacts and data; no user management, no settings, cannot delete contacts.",
            Self::Limited => "Only the contacts assigned to them.",
            Self::Guest => "One assigned record; never billable.",
            Self::MessagingAgent => "Read and send messages.",
            Self::Viewer => "Read only: no messaging, no settings.",
        }
    }

    /// Whether a membership holding this role takes a paid seat.
    pub fn billable(self) -> bool {
        !matches!(self, Self::Guest)
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        let list: &[Permission] = match self {
            Self::Owner => Permission::ALL,
            Self::Admin => &[
                AccountUpdate,
                AccountBilling,
                UsersRead,
                UsersManage,
                UsersInvite,
                RolesManage,
                CaretakersManage,
                UsersImpersonate,
                ContactsReadAll,
                ContactsReadAssigned,
                ContactsWrite,
                ContactsDelete,
                MessagesRead,
                MessagesSend,
                AuditRead,
                WebhooksManage,
                ApiKeysManage,
                NotificationsSend,
                NotificationsManage,
                ScimProvision,
            ],
            Self::Standard => &[
                UsersRead,
                ContactsReadAll,
                ContactsReadAssigned,
                ContactsWrite,
                MessagesRead,
                MessagesSend,
            ],
            Self::Limited => &[ContactsReadAssigned, ContactsWrite],
            Self::Guest => &[ContactsReadAssigned],
            Self::MessagingAgent => &[MessagesRead, MessagesSend],
            // "Read only, no messaging": not even reading messages.
            Self::Viewer => &[UsersRead, ContactsReadAll, ContactsReadAssigned],
        };
        list.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_name() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Permission::parse("users.fly"), None);
    }

    #[test]
    fn admins_hold_everything_but_ownership() {
        let owner = BuiltinRole::Owner.permissions();
        let admin = BuiltinRole::Admin.permissions();
        let missing: Vec<_> = owner.difference(&admin).copied().collect();
        assert_eq!(missing, vec![Permission::AccountTransfer, Permission::OwnersManage]);
    }

    #[test]
    fn every_builtin_role_is_within_the_owners() {
        let owner = BuiltinRole::Owner.permissions();
        for role in BuiltinRole::ALL {
            assert!(role.permissions().is_subset(&owner));
        }
    }

    #[test]
    fn messaging_agents_may_send_and_viewers_may_not() {
        assert!(BuiltinRole::MessagingAgent
            .permissions()
            .contains(&Permission::MessagesSend));
        assert!(!BuiltinRole::Viewer.permissions().contains(&Permission::MessagesSend));
        assert!(!BuiltinRole::Guest.billable());
    }
}
