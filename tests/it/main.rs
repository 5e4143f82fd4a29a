//! Integration tests: one binary, so the SDK is linked once.

mod accounts;
mod browser;
mod calls;
mod cli;
mod docs;
mod events;
mod exporter;
mod faults;
mod harness;
mod limits;
mod prometheus;
mod promtool;
mod serving;
mod shards;
mod sim;
mod sqs;
mod ssm_client;
