//! Integration tests: one binary, so the SDK is linked once.

mod cli;
mod docs;
mod exporter;
mod harness;
mod promtool;
mod sim;
mod ssm_client;
