//! Diesel's view of the tables. One schema serves both backends, so it uses only column
//! types the two share: Text, Integer, BigInt, Bool and Timestamp (always UTC).

diesel::table! {
    accounts (id) {
        id -> Text,
        root_id -> Text,
        parent_id -> Nullable<Text>,
        path -> Text,
        depth -> Integer,
        kind -> Text,
        name -> Text,
        address -> Nullable<Text>,
        phone -> Nullable<Text>,
        status -> Text,
        lock_version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_normalized -> Text,
        username -> Nullable<Text>,
        username_normalized -> Nullable<Text>,
        first_name -> Text,
        last_name -> Text,
        phone -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        must_change_password -> Bool,
        status -> Text,
        default_landing_page -> Nullable<Text>,
        default_contact_tab -> Nullable<Text>,
        show_calendar -> Bool,
        daily_email_reminders -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        root_account_id -> Text,
        builtin_key -> Nullable<Text>,
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    role_permissions (role_id, permission) {
        role_id -> Text,
        permission -> Text,
    }
}

diesel::table! {
    memberships (id) {
        id -> Text,
        user_id -> Text,
        root_account_id -> Text,
        account_id -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        external_id -> Nullable<Text>,
        scim_user_name -> Nullable<Text>,
    }
}

diesel::table! {
    billing_profiles (account_id) {
        account_id -> Text,
        billing_email -> Nullable<Text>,
        plan -> Text,
        seat_price_cents -> BigInt,
        currency -> Text,
        cycle_start -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    membership_roles (membership_id, role_id) {
        membership_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        account_id -> Nullable<Text>,
        actor_user_id -> Nullable<Text>,
        delegation -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        session_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_reset_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        kind -> Text,
        account_id -> Nullable<Text>,
        recipient_user_id -> Nullable<Text>,
        recipient_email -> Text,
        on_behalf_of_user_id -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        contact_id -> Nullable<Text>,
        webhook_endpoint_id -> Nullable<Text>,
        last_response_code -> Nullable<Integer>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor_user_id -> Nullable<Text>,
        effective_user_id -> Nullable<Text>,
        account_id -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Text,
        actor_api_key_id -> Nullable<Text>,
    }
}

diesel::table! {
    invites (id) {
        id -> Text,
        root_account_id -> Text,
        account_id -> Text,
        email -> Text,
        email_normalized -> Text,
        invited_by -> Text,
        token_hash -> Text,
        status -> Text,
        send_email -> Bool,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        accepted_user_id -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        expiry_announced_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    invite_roles (invite_id, role_id) {
        invite_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    caretaker_assignments (id) {
        id -> Text,
        root_account_id -> Text,
        managed_user_id -> Text,
        caretaker_user_id -> Text,
        assigned_by -> Text,
        assigned_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
        removed_by -> Nullable<Text>,
    }
}

diesel::table! {
    impersonations (id) {
        id -> Text,
        root_account_id -> Text,
        actor_user_id -> Text,
        target_user_id -> Text,
        session_id -> Text,
        mode -> Text,
        reason -> Text,
        started_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        ended_by -> Nullable<Text>,
    }
}

diesel::table! {
    seat_ledger (id) {
        id -> Text,
        root_account_id -> Text,
        membership_id -> Text,
        user_id -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    rate_limits (bucket, subject) {
        bucket -> Text,
        subject -> Text,
        hits -> Integer,
        window_start -> Timestamp,
        window_end -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idem_key) {
        scope -> Text,
        idem_key -> Text,
        fingerprint -> Text,
        status -> Nullable<Integer>,
        content_type -> Nullable<Text>,
        location -> Nullable<Text>,
        body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    contacts (id) {
        id -> Text,
        root_account_id -> Text,
        account_id -> Text,
        name -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        company -> Nullable<Text>,
        subscriptions -> Text,
        assigned_user_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        root_account_id -> Text,
        url -> Text,
        event_types -> Text,
        secret -> Text,
        enabled -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        root_account_id -> Text,
        name -> Text,
        secret_prefix -> Text,
        secret_hash -> Text,
        secret_issued_at -> Timestamp,
        previous_secret_hash -> Nullable<Text>,
        previous_valid_until -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        request_fingerprint -> Nullable<Text>,
    }
}

diesel::table! {
    api_key_roles (api_key_id, role_id) {
        api_key_id -> Text,
        role_id -> Text,
    }
}

diesel::joinable!(api_key_roles -> api_keys (api_key_id));
diesel::joinable!(api_key_roles -> roles (role_id));
diesel::joinable!(invite_roles -> invites (invite_id));
diesel::joinable!(invite_roles -> roles (role_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(membership_roles -> memberships (membership_id));
diesel::joinable!(membership_roles -> roles (role_id));
diesel::joinable!(role_permissions -> roles (role_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(password_reset_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    api_key_roles,
    caretaker_assignments,
    impersonations,
    seat_ledger,
    contacts,
    webhook_endpoints,
    accounts,
    users,
    roles,
    role_permissions,
    memberships,
    membership_roles,
    billing_profiles,
    invites,
    invite_roles,
    sessions,
    refresh_tokens,
    password_reset_tokens,
    notifications,
    audit_events,
);
