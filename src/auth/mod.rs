//! Who is asking and what they may do: passwords, tokens, the request's principal and the
//! authorization policy.

pub mod extract;
pub mod keys;
pub mod password;
pub mod policy;
pub mod principal_cache;
pub mod secrets;
pub mod tokens;
