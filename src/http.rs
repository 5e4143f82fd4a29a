//! HTTP/1 plumbing shared by the exporter's server and the simulated SSM endpoint: accept,
//! TLS when configured, serve each connection on its own task, and on shutdown stop accepting
//! and let in-flight requests finish. A slow, silent, oversized or malformed request, or a
//! client that does not read its response, costs its own connection and nothing else: at the
//! connection cap a connection not in a handler and not receiving a response makes room.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::{debug, warn};

pub type Body = BoxBody<Bytes, BodyError>;

/// Why a body stopped before its end: hyper then closes the connection, so that the client
/// sees a failed response, never a short one.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The client's address, in the extensions of every request handed to a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers larger than this end the connection (hyper answers 431).
const MAX_HEADER_BYTES: usize = 16 * 1024;
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// After shutdown is asked for, in-flight requests get this long to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Refusals (a 503 to a client over the cap) being written at once; past it, the connection
/// is closed without one, so that refusing costs little under a flood.
const MAX_REFUSALS: usize = 64;
/// How long a refusal may take to write and to see the client's side close.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// A response whose client has taken none of it for this long counts as not read: a slow
/// reader's socket wakes its writer only when a good part of the send buffer is free, which
/// on loopback can be a second or more apart.
const RECEIVING_WITHIN: Duration = Duration::from_secs(5);

/// What one connection may hold and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once. At the cap, a new connection closes one without a request in
    /// a handler: the one idle, silent or not reading its response the longest, and only when
    /// there is none, the one receiving a response whose client took bytes least recently;
    /// when every one is in a handler, the newcomer gets 503.
    pub max_connections: usize,
    /// A client gets this long to send its request headers, and an idle keep-alive connection
    /// is closed after it: hyper's header timer runs while it waits for the next request too.
    pub header_read_timeout: Duration,
    /// A response must be taken by the client within this long of its first byte; a client
    /// that does not read loses its connection. No next pipelined request is read before.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// How connections are taken.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration; `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
}

/// Serves `handler` on every connection of `listener` until `shutdown` completes, then drains.
/// A handler that answers `Err` has its connection closed without a response.
pub async fn serve<H, Fut, E>(
    listener: TcpListener,
    handler: H,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let graceful = GracefulShutdown::new();
    let limits = options.limits;
    let open = Arc::new(Connections::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let acceptor = options.tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        // Every client is accepted and answered: one left in the backlog would hear nothing.
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the listener stays usable, and a
                    // pause keeps the loop from spinning until descriptors are freed.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A response goes out as several writes (the exposition's buffers): without this,
        // Nagle's algorithm holds the last small one until the client's delayed ACK, 40 ms
        // a scrape. Should it fail, the connection still works, only slower.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let Some((ticket, evicted)) = open.admit() else {
            debug!(%peer, "every connection is serving a request; refusing a new one");
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(refuse(stream, acceptor.is_none(), permit));
            }
            continue;
        };
        let ticket = Arc::new(ticket);
        let handler = handler.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = {
                let ticket = Arc::clone(&ticket);
                service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(Peer(peer));
                    let serving = ticket.serving();
                    let response = handler(request);
                    async move {
                        let response = response.await;
                        drop(serving);
                        response
                    }
                })
            };
            let activity = Arc::clone(&ticket.activity);
            let served = async move {
                match acceptor {
                    None => {
                        watcher
                            .watch(connection(stream, service, limits, activity))
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                watcher
                                    .watch(connection(tls, service, limits, activity))
                                    .await
                            }
                            Ok(Err(e)) => {
                                debug!(error = %e, "TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => {
                                debug!("TLS handshake timed out");
                                Ok(())
                            }
                        }
                    }
                }
            };
            tokio::select! {
                result = served => {
                    if let Err(e) = result {
                        debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = evicted => debug!(%peer, "connection closed to make room for a new one"),
            }
            drop(ticket);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("connections still open after the drain timeout; closing them");
    }
}

