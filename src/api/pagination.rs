//! Cursor pagination for every list. The page request itself is domain vocabulary (services
//! take one), defined in [`crate::domain::page`]; handlers reach it here as before.

pub use crate::domain::page::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
