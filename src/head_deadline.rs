//! The request-head deadline (`limits.header_read_timeout`): a client that begins a request
//! head and does not finish it in time loses its connection.
//!
//! Pingora reads a head with a per-read timeout only (the 60 s keep-alive timeout), so a
//! client that sends one byte every 59 s holds a connection and its buffers forever, and no
//! hook runs before the head is complete (`early_request_filter` comes after it). So the
//! deadline lives below Pingora, in the stream: `HeadDeadline` wraps every accepted
//! connection in a `WatchedStream`, which watches the bytes Pingora's HTTP/1 reader pulls
//! and fails the read once a head is late. It wraps the connection, not one request, so it
//! covers every keep-alive request on it.
//!
//! Requests are told apart without parsing HTTP: a head ends at its first empty line; what
//! is read after that is body (its deadline is `body_read_timeout`, kept by the ingress);
//! the gateway's first write after a head (its answer) means that the next byte read begins
//! a new head. An idle keep-alive connection (no byte of a next request yet) is left to
//! Pingora's keep-alive timeout.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    raw_connect::ProxyDigest, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown,
    SocketDigest, Ssl, Stream, TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::listening::Service;
use pingora_proxy::{HttpProxy, ProxyHttp};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The listening service for a `ProxyHttp`, with the head deadline on its connections:
/// what `pingora_proxy::http_proxy_service_with_name` builds, one layer deeper.
pub fn proxy_service<SV>(
    conf: &Arc<ServerConf>,
    proxy: SV,
    name: &str,
) -> Service<HeadDeadline<HttpProxy<SV>>>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    Service::new(
        name.to_string(),
        HeadDeadline {
            inner: Arc::new(pingora_proxy::http_proxy(conf, proxy)),
        },
    )
}

/// A Pingora app whose connections are `WatchedStream`s.
pub struct HeadDeadline<A> {
    inner: Arc<A>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for HeadDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A stream the inner app hands back for reuse comes through here again: watched
        // already. HTTP/2 frames have no empty line to end a "head": left alone.
        let watched = stream.as_any().is::<WatchedStream>()
            || matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let stream: Stream = if watched {
            stream
        } else {
            Box::new(WatchedStream::new(stream, header_read_timeout()))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        // HttpProxy's cleanup wakes keep-alive connections parked in a read at shutdown.
        self.inner.cleanup().await
    }
}

/// The timeout in force when a connection is accepted (a SIGHUP can change it; connections
/// already open keep theirs).
fn header_read_timeout() -> Duration {
    crate::gateway::Gateway::current()
        .map(|g| g.config.limits.header_read_timeout)
        .unwrap_or_else(|| crate::config::Limits::default().header_read_timeout)
}

/// Where a connection is in its request/response cycle, as far as its bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of the next head yet: Pingora's keep-alive timeout applies.
    Between,
    /// A head under way. `content`: a byte other than CR/LF seen (the empty lines a client
    /// may send before a request line do not end a head); `tail`: the head's last two bytes.
    Head {
        deadline: Instant,
        content: bool,
        tail: [u8; 2],
    },
    /// The head has ended: what is read now is body, until the gateway answers.
    Body,
    /// The deadline passed: every read fails.
    Expired,
}

/// The state machine of one connection, apart from any IO so it can be tested alone.
#[derive(Debug)]
struct HeadWatch {
    phase: Phase,
    timeout: Duration,
}

impl HeadWatch {
    fn new(timeout: Duration) -> HeadWatch {
        HeadWatch {
            phase: Phase::Between,
            timeout,
        }
    }

    /// The deadline of the head under way, if one is.
    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// `bytes` (not empty) were read from the client at `now`.
    fn on_read(&mut self, bytes: &[u8], now: Instant) {
        if self.phase == Phase::Between {
            self.phase = Phase::Head {
                deadline: now + self.timeout,
                content: false,
                tail: [0; 2],
            };
        }
        let Phase::Head { content, tail, .. } = &mut self.phase else {
            return;
        };
        let mut scan = bytes;
        if !*content {
            match scan.iter().position(|b| !matches!(b, b'\r' | b'\n')) {
                Some(start) => {
                    *content = true;
                    scan = &scan[start..];
                }
                None => return,
            }
        }
        if head_end(*tail, scan).is_some() {
            self.phase = Phase::Body;
        } else {
            *tail = last_two(*tail, scan);
        }
    }

