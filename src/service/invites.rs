//! Invitations: invite, list, resend, copy link, revoke; preview and accept by token (R6).
