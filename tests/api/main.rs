//! Integration tests: the real server, over HTTP, on SQLite and (with TEST_DATABASE_URL)
//! on PostgreSQL. One test binary, so the suite links once.

mod client;
mod contract;
mod helpers;

mod audit;
mod auth;
mod authz_matrix;
mod caretakers;
mod cli;
mod contacts;
mod delivery;
mod errors;
mod idempotency;
mod impersonation;
mod invites;
mod lifecycle;
mod members;
mod notifications;
mod openapi;
mod operations;
mod passwords;
mod scim;
mod tenancy;
mod tokens;
mod tree_races;
mod trust;
mod versions;
mod webhooks;