    /// `bytes` (not empty) were written to the client.
    fn on_write(&mut self, bytes: &[u8]) {
        // The answer to the request read; an interim 1xx (`100 Continue`, `101 Switching
        // Protocols`) is not: the body, or the upgraded protocol, follows on this side.
        if self.phase == Phase::Body && !is_interim_status(bytes) {
            self.phase = Phase::Between;
        }
    }

    fn expire(&mut self) {
        self.phase = Phase::Expired;
    }
}

/// Where the empty line that ends a head ends in `bytes`, given the head's last two bytes
/// before them. Line ends are CRLF or, as httparse also accepts, a bare LF.
fn head_end(tail: [u8; 2], bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', bytes)
        .find(|&i| {
            let before = |back: usize| match i.checked_sub(back) {
                Some(j) => bytes[j],
                None => tail[2 + i - back],
            };
            let b1 = before(1);
            b1 == b'\n' || (b1 == b'\r' && before(2) == b'\n')
        })
        .map(|i| i + 1)
}

fn last_two(tail: [u8; 2], bytes: &[u8]) -> [u8; 2] {
    match bytes {
        [] => tail,
        [b] => [tail[1], *b],
        [.., a, b] => [*a, *b],
    }
}

/// `HTTP/1.x 1xx`: a status line that does not end the request.
fn is_interim_status(bytes: &[u8]) -> bool {
    bytes.len() >= 10 && bytes.starts_with(b"HTTP/1.") && bytes[9] == b'1'
}

/// What a late client is told, if the socket takes it at once (best effort: the connection
/// closes either way).
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// An accepted connection that fails the read once a request head is late.
pub struct WatchedStream {
    inner: Stream,
    watch: HeadWatch,
    /// Armed only when a head is not complete in one read, so a stalled client is woken
    /// and closed though it sends nothing more. Kept and reset, not made per head.
    timer: Option<Pin<Box<Sleep>>>,
}

impl WatchedStream {
    pub fn new(inner: Stream, header_read_timeout: Duration) -> WatchedStream {
        WatchedStream {
            inner,
            watch: HeadWatch::new(header_read_timeout),
            timer: None,
        }
    }

    fn late(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.watch.phase != Phase::Expired {
            self.watch.expire();
            let inner = Pin::new(&mut self.inner);
            if let Poll::Ready(Ok(n)) = inner.poll_write(cx, REQUEST_TIMEOUT) {
                if n > 0 {
                    let _ = Pin::new(&mut self.inner).poll_flush(cx);
                }
            }
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "request head not complete within {:?} (limits.header_read_timeout)",
                self.watch.timeout
            ),
        )))
    }

    /// Poll the timer for a head's `deadline`: ready when it has passed.
    fn poll_deadline(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.watch.phase == Phase::Expired {
            return this.late(cx);
        }
        let deadline = this.watch.deadline();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return this.late(cx);
        }
        let filled = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[filled..];
                if !read.is_empty() && this.watch.phase != Phase::Body {
                    this.watch.on_read(read, Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match deadline {
                Some(d) if this.poll_deadline(d, cx).is_ready() => this.late(cx),
                _ => Poll::Pending,
            },
            failed => failed,
        }
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                this.watch.on_write(&buf[..n]);
            }
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()).filter(|_| n > 0) {
                this.watch.on_write(&first[..n.min(first.len())]);
            }
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// The rest of Pingora's `IO` family: the connection as it is underneath.

#[async_trait]
impl Shutdown for WatchedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for WatchedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for WatchedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for WatchedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for WatchedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for WatchedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.set_socket_digest(socket_digest)
    }
}

#[async_trait]
impl Peek for WatchedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

