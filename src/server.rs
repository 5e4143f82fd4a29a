//! The exporter's HTTP endpoints. A scrape only hands out the bytes published after the last
//! cycle: gzip members, compressed once, sent as they are when the scraper accepts gzip and
//! decompressed as they are sent when it does not. The status endpoints are
//! made per request from the board published with them: at most one page of 500 rows, one
//! association's view, or the JSON streamed a batch at a time, to at most [`JSON_STREAMS`]
//! readers at once. No handler calls AWS or waits for a poll.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::board::{CONTENT_TYPE, Exposition};
use crate::http::{self, Body, Limits, ServeOptions};
use crate::reload::{ReloadError, Reloads};
use crate::status::{BUILD, HTML_TYPE, JSON_TYPE, StatusJson};
use crate::web::{Verdict, WebConfig};

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the metrics are served, `/metrics` by default.
    pub telemetry_path: String,
    /// TLS, basic auth and extra headers (`--web.config.file`).
    pub web: WebConfig,
    /// Connections at once, and how long a client may take to send and to read.
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".to_owned(),
            web: WebConfig::default(),
            limits: Limits::default(),
        }
    }
}

/// Serves the endpoints until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    exposition: watch::Receiver<Arc<Exposition>>,
    options: ServerOptions,
    reloads: Reloads,
    shutdown: impl Future<Output = ()>,
) {
    let serve_options = ServeOptions {
        tls: options.web.tls.clone(),
        limits: options.limits,
    };
    let routes = Arc::new(Routes {
        options,
        reloads,
        json_streams: Arc::new(Semaphore::new(JSON_STREAMS)),
    });
    let handler = move |request: Request<Incoming>| {
        let current = Arc::clone(&exposition.borrow());
        let routes = Arc::clone(&routes);
        async move {
            let mut response = handle(&request, &current, &routes).await;
            for (name, value) in &routes.options.web.headers {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    };
    http::serve(listener, handler, serve_options, shutdown).await;
}

/// Readers of `/api/v1/status` served at once; the next ones get 503 with `Retry-After: 1`.
/// Each holds, until its last chunk is made, the document's order, a chunk, and the board it
/// is made from (one published some time ago, for a slow reader), so their number, not the
/// connection cap, bounds what slow readers can make the exporter hold.
pub const JSON_STREAMS: usize = 8;

/// What the handlers share.
#[derive(Debug)]
struct Routes {
    options: ServerOptions,
    reloads: Reloads,
    /// A permit per JSON body being made, held by the body until hyper drops it.
    json_streams: Arc<Semaphore>,
}

/// The endpoints that answer without credentials, so that liveness and readiness probes
/// need none. They tell nothing but whether the exporter runs and has polled once.
const OPEN: [&str; 2] = ["/-/healthy", "/-/ready"];

async fn handle(
    request: &Request<Incoming>,
    current: &Exposition,
    routes: &Routes,
) -> Response<Body> {
    let options = &routes.options;
    let path = request.uri().path();
    if let Some(auth) = &options.web.basic_auth
        && !OPEN.contains(&path)
    {
        let peer = request.extensions().get::<http::Peer>().map(|p| p.0);
        match auth
            .allows(peer, request.headers().get(header::AUTHORIZATION))
            .await
        {
            Verdict::Allowed => {}
            Verdict::Denied => {
                let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Basic realm=\"ssm-association-exporter\", charset=\"UTF-8\"",
                    ),
                );
                return r;
            }
            // Another check of this client's credentials is under way: one bcrypt check per
            // client at a time, so that a flood from one cannot delay another's first login.
            Verdict::Busy => {
                return retry_soon(
                    StatusCode::TOO_MANY_REQUESTS,
                    "A check of this client's credentials is under way.\n",
                );
            }
        }
    }
    if path == "/-/reload" {
        return reload(request.method(), &routes.reloads).await;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return not_allowed("GET, HEAD");
    }
    if path == options.telemetry_path {
        return metrics(request, current);
    }
    // The status endpoints are made from the board the renderer published last, as of now.
    let source = &current.status;
    if let Some(id) = path.strip_prefix("/association/") {
        return match source.association(id, SystemTime::now()) {
            Some(page) => http::response(StatusCode::OK, HTML_TYPE, page),
            None => text(StatusCode::NOT_FOUND, "No such association is watched.\n"),
        };
    }
    match path {
        "/" | "/api/v1/status" if !source.is_published() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "Starting.\n")
        }
        "/" => {
            let status = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("status=")));
            let page = source.index(status, SystemTime::now(), BUILD, &options.telemetry_path);
            match page {
                Some(page) => http::response(StatusCode::OK, HTML_TYPE, page),
                None => text(
                    StatusCode::NOT_FOUND,
                    "No watched association has this status now.\n",
                ),
            }
        }
        "/api/v1/status" => {
            let Ok(permit) = Arc::clone(&routes.json_streams).try_acquire_owned() else {
                return retry_soon(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{JSON_STREAMS} readers of the status JSON are being served; try again.\n"
                    ),
                );
            };
            let json = Permitted {
                body: StatusJson::new(Arc::clone(source), SystemTime::now(), BUILD),
                _permit: permit,
            };
            // Each frame is written within the write timeout; the whole within the same, as
            // when the JSON was one buffer, so that a slow reader holds the board no longer.
            let body = http::within(json, options.limits.write_timeout);
            http::with_body(StatusCode::OK, JSON_TYPE, body)
        }
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if current.ready => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first poll cycle has not finished.\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "Not found.\n"),
    }
}

