//! A client-side rate limit: at most `limit` requests in any `period`, kept by waiting before a
//! request rather than being refused by the platform (X's 250 stats requests per 15 minutes).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The sends of the last `period`, oldest first: a sliding log, so no `period` (and so no fixed window
/// of the platform's) ever holds more than `limit`.
#[derive(Debug)]
pub struct Pacer {
    limit: usize,
    period: Duration,
    sent: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl Pacer {
    pub fn new(limit: u32, period: Duration) -> Pacer {
        Pacer { limit: (limit as usize).max(1), period, sent: Default::default() }
    }

    /// How long a request at `now` must wait; the log's sends older than a period are forgotten.
    fn wait(&self, sent: &mut VecDeque<Instant>, now: Instant) -> Duration {
        while sent.front().is_some_and(|at| now.duration_since(*at) >= self.period) {
            sent.pop_front();
        }
        match sent.len() < self.limit {
            true => Duration::ZERO,
            false => self.period.saturating_sub(now.duration_since(sent[sent.len() - self.limit])),
        }
    }

    /// Wait until one more request fits, and count it. Waiters queue in turn (the log's lock is fair).
    pub async fn acquire(&self) {
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            let wait = self.wait(&mut sent, now);
            if wait.is_zero() {
                sent.push_back(now);
                return;
            }
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                limit = self.limit,
                period_s = self.period.as_secs(),
                "pacing requests to the platform's rate limit"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_past_the_limit_waits_for_the_oldest_to_leave_the_period() {
        let pacer = Pacer::new(3, Duration::from_secs(10));
        let start = Instant::now();
        let mut sent = VecDeque::new();
        for second in [0, 1, 2] {
            let at = start + Duration::from_secs(second);
            assert_eq!(pacer.wait(&mut sent, at), Duration::ZERO);
            sent.push_back(at);
        }
        // The fourth in the same period waits until the first is 10 s old.
        assert_eq!(pacer.wait(&mut sent, start + Duration::from_secs(4)), Duration::from_secs(6));
        assert_eq!(pacer.wait(&mut sent, start + Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(sent.len(), 2, "the first send left the log");
    }

    #[tokio::test]
    async fn acquiring_counts_each_send_in_the_log() {
        let pacer = Pacer::new(5, Duration::from_secs(3600));
        for _ in 0..5 {
            pacer.acquire().await;
        }
        let mut sent = pacer.sent.lock().await;
        assert_eq!(sent.len(), 5);
        assert!(pacer.wait(&mut sent, Instant::now()) > Duration::from_secs(3000), "a sixth waits an hour");
    }
}
