//! The clocks of one connection: which deadline applies to it now, and the two wrappers that
//! enforce them where the bytes flow.
//!
//! ```text
//!   accept ─▶ headers (--http-header-timeout, TLS handshake included) ─▶ request in flight
//!                ▲                                                         │ body: --http-body-timeout
//!                │ first byte                                              │ all: --http-request-timeout
//!   idle (--http-idle-timeout) ◀──────────── last answer finished ◀────────┘
//! ```
//!
//! [`DeadlineIo`] closes the connection (a read error hyper cannot ignore) when the idle or
//! header deadline passes, and when a write stays blocked (a client that does not read its
//! answer) for the request timeout. [`TimedBody`] fails a request body that has not arrived in
//! time, so the handler answers 408 instead of waiting. Requests in flight are counted here so
//! that no read deadline runs while one is being answered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::http::limits::HttpLimits;

/// Which read deadline runs on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// For a request's line and headers.
    Headers,
    /// For the next request of a keep-alive connection.
    Idle,
}

struct State {
    in_flight: usize,
    /// `None` while a request is in flight.
    deadline: Option<(Instant, Waiting)>,
    /// The last read that found nothing, woken when a deadline starts.
    reader: Option<Waker>,
}

/// What one connection is doing, shared by its I/O and its requests.
#[derive(Clone)]
pub(crate) struct Activity {
    limits: HttpLimits,
    state: Arc<Mutex<State>>,
}

impl Activity {
    /// A connection accepted at `accepted`: its first request's headers are due by
    /// `accepted + --http-header-timeout`.
    pub(crate) fn new(limits: HttpLimits, accepted: Instant) -> Activity {
        Activity {
            limits,
            state: Arc::new(Mutex::new(State {
                in_flight: 0,
                deadline: Some((accepted + limits.http_header_timeout, Waiting::Headers)),
                reader: None,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("connection state lock")
    }

    /// A request's headers arrived: no read deadline until its answer is finished (the body
    /// has its own, in [`TimedBody`]).
    pub(crate) fn request_started(&self) -> RequestGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        state.deadline = None;
        RequestGuard {
            activity: self.clone(),
        }
    }

    /// Bytes arrived: if the connection was idle, they start a request whose headers are now
    /// due.
    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if let Some((_, Waiting::Idle)) = state.deadline {
            state.deadline = Some((
                Instant::now() + self.limits.http_header_timeout,
                Waiting::Headers,
            ));
        }
    }

    fn deadline(&self) -> Option<(Instant, Waiting)> {
        self.lock().deadline
    }

    fn park_reader(&self, waker: &Waker) {
        let mut state = self.lock();
        if !state.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.reader = Some(waker.clone());
        }
    }

    fn timed_out(&self, waiting: Waiting) -> io::Error {
        let message = match waiting {
            Waiting::Headers => format!(
                "no complete request headers within {:?} (--http-header-timeout)",
                self.limits.http_header_timeout
            ),
            Waiting::Idle => format!(
                "no request for {:?} (--http-idle-timeout)",
                self.limits.http_idle_timeout
            ),
        };
        io::Error::new(io::ErrorKind::TimedOut, message)
    }
}

/// Held by each request until its answer is finished (or dropped): the last one to go starts
/// the idle clock.
pub(crate) struct RequestGuard {
    activity: Activity,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.deadline = Some((
                Instant::now() + self.activity.limits.http_idle_timeout,
                Waiting::Idle,
            ));
            // A read parked while the request was in flight has no timer yet.
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }
}

/// A connection's stream with the idle, header and write-stall deadlines.
pub(crate) struct DeadlineIo<S> {
    inner: S,
    activity: Activity,
    read_timer: Pin<Box<Sleep>>,
    /// Started by a blocked write, cleared by any write that goes through.
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> DeadlineIo<S> {
    pub(crate) fn new(inner: S, activity: Activity) -> DeadlineIo<S> {
        DeadlineIo {
            inner,
            activity,
            read_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            write_timer: None,
        }
    }

    /// Pending write-side operations are bounded by the request timeout: past it the client
    /// has read nothing of its answer for that long.
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.activity.limits.http_request_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing of its answer for {limit:?} (--http-request-timeout)"
                ),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn on_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => match self.write_stalled(cx) {
                Poll::Ready(error) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                self.write_timer = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeadlineIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let deadline = this.activity.deadline();
        if let Some((at, waiting)) = deadline
            && Instant::now() >= at
        {
            return Poll::Ready(Err(this.activity.timed_out(waiting)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                this.activity.park_reader(cx.waker());
                if let Some((at, waiting)) = deadline {
                    if this.read_timer.deadline() != at {
                        this.read_timer.as_mut().reset(at);
                    }
                    if this.read_timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(this.activity.timed_out(waiting)));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.on_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.on_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.on_write(cx, polled)
    }
}

/// Why a request body was cut off. Find it in a body error's chain with [`body_timed_out`].
#[derive(Debug, thiserror::Error)]
pub enum BodyTimedOut {
    #[error("the request body did not arrive within {0:?} (--http-body-timeout)")]
    Slow(Duration),
    #[error("the server is stopping and the request body had not all arrived")]
    Stopping,
}

impl BodyTimedOut {
    /// The answer: 408 for a slow client, 503 for a server that is stopping.
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            BodyTimedOut::Slow(_) => axum::http::StatusCode::REQUEST_TIMEOUT,
            BodyTimedOut::Stopping => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The `BodyTimedOut` somewhere in `error`'s chain, if the body failed for that reason.
pub fn body_timed_out<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a BodyTimedOut> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return Some(timed_out);
        }
        next = error.source();
    }
    None
}

/// Completes when a body still arriving must give up because the server is stopping.
pub(crate) type Stopping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A request body that fails once `--http-body-timeout` has passed since its headers, or
/// shortly after the server was asked to stop: a slow upload must not hold up the exit.
pub(crate) struct TimedBody<B> {
    inner: B,
    after: Duration,
    timer: Pin<Box<Sleep>>,
    stopping: Stopping,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, after: Duration, stopping: Stopping) -> TimedBody<B> {
        TimedBody {
            inner,
            after,
            timer: Box::pin(tokio::time::sleep(after)),
            stopping,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let cut = if this.timer.as_mut().poll(cx).is_ready() {
            BodyTimedOut::Slow(this.after)
        } else if this.stopping.as_mut().poll(cx).is_ready() {
            BodyTimedOut::Stopping
        } else {
            return Poll::Pending;
        };
        Poll::Ready(Some(Err(Box::new(cut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
