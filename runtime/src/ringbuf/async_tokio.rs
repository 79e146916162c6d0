//! [`AsyncRingBuffer`]: a [`RingBuffer`] whose epoll fd is registered with
//! tokio, so a task awaits samples instead of blocking a thread in `poll`.

use std::time::Duration;

use super::walk::Pending;
use super::{RingBufError, RingBuffer, SampleCallback};
use crate::sys::AsyncReadiness;

/// How long to wait before looking again at a reserved, uncommitted record.
/// Its commit normally wakes the epoll fd, but not when it races with our own
/// consumer position update, so a busy record is re-checked on a timer.
const BUSY_RECHECK: Duration = Duration::from_millis(1);

/// A [`RingBuffer`] driven by tokio: `readable().await`, then `consume()`.
///
/// ```no_run
/// # async fn demo(rb: skelgen_runtime::ringbuf::RingBuffer<'static>) -> Result<(), skelgen_runtime::ringbuf::RingBufError> {
/// use skelgen_runtime::ringbuf::AsyncRingBuffer;
///
/// let mut rb = AsyncRingBuffer::new(rb)?;
/// loop {
///     rb.readable().await?;
///     rb.consume()?;
/// }
/// # }
/// ```
pub struct AsyncRingBuffer<'cb, F = SampleCallback<'cb>> {
    rb: RingBuffer<'cb, F>,
    ready: AsyncReadiness,
}

impl<F> std::fmt::Debug for AsyncRingBuffer<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRingBuffer")
            .field("rb", &self.rb)
            .field("ready", &self.ready)
            .finish()
    }
}

fn async_err(op: &'static str) -> impl FnOnce(std::io::Error) -> RingBufError {
    move |source| RingBufError::Async { op, source }
}

impl<'cb, F: FnMut(&[u8]) -> i32 + 'cb> AsyncRingBuffer<'cb, F> {
    /// Register `rb`'s epoll fd with the current tokio runtime (call it from
    /// within one, with I/O enabled).
    pub fn new(rb: RingBuffer<'cb, F>) -> Result<Self, RingBufError> {
        let ready =
            AsyncReadiness::new(rb.epoll_fd()).map_err(async_err("register the epoll fd"))?;
        Ok(AsyncRingBuffer { rb, ready })
    }

    /// Wait until some ring has a committed record, so that
    /// [`consume`](Self::consume) makes progress.
    pub async fn readable(&mut self) -> Result<(), RingBufError> {
        loop {
            let mut guard = self
                .ready
                .readable()
                .await
                .map_err(async_err("wait for readiness"))?;
            match self.rb.pending()? {
                Pending::Committed => return Ok(()),
                Pending::Busy => {
                    drop(guard);
                    tokio::time::sleep(BUSY_RECHECK).await;
                }
                // A record committed after this check wakes the epoll fd, and
                // tokio keeps that readiness even if it arrives before the clear
                // below takes effect, so no wake-up is lost.
                Pending::Empty => guard.clear_ready(),
            }
        }
    }

    /// Consume every ring without waiting; the number of samples.
    pub fn consume(&mut self) -> Result<usize, RingBufError> {
        self.rb.consume()
    }

    /// Wait for samples and consume them: `readable().await` then `consume()`,
    /// until at least one sample was delivered. Returns how many.
    pub async fn next_batch(&mut self) -> Result<usize, RingBufError> {
        loop {
            self.readable().await?;
            let n = self.consume()?;
            if n > 0 {
                return Ok(n);
            }
        }
    }

    /// Consume ring `index` (in the order of `add`) without waiting.
    pub fn consume_ring(&mut self, index: usize) -> Result<usize, RingBufError> {
        self.rb.consume_ring(index)
    }

    /// The ring buffer.
    pub fn get_ref(&self) -> &RingBuffer<'cb, F> {
        &self.rb
    }

    /// Deregister from tokio and give the ring buffer back.
    pub fn into_inner(self) -> RingBuffer<'cb, F> {
        self.rb
    }
}
