//! The client-side limit on SSM calls of one account and region: a steady rate with a small
//! burst, and a cap on calls in flight. Every call of a poll cycle passes through one
//! [`Limiter`], so throttling slows the cycle down instead of failing it.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    /// Time between two calls at the steady rate.
    spacing: Duration,
    /// How far ahead of the steady schedule a burst may run.
    burst: Duration,
    /// The earliest start of the next call. A std mutex: it is held for a few instructions and
    /// never across an await.
    next: Mutex<Instant>,
    in_flight: Semaphore,
    /// What it was made with: calls a second, burst, calls in flight.
    made_with: (f64, u32, usize),
}

impl Limiter {
    /// `per_second` calls a second on average, `burst` of them at once after a quiet spell,
    /// never more than `max_in_flight` at a time.
    pub fn new(per_second: f64, burst: u32, max_in_flight: usize) -> Limiter {
        let spacing = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        Limiter {
            spacing,
            burst: spacing * burst.saturating_sub(1),
            next: Mutex::new(Instant::now()),
            in_flight: Semaphore::new(max_in_flight.max(1)),
            made_with: (per_second, burst, max_in_flight),
        }
    }

    /// Whether this is the limit `api` asks for: then a reload keeps it, with the calls it
    /// has booked.
    pub fn is_for(&self, api: &crate::config::Api) -> bool {
        self.made_with == (api.requests_per_second, api.burst, api.max_in_flight)
    }

    /// The limit a configuration's `api` section asks for.
    pub fn for_api(api: &crate::config::Api) -> Limiter {
        Limiter::new(api.requests_per_second, api.burst, api.max_in_flight)
    }

    /// Waits for a slot, then runs `call` while holding one of the in-flight permits.
    pub async fn run<T>(&self, call: impl Future<Output = T>) -> T {
        // Closing the semaphore is never done; a failed acquire would only mean no limit.
        let _permit = self.in_flight.acquire().await.ok();
        let start = self.reserve();
        tokio::time::sleep_until(start).await;
        call.await
    }

    /// Books the next start time: no earlier than now, and spaced from the previous booking,
    /// except that up to `burst` of unused time may be caught up.
    fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let earliest = now.checked_sub(self.burst).unwrap_or(now);
        let start = (*next).max(earliest);
        *next = start + self.spacing;
        start.max(now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_at_the_rate_after_the_burst() {
        let limiter = Limiter::new(10.0, 3, 100);
        // Let a quiet second pass so the burst is available.
        tokio::time::advance(Duration::from_secs(1)).await;
        let origin = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..6 {
            limiter.run(async {}).await;
            starts.push((Instant::now() - origin).as_millis());
        }
        assert_eq!(starts, [0, 0, 0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn caps_calls_in_flight() {
        let limiter = Arc::new(Limiter::new(1000.0, 1000, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (limiter, running, most) = (limiter.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                limiter
                    .run(async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