impl std::fmt::Debug for WatchedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedStream")
            .field("inner", &self.inner)
            .field("phase", &self.watch.phase)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECOND: Duration = Duration::from_secs(1);

    fn fed(watch: &mut HeadWatch, reads: &[&[u8]]) {
        let now = Instant::now();
        for r in reads {
            watch.on_read(r, now);
        }
    }

    #[test]
    fn head_end_split_across_reads_is_found() {
        for split in [
            &[b"GET / HTTP/1.1\r\nHost: x\r\n" as &[u8], b"\r\n"][..],
            &[b"GET / HTTP/1.1\r\nHost: x\r", b"\n\r\n"],
            &[b"GET / HTTP/1.1\r\nHost: x\r\n\r", b"\n"],
            &[b"GET / HTTP/1.1\r\nHost: x", b"\r", b"\n", b"\r", b"\n"],
            &[b"GET / HTTP/1.1\nHost: x\n", b"\n"],
        ] {
            let mut watch = HeadWatch::new(SECOND);
            fed(&mut watch, &split[..split.len() - 1]);
            assert!(watch.deadline().is_some(), "{split:?}: ended early");
            fed(&mut watch, &split[split.len() - 1..]);
            assert_eq!(watch.phase, Phase::Body, "{split:?}");
        }
    }

    #[test]
    fn a_head_without_its_empty_line_is_not_over() {
        let mut watch = HeadWatch::new(SECOND);
        fed(
            &mut watch,
            &[b"POST / HTTP/1.1\r\n", b"Host: x\r\n", b"\rX-A: \n\r"],
        );
        assert!(watch.deadline().is_some());
    }

    #[test]
    fn empty_lines_before_the_request_line_do_not_end_a_head() {
        // httparse skips them: a client must not reach the body phase with "\r\n\r\n".
        let mut watch = HeadWatch::new(SECOND);
        fed(&mut watch, &[b"\r\n\r\n", b"\n\n"]);
        assert!(
            watch.deadline().is_some(),
            "the deadline runs from the first byte"
        );
        fed(&mut watch, &[b"\r\nGET / HTTP/1.1\r\n\r\n"]);
        assert_eq!(watch.phase, Phase::Body);
    }

    #[test]
    fn an_answer_starts_the_next_head_an_interim_status_does_not() {
        let mut watch = HeadWatch::new(SECOND);
        fed(&mut watch, &[b"POST / HTTP/1.1\r\n\r\n{\"a\":"]);
        assert_eq!(watch.phase, Phase::Body);
        fed(&mut watch, &[b"1}\r\n\r\nbody bytes, never a head"]);
        assert_eq!(watch.phase, Phase::Body);
        watch.on_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(watch.phase, Phase::Body);
        watch.on_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(watch.phase, Phase::Between);
        assert_eq!(watch.deadline(), None, "idle keep-alive: no deadline");
        fed(&mut watch, &[b"G"]);
        assert!(watch.deadline().is_some());
    }

    /// A stream over scripted client bytes, with pauses in (paused) tokio time.
    fn stream(script: tokio_test::io::Builder, timeout: Duration) -> WatchedStream {
        let mut script = script;
        WatchedStream::new(Box::new(script.build()), timeout)
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_head_fails_the_read_even_when_the_client_stalls() {
        let mut s = stream(
            {
                let mut b = tokio_test::io::Builder::new();
                // Nothing more from the client; at the deadline it is told why.
                b.read(b"POST / HTTP/1.1\r\n").write(REQUEST_TIMEOUT);
                b
            },
            SECOND,
        );
        let started = Instant::now();
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).await.ok(), Some(17));
        let err = s.read(&mut buf).await.expect_err("late head");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), SECOND, "woken at the deadline");
        assert!(s.read(&mut buf).await.is_err(), "and stays closed");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_bodies_and_idle_keep_alive_are_not_the_heads_business() {
        let mut s = stream(
            {
                let mut b = tokio_test::io::Builder::new();
                b.read(b"POST / HTTP/1.1\r\nHost: x\r\n")
                    .wait(Duration::from_millis(500))
                    .read(b"\r\n{")
                    .wait(Duration::from_secs(5))
                    .read(b"}")
                    .write(b"HTTP/1.1 200 OK\r\n\r\n")
                    .wait(Duration::from_secs(30))
                    .read(b"GET / HTTP/1.1\r\n\r\n");
                b
            },
            SECOND,
        );
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < 29 {
            let n = s.read(&mut buf).await.expect("in time");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(s.read(&mut buf).await.ok(), Some(1), "a slow body is read");
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .await
            .expect("answer");
        assert_eq!(s.read(&mut buf).await.ok(), Some(18), "after 30 s idle");
    }
}
