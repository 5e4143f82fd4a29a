//! Integration tests: one binary, so the SDK is linked once.

mod cli;
mod exporter;
mod harness;
