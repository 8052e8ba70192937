//! The window algorithm: a one-minute token bucket (GCRA-equivalent), kept as a *level*.
//!
//! A limit of `N` per minute is a bucket that holds `N` and drains continuously at `N/60`
//! per second. A request adds its cost to the level when `level + cost <= N`. Compared with
//! fixed windows there is no boundary where `2N` pass in a second; compared with a sliding
//! log it is one number per limit, so a check is O(1) in memory and in Redis.
//!
//! The level is stored in *units* (requests or tokens), not as a time: a reload that changes
//! `N` keeps what was already taken, and a settlement can add or give back units.
//!
//! `scripts/admit.lua` runs the same arithmetic inside Redis; keep them in step
//! (`tests` below and the Redis tests check both against the same cases).

/// Milliseconds a full bucket takes to drain: the one-minute window.
pub const WINDOW_MS: f64 = 60_000.0;

/// A bucket's stored state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Level {
    /// Units in the bucket at `at_ms`.
    pub units: f64,
    /// When `units` was last written, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Level {
    /// The level at `now_ms`, drained at `limit` per minute since it was written.
    pub fn drained(self, now_ms: u64, limit: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        (self.units - elapsed * limit as f64 / WINDOW_MS).max(0.0)
    }
}

/// What a bucket shows after a check: the `x-ratelimit-*` numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown {
    pub limit: u64,
    /// Whole units that would pass now.
    pub remaining: u64,
    /// Seconds until the bucket is empty again (the window has freed).
    pub reset_s: f64,
}

pub fn shown(units: f64, limit: u64) -> Shown {
    let units = units.max(0.0);
    Shown {
        limit,
        remaining: (limit as f64 - units).max(0.0).floor() as u64,
        reset_s: units * WINDOW_MS / limit.max(1) as f64 / 1000.0,
    }
}

/// Try to add `cost` at `now_ms`. `Ok(new level)` or `Err(seconds until it would fit)`.
pub fn take(level: Level, now_ms: u64, limit: u64, cost: u64) -> Result<f64, f64> {
    let units = level.drained(now_ms, limit);
    let after = units + cost as f64;
    if after <= limit as f64 {
        Ok(after)
    } else {
        Err((after - limit as f64) * WINDOW_MS / limit.max(1) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_exactly_the_limit() {
        let mut level = Level::default();
        let mut passed = 0;
        for i in 0..30 {
            let now = 1_000_000 + i * 10; // 30 requests in 300 ms
            if let Ok(units) = take(level, now, 10, 1) {
                level = Level { units, at_ms: now };
                passed += 1;
            }
        }
        assert_eq!(passed, 10);
    }

    #[test]
    fn the_bucket_refills_continuously() {
        let full = Level {
            units: 10.0,
            at_ms: 0,
        };
        // 10 a minute: one unit every 6 s.
        let wait = take(full, 0, 10, 1).unwrap_err();
        assert!((wait - 6.0).abs() < 1e-9, "{wait}");
        assert!(take(full, 5_999, 10, 1).is_err());
        assert_eq!(take(full, 6_000, 10, 1), Ok(10.0));
        assert_eq!(full.drained(60_000, 10), 0.0);
        assert_eq!(full.drained(120_000, 10), 0.0, "never below empty");
    }

    #[test]
    fn headers_show_whole_remaining_units_and_seconds_to_empty() {
        let s = shown(2.5, 10);
        assert_eq!((s.limit, s.remaining), (10, 7));
        assert!((s.reset_s - 15.0).abs() < 1e-9);
        assert_eq!(
            shown(12.0, 10).remaining,
            0,
            "over-settled never shows negative"
        );
    }

    #[test]
    fn a_cost_above_the_limit_never_fits() {
        assert!(take(Level::default(), 0, 100, 101).is_err());
        assert_eq!(take(Level::default(), 0, 100, 100), Ok(100.0));
    }
}
