//! End-to-end tests of the real application on port 0, each on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod helpers;

mod analytics;
mod audit;
mod demo;
mod durability;
mod errors;
mod idempotency;
mod ingest;
mod integrations;
mod isolation;
mod keys;
mod lake_process;
mod limits;
mod ops;
mod personal;
mod predictions;
mod sessions;
mod shipments;
