//! The words of every message Steward sends, in one place: subject and body of each
//! notification kind. Services call these and write the result to the outbox.

// ---- invitations ----

// ---- sessions and passwords ----