/// A body that holds a permit for as long as hyper holds it: until its last frame is taken,
/// or its connection closes.
struct Permitted<B> {
    body: B,
    _permit: OwnedSemaphorePermit,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Permitted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

fn metrics(request: &Request<Incoming>, current: &Exposition) -> Response<Body> {
    if !current.body.complete() {
        // Never seen: compressing into memory does not fail. Were it to, no scrape gets an
        // exposition with lines missing.
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The exposition could not be compressed; see the exporter's log.\n",
        );
    }
    let gzip = accepts_gzip(request.headers().get(header::ACCEPT_ENCODING));
    let body = current.body.gzip.clone();
    let mut r = if gzip {
        http::response(StatusCode::OK, CONTENT_TYPE, body)
    } else {
        http::gunzip_response(StatusCode::OK, CONTENT_TYPE, body, current.body.plain_len)
    };
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Whether an `Accept-Encoding` header admits gzip: named (or `*`) with a non-zero weight.
fn accepts_gzip(header: Option<&HeaderValue>) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|entry| {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1.0, |q| q.trim().parse::<f64>().unwrap_or(0.0));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && weight > 0.0
    })
}

async fn reload(method: &Method, reloads: &Reloads) -> Response<Body> {
    if method != Method::POST && method != Method::PUT {
        return not_allowed("POST, PUT");
    }
    match reloads.reload().await {
        Ok(()) => text(StatusCode::OK, "Configuration reloaded.\n"),
        Err(ReloadError::NoFile) => text(
            StatusCode::BAD_REQUEST,
            "Nothing to reload: the exporter runs without --config.file.\n",
        ),
        Err(ReloadError::Stopped) => text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down.\n"),
        Err(refused) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Configuration refused, the previous one keeps running: {refused}\n"),
        ),
    }
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    http::response(status, "text/plain; charset=utf-8", body)
}

/// A refusal that says to ask again in a second.
fn retry_soon(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = text(status, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Whether `path` can serve as the telemetry path: absolute, not a reserved endpoint, and
/// nothing that needs escaping in the status page.
pub fn valid_telemetry_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.starts_with("/-/")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_as_http_says() {
        let cases = [
            ("gzip", true),
            ("gzip, deflate", true),
            ("deflate, GZIP;q=0.5", true),
            ("*", true),
            ("gzip;q=0", false),
            ("gzip; q=0.0", false),
            ("deflate", false),
            ("identity", false),
            ("", false),
        ];
        for (header, want) in cases {
            let value = HeaderValue::from_str(header).expect("header");
            assert_eq!(accepts_gzip(Some(&value)), want, "{header:?}");
        }
        assert!(!accepts_gzip(None));
    }
}
