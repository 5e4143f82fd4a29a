//! The web configuration file (`--web.config.file`) in the format of Prometheus'
//! exporter-toolkit, so operators reuse the files they have: TLS through rustls, basic auth
//! with bcrypt hashes, extra response headers. Everything is checked when the file is loaded;
//! nothing here reads a file while serving.
//!
//! `config` reads the file into a [`WebConfig`]; `auth` checks the basic-auth logins it
//! configures.

mod auth;
mod config;

pub use auth::{BasicAuth, MAX_BCRYPT_COST, Verdict};
pub use config::{WebConfig, load, parse};
