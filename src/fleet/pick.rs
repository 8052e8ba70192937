//! The decision itself, on plain numbers (unit-tested and benchmarked apart from the pool).
//!
//! Load of an endpoint (README "Fleet routing"): this gateway's own requests in flight on it
//! (exact and current), plus what the server ran or queued beyond those at its last scrape
//! (other gateways' traffic), plus its waiting requests once more (queued work has not even
//! started), plus up to 4 for KV cache pressure above 80 %.

/// Why an endpoint was picked (the `reason` label of `switchyard_fleet_picks_total`, and the
/// access log's `pick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RoundRobin,
    LeastLoaded,
    PrefixHit,
    /// The endpoint holding the prefix (or the session) was overloaded: least-loaded instead.
    Spill,
    Session,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RoundRobin => "round_robin",
            Reason::LeastLoaded => "least_loaded",
            Reason::PrefixHit => "prefix_hit",
            Reason::Spill => "spill",
            Reason::Session => "session",
        }
    }
}

/// What is known of one eligible endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Candidate {
    pub load: f64,
    /// Leading prompt blocks it holds.
    pub matched: usize,
    /// The request's session is pinned to it.
    pub pinned: bool,
    /// When it was last picked (a fleet-wide sequence number; 0 = never).
    pub last_pick: u64,
}

/// The load score from the signals (see the module docs). `foreign`: what the server was
/// running or queueing beyond this gateway's own requests at the last scrape (other gateways).
pub fn load(in_flight: f64, foreign: f64, waiting: f64, kv_usage: f64) -> f64 {
    let kv_pressure = ((kv_usage - 0.8) * 5.0).clamp(0.0, 1.0) * 4.0;
    in_flight + foreign.max(0.0) + waiting + kv_pressure
}

/// Requests (decayed, see `index::EPOCH_PICKS`) whose deepest match was one block, past
/// which that prefix is hot: many requests will reuse it, so growing its holders costs one
/// cache miss per new holder and is paid back by all the requests after it.
pub const HOT_PREFIX_HITS: u16 = 8;

/// The spill threshold for a request whose deepest matched block has `popularity`: the
/// configured one, or 1 for a hot prefix. Holding a hot prefix on few replicas while others
/// idle queues its requests behind each other (one hot system prompt: TTFT p99 +43 % on the
/// simulator); a conversation's own history, matched by one request per turn, keeps the
/// configured threshold.
pub fn spill_threshold(configured: f64, popularity: u16) -> f64 {
    if popularity >= HOT_PREFIX_HITS {
        configured.min(1.0)
    } else {
        configured
    }
}