/// Answers a client over the cap with 503 and closes. Over TLS, where an answer would need a
/// handshake first, the connection is only closed.
async fn refuse(mut stream: TcpStream, plain: bool, _permit: OwnedSemaphorePermit) {
    if !plain {
        return;
    }
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 22\r\nretry-after: 1\r\nconnection: close\r\n\r\nToo many connections.\n";
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(ANSWER).await?;
        stream.shutdown().await?;
        // Closing with the request unread would reset the connection, and the client could
        // lose the answer: read until the client closes its side.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The open connections of one server, for the cap and for choosing which one makes room.
#[derive(Debug)]
struct Connections {
    cap: usize,
    state: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    by_id: HashMap<u64, Slot>,
}

#[derive(Debug)]
struct Slot {
    /// Requests of this connection inside a handler now.
    serving: usize,
    activity: Arc<Activity>,
    /// Dropped to close the connection.
    _evict: oneshot::Sender<()>,
}

/// What a connection did last, kept by its stream as it writes and read by the cap. A lock of
/// its own, so that writes never take the lock of every connection.
#[derive(Debug)]
struct Activity(Mutex<Active>);

#[derive(Debug, Clone, Copy)]
struct Active {
    /// When it was accepted, a handler last answered, or the client last took bytes of a
    /// response: the longer ago, the sooner it makes room.
    at: Instant,
    /// A response has bytes the client has not taken yet: written, not yet flushed whole.
    unsent: bool,
}

impl Activity {
    fn new() -> Activity {
        Activity(Mutex::new(Active {
            at: Instant::now(),
            unsent: false,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn touch(&self) {
        self.lock().at = Instant::now();
    }

    /// Bytes of a response went to the client, or were handed over to wait for it.
    fn wrote(&self, moved: bool) {
        let mut active = self.lock();
        active.unsent = true;
        if moved {
            active.at = Instant::now();
        }
    }

    /// Everything written went to the client.
    fn flushed(&self) {
        self.lock().unsent = false;
    }

    /// The order in which connections not in a handler make room, first first: those not
    /// receiving a response (silent, idle, or whose client took nothing of its response for
    /// [`RECEIVING_WITHIN`]), then those receiving one; each by how long ago it was active.
    fn eviction_key(&self, now: Instant) -> (bool, Instant) {
        let active = *self.lock();
        let receiving =
            active.unsent && now.saturating_duration_since(active.at) < RECEIVING_WITHIN;
        (receiving, active.at)
    }
}

impl Connections {
    fn new(cap: usize) -> Self {
        Connections {
            cap: cap.max(1),
            state: Mutex::new(Open::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection, closing one that is not serving a request if the cap is
    /// reached, in the order of [`Activity::eviction_key`]. `None`: every connection is
    /// serving one.
    fn admit(self: &Arc<Self>) -> Option<(Ticket, oneshot::Receiver<()>)> {
        let mut open = self.lock();
        if open.by_id.len() >= self.cap {
            let now = Instant::now();
            let victim = open
                .by_id
                .iter()
                .filter(|(_, slot)| slot.serving == 0)
                .min_by_key(|(id, slot)| (slot.activity.eviction_key(now), **id))
                .map(|(id, _)| *id)?;
            // Dropping its slot drops the sender its task listens on.
            open.by_id.remove(&victim);
        }
        let id = open.next_id;
        open.next_id += 1;
        let (evict, evicted) = oneshot::channel();
        let activity = Arc::new(Activity::new());
        open.by_id.insert(
            id,
            Slot {
                serving: 0,
                activity: Arc::clone(&activity),
                _evict: evict,
            },
        );
        Some((
            Ticket {
                id,
                open: Arc::clone(self),
                activity,
            },
            evicted,
        ))
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
struct Ticket {
    id: u64,
    open: Arc<Connections>,
    activity: Arc<Activity>,
}

impl Ticket {
    /// Marks a request as in a handler until the guard drops.
    fn serving(self: &Arc<Self>) -> Serving {
        if let Some(slot) = self.open.lock().by_id.get_mut(&self.id) {
            slot.serving += 1;
        }
        Serving(Arc::clone(self))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.open.lock().by_id.remove(&self.id);
    }
}

/// A request in a handler: its connection is not closed to make room meanwhile.
#[derive(Debug)]
struct Serving(Arc<Ticket>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(slot) = self.0.open.lock().by_id.get_mut(&self.0.id) {
            slot.serving = slot.serving.saturating_sub(1);
        }
        self.0.activity.touch();
    }
}

/// One HTTP/1.1 connection with the limits above.
fn connection<I, S>(
    io: I,
    service: S,
    limits: Limits,
    activity: Arc<Activity>,
) -> http1::Connection<TokioIo<WriteDeadline<I>>, S>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(
            TokioIo::new(WriteDeadline::new(io, limits.write_timeout, activity)),
            service,
        )
}

/// A stream whose writes fail once a response has been unsent for longer than `timeout`.
///
/// hyper writes a response and then flushes the stream, and flushes reach the stream only
/// when hyper's own buffer is empty: so the clock starts at the first write after a complete
/// flush and stops at the next complete flush. It is looked at only while a write waits for
/// the client, which is when it matters. The same writes and flushes tell the connection's
/// [`Activity`] whether the client is taking a response.
#[derive(Debug)]
struct WriteDeadline<I> {
    io: I,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    activity: Arc<Activity>,
}

impl<I> WriteDeadline<I> {
    fn new(io: I, timeout: Duration, activity: Arc<Activity>) -> Self {
        WriteDeadline {
            io,
            timeout,
            deadline: None,
            activity,
        }
    }

    /// What a write did, for the connection's [`Activity`].
    fn wrote(&self, written: &Poll<std::io::Result<usize>>) {
        self.activity
            .wrote(matches!(written, Poll::Ready(Ok(n)) if *n > 0));
    }

    fn start(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Box::pin(tokio::time::sleep(self.timeout)));
        }
    }

    /// What to answer for a write that would wait: keep waiting, or fail past the deadline.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let passed = self
            .deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
        if passed {
            Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take its response in time",
            )))
        } else {
            Poll::Pending
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.start();
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&written);
        match written {
            Poll::Pending => self.waiting(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.start();
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        match written {
            Poll::Pending => self.waiting(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.deadline = None;
                self.activity.flushed();
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.waiting(cx),
            failed => failed,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.waiting(cx),
            done => done,
        }
    }
}

/// A response with a fixed body and content type.
pub fn response(
    status: hyper::StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    with_body(
        status,
        content_type,
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// A response whose body is the text of `gzip`, a stream of gzip members that decompresses to
/// `plain_len` bytes, decompressed a frame at a time as the client takes it.
pub fn gunzip_response(
    status: hyper::StatusCode,
    content_type: &str,
    gzip: Bytes,
    plain_len: usize,
) -> Response<Body> {
    with_body(
        status,
        content_type,
        Gunzip::new(gzip, plain_len)
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// A response with `body` and content type.
pub fn with_body(status: hyper::StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A body made as it is sent, which must be sent whole within `limit`: the write timeout
/// bounds each write, and this bounds the whole, so that a client reading slowly but steadily
/// cannot hold what the body is made from for longer.
pub fn within<B>(body: B, limit: Duration) -> Body
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + Sync + Unpin + 'static,
{
    Deadline::new(body, Instant::now() + limit, limit).boxed()
}

struct Deadline<B> {
    body: B,
    until: Instant,
    limit: Duration,
}

/// A streamed response was not taken in time.
#[derive(Debug, thiserror::Error)]
#[error("response not taken within {0:?}")]
struct TooSlow(Duration);

impl<B> Deadline<B> {
    fn new(body: B, until: Instant, limit: Duration) -> Deadline<B> {
        Deadline { body, until, limit }
    }
}

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BodyError>>> {
        if Instant::now() > self.until {
            return Poll::Ready(Some(Err(Box::new(TooSlow(self.limit)))));
        }
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(|never| match never {})))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The text of a stream of gzip members, a frame at a time: the exposition is held compressed.
struct Gunzip {
    decoder: flate2::read::MultiGzDecoder<bytes::buf::Reader<Bytes>>,
    remaining: u64,
}

impl Gunzip {
    /// How much text a frame holds at most: as much as one write to the socket takes.
    const FRAME: usize = 64 * 1024;

    fn new(gzip: Bytes, plain_len: usize) -> Gunzip {
        use bytes::Buf;
        Gunzip {
            decoder: flate2::read::MultiGzDecoder::new(gzip.reader()),
            remaining: plain_len as u64,
        }
    }
}

impl hyper::body::Body for Gunzip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        use std::io::Read;
        let want = usize::try_from(self.remaining).map_or(Self::FRAME, |r| r.min(Self::FRAME));
        if want == 0 {
            return Poll::Ready(None);
        }
        let mut frame = vec![0; want];
        let mut filled = 0;
        while filled < want {
            match self.decoder.read(&mut frame[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "the exposition does not decompress; the response ends short");
                    break;
                }
            }
        }
        frame.truncate(filled);
        // Ended before its Content-Length: hyper closes the connection, and the client sees a
        // cut response rather than a whole one with lines missing.
        self.remaining = if filled < want {
            0
        } else {
            self.remaining - filled as u64
        };
        if filled == 0 {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(frame)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_least_recently_active_idle_connection_makes_room() {
        let open = Arc::new(Connections::new(3));
        let (first, mut first_evicted) = open.admit().expect("room");
        let (second, mut second_evicted) = open.admit().expect("room");
        let (third, mut third_evicted) = open.admit().expect("room");
        let (first, second, third) = (Arc::new(first), Arc::new(second), Arc::new(third));
        // The first answers a request now: it is the most recently active.
        drop(first.serving());
        let (_fourth, _) = open.admit().expect("the second makes room");
        assert_eq!(
            second_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        assert_eq!(
            first_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        assert_eq!(
            third_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        assert_eq!(open.lock().by_id.len(), 3);
        drop(second);
        assert_eq!(
            open.lock().by_id.len(),
            3,
            "an evicted ticket frees nothing twice"
        );
        drop(third);
        assert_eq!(open.lock().by_id.len(), 2);
    }

    /// Issue 22: a connection whose client is taking its response makes room only after every
    /// silent or idle one, however long ago it was accepted; once its client has taken nothing
    /// for [`RECEIVING_WITHIN`], it is not reading, and makes room by its age like the rest.
    #[test]
    fn a_connection_receiving_a_response_makes_room_last() {
        let open = Arc::new(Connections::new(2));
        let (reader, mut reader_evicted) = open.admit().expect("room");
        // Bytes of its response went out and more wait for the client.
        reader.activity.wrote(true);
        reader.activity.wrote(false);
        let (silent, mut silent_evicted) = open.admit().expect("room");
        let (_newer, mut newer_evicted) = open.admit().expect("the silent one makes room");
        assert_eq!(
            silent_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        assert_eq!(
            reader_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        drop(silent);

        let stalled = Instant::now()
            .checked_sub(RECEIVING_WITHIN)
            .expect("an instant that long ago");
        reader.activity.lock().at = stalled;
        let (_newest, _) = open.admit().expect("the stalled reader makes room");
        assert_eq!(
            reader_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        assert_eq!(
            newer_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );

        // A response flushed whole: the connection is idle again, by when it last wrote.
        let activity = Activity::new();
        activity.wrote(true);
        activity.flushed();
        assert!(!activity.eviction_key(Instant::now()).0);
    }

    #[test]
    fn when_every_connection_is_in_a_handler_a_newcomer_is_refused() {
        let open = Arc::new(Connections::new(2));
        let (a, _a_evicted) = open.admit().expect("room");
        let (b, _b_evicted) = open.admit().expect("room");
        let (a, b) = (Arc::new(a), Arc::new(b));
        let serving_a = a.serving();
        let serving_b = b.serving();
        assert!(open.admit().is_none());
        drop(serving_b);
        let (_c, mut c_evicted) = open.admit().expect("b makes room once its answer is out");
        // a still serves: c, however new, is the one that can make room.
        let (_d, _) = open.admit().expect("c makes room");
        assert_eq!(
            c_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        drop(serving_a);
    }

    /// A client that stops reading: writes wait, and fail once the response has been
    /// unsent for the timeout; a complete flush starts the clock over.
    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_does_not_take_fails_at_the_deadline() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(server, Duration::from_secs(30), Arc::new(Activity::new()));
        io.write_all(&[b'x'; 64]).await.expect("fits the buffer");
        io.flush().await.expect("flushed");
        let mut taken = [0u8; 64];
        client
            .read_exact(&mut taken)
            .await
            .expect("the client reads");

        tokio::time::advance(Duration::from_secs(3600)).await;
        let started = tokio::time::Instant::now();
        let error = io
            .write_all(&[b'y'; 1024])
            .await
            .expect_err("the client never reads");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    /// Over the cap, a plain-HTTP client hears 503 rather than nothing.
    #[tokio::test]
    async fn a_refused_client_hears_503() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("send");
            stream.shutdown().await.expect("close our side");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.expect("read");
            String::from_utf8(answer).expect("text")
        });
        let (stream, _) = listener.accept().await.expect("accept");
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("permit");
        refuse(stream, true, permit).await;
        let answer = client.await.expect("client");
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\nToo many connections.\n"),
            "{answer}"
        );
    }

    fn gzip(text: &[u8]) -> Bytes {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).expect("to a Vec");
        Bytes::from(encoder.finish().expect("to a Vec"))
    }

    /// A gzip stream's text comes out in frames of at most 64 KiB, as long as it says; a
    /// stream that ends short ends the body short.
    #[tokio::test]
    async fn a_gzip_stream_is_sent_as_its_text() {
        let text: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut stream = gzip(&text[..150_000]).to_vec();
        stream.extend_from_slice(&gzip(&text[150_000..]));
        let mut body = Gunzip::new(Bytes::from(stream.clone()), text.len());
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(200_000));
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.expect("infallible").into_data().expect("data"));
        }
        let lengths: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert_eq!(lengths, [65_536, 65_536, 65_536, 3_392]);
        assert_eq!(frames.concat(), text);

        // Claimed longer than it is: the text there is, then the end.
        let short = Gunzip::new(Bytes::from(stream), 300_000);
        let got = short.collect().await.expect("infallible").to_bytes();
        assert_eq!(got.len(), 200_000);
    }

    /// A streamed body passes its frames through until its deadline, then fails, so that
    /// hyper closes the connection instead of ending a short response.
    #[tokio::test]
    async fn a_streamed_body_fails_past_its_deadline() {
        let frames = || Gunzip::new(gzip(b"ab"), 2);
        let hour = Duration::from_secs(3600);
        let body = Deadline::new(frames(), Instant::now() + hour, hour);
        let collected = body.collect().await.expect("in time").to_bytes();
        assert_eq!(&collected[..], b"ab");

        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("a past instant");
        let late = Deadline::new(frames(), past, Duration::from_secs(30));
        let error = late.collect().await.expect_err("too late");
        assert_eq!(error.to_string(), "response not taken within 30s");
    }
}
