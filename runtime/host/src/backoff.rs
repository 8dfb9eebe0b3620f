//! Reconnect delays: exponential with full jitter, so that many gateways
//! losing the same broker do not all come back at the same instant.

use std::time::Duration;

pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
    /// xorshift state: jitter needs spread, not cryptographic randomness.
    seed: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Self {
            first,
            max,
            attempt: 0,
            seed,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: uniform in [ceiling/2, ceiling], the ceiling doubling
    /// from `first` up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = ceiling / 2;
        let spread = half.as_nanos().max(1) as u64;
        half + Duration::from_nanos(self.seed % spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let mut b = Backoff::new(first, max);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= first / 2 && delays[0] <= first);
        assert!(delays.iter().all(|d| *d <= max));
        assert!(delays[11] >= max / 2, "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= first);
    }
}
