//! Exponential backoff with jitter for reconnecting to the control plane.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first reconnect delay.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Doubles the delay after every failure up to a cap. Each delay is drawn
/// from `[d/2, d]` ("equal jitter"), so agents that lost the control plane
/// together do not all come back at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay to wait now; the one after it is twice as long (capped).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = base.saturating_mul(2).min(self.max);
        let half = base / 2;
        half + jitter(base - half)
    }

    /// Starts over from the initial delay (after a healthy stream).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A pseudo-random duration in `[0, upper]`. Each `RandomState` is seeded
/// differently, which is all the randomness reconnect jitter needs.
fn jitter(upper: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let random = RandomState::new().hash_one(nanos);
    let upper_nanos = u64::try_from(upper.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random % upper_nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let expected_bases = [100, 200, 400, 800, 1000, 1000];
        for base in expected_bases {
            let base = Duration::from_millis(base);
            let delay = backoff.next_delay();
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(15));
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_varies() {
        let upper = Duration::from_secs(1);
        let draws: std::collections::HashSet<Duration> = (0..16).map(|_| jitter(upper)).collect();
        assert!(draws.len() > 1, "jitter returned the same value 16 times");
        assert!(draws.iter().all(|d| *d <= upper));
    }
}
