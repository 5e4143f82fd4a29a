//! The exporter's HTTP endpoints. A request only ever reads the latest published exposition:
//! no handler calls AWS, waits for a poll, or renders anything.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::{self, Body};
use crate::render::CONTENT_TYPE;

/// What a scrape hands out: the bytes rendered after the last cycle.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub body: Bytes,
    /// Cycles finished so far; 0 until the first, which is when the exporter is not ready.
    pub cycles: u64,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the metrics are served, `/metrics` by default.
    pub telemetry_path: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".to_owned(),
        }
    }
}

/// Serves the endpoints until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    exposition: watch::Receiver<Arc<Exposition>>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let options = Arc::new(options);
    let handler = move |request: Request<Incoming>| {
        let current = Arc::clone(&exposition.borrow());
        let options = Arc::clone(&options);
        async move { Ok::<_, Infallible>(route(&request, &current, &options)) }
    };
    http::serve(listener, handler, shutdown).await;
}

fn route(
    request: &Request<Incoming>,
    current: &Exposition,
    options: &ServerOptions,
) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are served.\n",
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let path = request.uri().path();
    if path == options.telemetry_path {
        return http::response(StatusCode::OK, CONTENT_TYPE, current.body.clone());
    }
    match path {
        "/" => http::response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(&options.telemetry_path),
        ),
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if current.cycles > 0 => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first poll cycle has not finished.\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "Not found.\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    http::response(status, "text/plain; charset=utf-8", body)
}

fn landing_page(telemetry_path: &str) -> String {
    // The path comes from our own flag, validated to be a plain absolute path.
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>SSM Association Exporter</title></head>\n<body>\n<h1>SSM Association Exporter</h1>\n<p>Counts the targets of AWS Systems Manager State Manager association executions by status.</p>\n<ul>\n<li><a href=\"{telemetry_path}\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n</ul>\n<p>Version {}</p>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Whether `path` can serve as the telemetry path: absolute, not a reserved endpoint, and
/// nothing that needs escaping in the landing page.
pub fn valid_telemetry_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.starts_with("/-/")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}
