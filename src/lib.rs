//! ssm-association-exporter: counts the targets of AWS Systems Manager State Manager
//! association executions by status and serves them to Prometheus.
//!
//! The data flows one way, a module per stage:
//! [`config`] (which associations) → [`poll`] (through the [`ssm`] boundary) → [`snapshot`]
//! (the counts) → [`board`] (every pair's latest snapshot; its renderer calls [`render`] once
//! per change) → [`server`] (serves the latest bytes, and the [`status`] page made per request
//! from the same board). [`scheduler`] runs each pair's cycles, [`app`] wires the pieces,
//! [`sim`] stands in for AWS.

pub mod app;
pub(crate) mod board;
pub mod config;
pub mod demo;
pub mod events;
pub(crate) mod hints;
pub mod http;
pub mod ids;
pub(crate) mod limit;
pub(crate) mod listener;
pub mod logging;
pub(crate) mod poll;
pub mod reload;
pub mod render;
pub mod schedule;
pub(crate) mod scheduler;
pub mod server;
pub mod sim;
pub(crate) mod snapshot;
pub mod sqs;
pub mod ssm;
pub mod status;
pub mod telemetry;
pub mod timestamp;
pub mod web;
