//! The model's vocabulary: enums stored as text, the permission catalog and built-in roles, and parsed input types that cannot hold
//! an invalid value (an `Email` is always a plausible, normalized address).

pub mod enums;
pub mod inputs;
pub mod page;
pub mod permissions;
pub mod scim;
pub mod scim_filter;

pub use enums::*;
pub use inputs::*;
