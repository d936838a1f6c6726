//! Integration tests: the real server, over HTTP, on SQLite and (with TEST_DATABASE_URL)
//! on PostgreSQL. One test binary, so the suite links once.

mod client;
mod contract;
mod helpers;
mod process;

mod api_keys;
mod audit;
mod auth;
mod authz_matrix;
mod caretakers;
mod cli;
mod contacts;
mod crash;
mod delivery;
mod errors;
mod fuzzing;
mod idempotency;
mod impersonation;
mod input_bounds;
mod instances;
mod invites;
mod key_rotation;
mod lifecycle;
mod logging;
mod members;
mod metrics;
mod notifications;
mod openapi;
mod operations;
mod outage;
mod password_policy;
mod passwords;
mod principal_cache;
mod rate_limits;
mod scim;
mod surface;
mod tenancy;
mod tokens;
mod tree_races;
mod trust;
mod versions;
mod webhooks;
#[cfg(target_os = "linux")]
mod worker_cpus;
