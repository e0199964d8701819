//! The `backup_net_limit` of a job: bytes per second written to a destination. Writers ask
//! before each object; the throttle lets the bytes written so far run at most a little ahead of
//! the rate, and waits in short slices so that a cancel is never held up by it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The longest single sleep: a cancel waits at most this long for a throttled writer.
const SLICE: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; 0 = no limit.
    rate: u64,
    started: Instant,
    granted: AtomicU64,
}

impl Throttle {
    pub fn new(bytes_per_second: u64) -> Throttle {
        Throttle {
            rate: bytes_per_second,
            started: Instant::now(),
            granted: AtomicU64::new(0),
        }
    }

    /// Waits until `bytes` more may be written at the rate, or until `stop` fires.
    pub fn wait(&self, bytes: u64, stop: &CancellationToken) {
        if self.rate == 0 {
            return;
        }
        let total = self.granted.fetch_add(bytes, Ordering::Relaxed);
        // The object may start once what came before it has had its time.
        let due = self.started + Duration::from_secs_f64(total as f64 / self.rate as f64);
        loop {
            let now = Instant::now();
            if now >= due || stop.is_cancelled() {
                return;
            }
            std::thread::sleep((due - now).min(SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_never_waits_and_a_cancel_ends_the_wait() {
        let stop = CancellationToken::new();
        let free = Throttle::new(0);
        for _ in 0..1000 {
            free.wait(1 << 30, &stop);
        }
        // At 1 byte per second the second object is due in 100 s; a cancel ends the wait.
        let slow = Throttle::new(1);
        slow.wait(100, &stop);
        stop.cancel();
        slow.wait(100, &stop);
    }

    #[test]
    fn objects_are_spaced_by_the_rate() {
        let stop = CancellationToken::new();
        let throttle = Throttle::new(1000);
        let started = Instant::now();
        for _ in 0..3 {
            throttle.wait(100, &stop);
        }
        // 300 bytes at 1000 B/s: the third may start once 200 bytes had their 0.2 s.
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