/// Pick among `c` (not empty). `threshold`: how much more loaded than the least-loaded
/// endpoint a prefix holder or a pinned endpoint may be. `rotate` (a hot prefix): among the
/// holders of the longest match within the threshold, the one picked longest ago rather
/// than the least loaded, so the prefix's arrivals are spaced on each holder as round robin
/// spaces them (a prefill that lands on a replica already prefilling waits for it; in-flight
/// counts, mostly decoding requests, do not see that). `random` breaks ties among the least
/// loaded, so a burst spreads instead of piling onto one endpoint.
pub fn decide(
    c: &[Candidate],
    threshold: f64,
    rotate: bool,
    random: u64,
) -> Option<(usize, Reason)> {
    let min = c.iter().map(|x| x.load).fold(f64::INFINITY, f64::min);
    if !min.is_finite() {
        return None;
    }
    let within = |x: &Candidate| x.load <= min + threshold;
    // Among the least loaded, the one picked longest ago (never picked first, at random among
    // those): a burst rotates over idle replicas instead of piling onto one, and arrivals are
    // spaced on each replica as evenly as round robin spaces them.
    let least = {
        let tied = |x: &Candidate| x.load <= min + 1e-9;
        let oldest = c.iter().filter(|x| tied(x)).map(|x| x.last_pick).min()?;
        let ties = c
            .iter()
            .filter(|x| tied(x) && x.last_pick == oldest)
            .count() as u64;
        let nth = (random % ties.max(1)) as usize;
        c.iter()
            .enumerate()
            .filter(|(_, x)| tied(x) && x.last_pick == oldest)
            .nth(nth)
            .map(|(i, _)| i)?
    };
    if let Some(i) = c.iter().position(|x| x.pinned) {
        return Some(if within(&c[i]) {
            (i, Reason::Session)
        } else {
            (least, Reason::Spill)
        });
    }
    // The longest match; among equal matches the less loaded; among those, at random (a hot
    // prefix held by several replicas spreads over all of them).
    let top = c
        .iter()
        .filter(|x| x.matched > 0)
        .map(|x| (x.matched, -x.load))
        .max_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        });
    let best = top.and_then(|(m, neg_load)| {
        let is_top = |x: &Candidate| {
            x.matched == m
                && if rotate {
                    within(x)
                } else {
                    (-x.load - neg_load).abs() <= 1e-9
                }
        };
        let oldest = c.iter().filter(|x| is_top(x)).map(|x| x.last_pick).min()?;
        let ties = c
            .iter()
            .filter(|x| is_top(x) && x.last_pick == oldest)
            .count() as u64;
        let nth = ((random >> 32) % ties.max(1)) as usize;
        c.iter()
            .enumerate()
            .filter(|(_, x)| is_top(x) && x.last_pick == oldest)
            .nth(nth)
    });
    match best {
        Some((i, x)) if within(x) => Some((i, Reason::PrefixHit)),
        Some(_) => Some((least, Reason::Spill)),
        // Rotating, no holder was within the threshold: a spill all the same.
        None if top.is_some() => Some((least, Reason::Spill)),
        None => Some((least, Reason::LeastLoaded)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(load: f64, matched: usize) -> Candidate {
        Candidate {
            load,
            matched,
            pinned: false,
            last_pick: 0,
        }
    }

    #[test]
    fn the_longest_prefix_wins_while_it_is_not_overloaded() {
        let cands = [c(2.0, 3), c(0.0, 0), c(1.0, 5)];
        assert_eq!(decide(&cands, 4.0, false, 0), Some((2, Reason::PrefixHit)));
        // Equal matches: the less loaded.
        let cands = [c(3.0, 5), c(1.0, 5), c(0.0, 0)];
        assert_eq!(decide(&cands, 4.0, false, 0), Some((1, Reason::PrefixHit)));
    }

    #[test]
    fn an_overloaded_holder_spills_to_the_least_loaded() {
        let cands = [c(9.0, 10), c(1.0, 0), c(4.0, 0)];
        assert_eq!(decide(&cands, 4.0, false, 0), Some((1, Reason::Spill)));
        // At exactly the threshold it still takes it.
        let cands = [c(5.0, 10), c(1.0, 0)];
        assert_eq!(decide(&cands, 4.0, false, 0), Some((0, Reason::PrefixHit)));
    }

    #[test]
    fn no_match_is_least_loaded_with_random_ties() {
        let cands = [c(2.0, 0), c(1.0, 0), c(1.0, 0), c(3.0, 0)];
        let picks: std::collections::BTreeSet<usize> = (0..8)
            .map(|r| decide(&cands, 4.0, false, r).unwrap().0)
            .collect();
        assert_eq!(picks, [1, 2].into());
        assert_eq!(
            decide(&cands, 4.0, false, 0).unwrap().1,
            Reason::LeastLoaded
        );
    }

    #[test]
    fn a_pinned_session_wins_unless_overloaded() {
        let mut cands = [c(2.0, 0), c(0.0, 9), c(3.0, 0)];
        cands[2].pinned = true;
        assert_eq!(decide(&cands, 4.0, false, 0), Some((2, Reason::Session)));
        cands[2].load = 7.0;
        assert_eq!(decide(&cands, 4.0, false, 0), Some((1, Reason::Spill)));
    }

    #[test]
    fn load_scores() {
        assert_eq!(
            load(3.0, 0.0, 0.0, 0.0),
            3.0,
            "local count alone (llama-server)"
        );
        assert_eq!(
            load(1.0, 5.0, 2.0, 0.5),
            8.0,
            "others' requests, waiting twice"
        );
        assert_eq!(load(2.0, -1.0, 0.0, 0.0), 2.0, "never below our own count");
        assert!(
            (load(0.0, 0.0, 0.0, 1.0) - 4.0).abs() < 1e-9,
            "a full KV cache"
        );
        assert_eq!(load(0.0, 0.0, 0.0, 0.8), 0.0, "no pressure below 80 %");
        assert!(decide(&[], 4.0, false, 0).is_none());
    }

    #[test]
    fn ties_go_to_the_one_picked_longest_ago() {
        let mut cands = [c(0.0, 0), c(0.0, 0), c(0.0, 0), c(1.0, 0)];
        cands[0].last_pick = 7;
        cands[1].last_pick = 3;
        cands[2].last_pick = 5;
        cands[3].last_pick = 1;
        assert_eq!(
            decide(&cands, 4.0, false, 99),
            Some((1, Reason::LeastLoaded))
        );
    }

    #[test]
    fn a_hot_prefix_rotates_over_its_holders_within_the_threshold() {
        let mut cands = [c(1.0, 4), c(0.0, 4), c(2.0, 4), c(0.0, 0)];
        cands[0].last_pick = 2;
        cands[1].last_pick = 9;
        cands[2].last_pick = 1;
        cands[3].last_pick = 0;
        // Not rotating: the least loaded holder.
        assert_eq!(decide(&cands, 1.0, false, 0), Some((1, Reason::PrefixHit)));
        // Rotating: the holder picked longest ago among those within 1 of the least loaded
        // (the third is 2 above it: left out).
        assert_eq!(decide(&cands, 1.0, true, 0), Some((0, Reason::PrefixHit)));
        // No holder within the threshold: a spill, as without rotation.
        for x in &mut cands[..3] {
            x.load = 5.0;
        }
        assert_eq!(decide(&cands, 1.0, true, 0), Some((3, Reason::Spill)));
    }

    #[test]
    fn equal_holders_share_a_hot_prefix() {
        let cands = [c(1.0, 4), c(1.0, 4), c(1.0, 4), c(0.0, 0)];
        let picks: std::collections::BTreeSet<usize> = (0..64u64)
            .map(|r| decide(&cands, 4.0, false, r << 32).unwrap().0)
            .collect();
        assert_eq!(picks, [0, 1, 2].into());
    }
}
