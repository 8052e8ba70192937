//! Which endpoint was last sent which prompt blocks: an approximate, bounded picture of the
//! fleet's prefix caches, built only from the gateway's own routing decisions.
//!
//! Bounded by `capacity` blocks over the whole fleet, evicted by CLOCK (second chance): a
//! block matched since it was queued goes round again, the others leave, oldest first. An
//! endpoint is a small id; one that goes away just stops matching (its blocks age out), so
//! no other prefix moves.

use std::collections::{HashMap, VecDeque};

/// An endpoint's id in the index (a fleet's endpoints are few; ids are never reused).
pub type EndpointId = u16;

/// Holders kept per block: a hot prefix spills onto as many replicas as its load needs, and
/// every holder must stay a candidate, or the prefix would be squeezed onto a few of them.
/// Past this many (a very large fleet), the latest holders are kept.
const HOLDERS: usize = 32;

/// Picks per popularity epoch: a block's hit count halves every this many picks of the
/// fleet, so it counts roughly the requests of the last few hundred picks.
const EPOCH_PICKS: u64 = 128;

#[derive(Debug, Default)]
struct Slot {
    holders: Vec<EndpointId>,
    referenced: bool,
    /// Requests whose deepest matched block this was, halved every epoch since `epoch`.
    hits: u16,
    epoch: u32,
}

#[derive(Debug)]
pub struct PrefixIndex {
    slots: HashMap<u64, Slot>,
    clock: VecDeque<u64>,
    capacity: usize,
}

impl PrefixIndex {
    pub fn new(capacity: usize) -> PrefixIndex {
        PrefixIndex {
            slots: HashMap::new(),
            clock: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// For each endpoint in `candidates`, how many leading blocks of `chain` it holds.
    /// Matched blocks count as used (they survive the next eviction round). Returns how
    /// popular the deepest matched block is (this request counted): requests whose deepest
    /// match it was, decayed by half every [`EPOCH_PICKS`] picks of the fleet (`pick_seq`).
    pub fn matched(
        &mut self,
        chain: &[u64],
        candidates: &[EndpointId],
        out: &mut [usize],
        pick_seq: u64,
    ) -> u16 {
        out.iter_mut().for_each(|m| *m = 0);
        let mut deepest = None;
        for (depth, h) in chain.iter().enumerate() {
            let Some(slot) = self.slots.get_mut(h) else {
                break;
            };
            let mut any = false;
            for (i, c) in candidates.iter().enumerate() {
                // Still matching at this depth and holds this block too.
                if out[i] == depth && slot.holders.contains(c) {
                    out[i] = depth + 1;
                    any = true;
                }
            }
            if !any {
                break;
            }
            slot.referenced = true;
            deepest = Some(*h);
        }
        let Some(slot) = deepest.and_then(|h| self.slots.get_mut(&h)) else {
            return 0;
        };
        let epoch = (pick_seq / EPOCH_PICKS) as u32;
        let halvings = epoch.wrapping_sub(slot.epoch);
        slot.hits = slot
            .hits
            .checked_shr(halvings)
            .unwrap_or(0)
            .saturating_add(1);
        slot.epoch = epoch;
        slot.hits
    }

    /// `endpoint` now holds every block of `chain`.
    pub fn record(&mut self, chain: &[u64], endpoint: EndpointId) {
        for h in chain {
            match self.slots.get_mut(h) {
                Some(slot) => {
                    slot.referenced = true;
                    if !slot.holders.contains(&endpoint) {
                        if slot.holders.len() == HOLDERS {
                            slot.holders.remove(0);
                        }
                        slot.holders.push(endpoint);
                    }
                }
                None => {
                    self.evict_to(self.capacity - 1);
                    self.slots.insert(
                        *h,
                        Slot {
                            holders: vec![endpoint],
                            ..Slot::default()
                        },
                    );
                    self.clock.push_back(*h);
                }
            }
        }
    }

    /// `endpoint` does not hold `chain` after all (its attempt failed before an answer).
    pub fn unrecord(&mut self, chain: &[u64], endpoint: EndpointId) {
        for h in chain {
            if let Some(slot) = self.slots.get_mut(h) {
                slot.holders.retain(|e| *e != endpoint);
                if slot.holders.is_empty() {
                    self.slots.remove(h);
                }
            }
        }
    }

    /// Forget `endpoint` everywhere (it left the fleet).
    pub fn forget(&mut self, endpoint: EndpointId) {
        self.slots.retain(|_, s| {
            s.holders.retain(|e| *e != endpoint);
            !s.holders.is_empty()
        });
        self.clock.retain(|h| self.slots.contains_key(h));
    }

    fn evict_to(&mut self, size: usize) {
        // Each pass either evicts or clears one reference bit, so this ends within 2 × len.
        while self.slots.len() > size {
            let Some(h) = self.clock.pop_front() else {
                break;
            };
            match self.slots.get_mut(&h) {
                Some(slot) if slot.referenced => {
                    slot.referenced = false;
                    self.clock.push_back(h);
                }
                Some(_) => {
                    self.slots.remove(&h);
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_count_leading_blocks_per_endpoint() {
        let mut ix = PrefixIndex::new(100);
        ix.record(&[1, 2, 3, 4], 0);
        ix.record(&[1, 2, 9], 1);
        let mut m = [0; 3];
        ix.matched(&[1, 2, 3, 4, 5], &[0, 1, 2], &mut m, 0);
        assert_eq!(m, [4, 2, 0]);
        ix.matched(&[7, 2, 3], &[0, 1, 2], &mut m, 0);
        assert_eq!(
            m,
            [0, 0, 0],
            "a chain that differs in its first block matches nothing"
        );
    }

    #[test]
    fn bounded_and_evicts_the_unused_first() {
        let mut ix = PrefixIndex::new(4);
        ix.record(&[1, 2], 0);
        let mut m = [0];
        ix.matched(&[1, 2], &[0], &mut m, 0); // 1 and 2 used
        ix.record(&[10, 11, 12], 0);
        assert_eq!(ix.len(), 4);
        ix.matched(&[1, 2], &[0], &mut m, 0);
        assert_eq!(m, [2], "the used blocks survived, a newer unused one left");
        for i in 100..200 {
            ix.record(&[i], 1);
            assert!(ix.len() <= 4);
        }
        ix.matched(&[1, 2], &[0], &mut m, 0);
        assert_eq!(m, [0], "and eventually everything old goes");
    }

    #[test]
    fn forgetting_an_endpoint_leaves_the_others_alone() {
        let mut ix = PrefixIndex::new(100);
        ix.record(&[1, 2], 0);
        ix.record(&[1, 2], 1);
        ix.record(&[5], 2);
        ix.forget(1);
        let mut m = [0; 3];
        ix.matched(&[1, 2], &[0, 1, 2], &mut m, 0);
        assert_eq!(m, [2, 0, 0]);
        ix.matched(&[5], &[0, 1, 2], &mut m, 0);
        assert_eq!(m, [0, 0, 1]);
    }

    #[test]
    fn a_failed_attempt_is_taken_back() {
        let mut ix = PrefixIndex::new(100);
        ix.record(&[1, 2, 3], 0);
        ix.record(&[1, 2, 3], 1);
        ix.unrecord(&[1, 2, 3], 1);
        let mut m = [0; 2];
        ix.matched(&[1, 2, 3], &[0, 1], &mut m, 0);
        assert_eq!(m, [3, 0]);
        ix.unrecord(&[1, 2, 3], 0);
        assert!(ix.is_empty());
    }

    #[test]
    fn holders_per_block_are_bounded() {
        let mut ix = PrefixIndex::new(10);
        let n = HOLDERS + 4;
        for e in 0..n {
            ix.record(&[1], e as EndpointId);
        }
        let mut m = vec![0; n];
        ix.matched(&[1], &(0..n as EndpointId).collect::<Vec<_>>(), &mut m, 0);
        assert_eq!(m.iter().sum::<usize>(), HOLDERS);
        assert_eq!(&m[..4], &[0, 0, 0, 0], "the oldest holders went");
        assert!(m[4..].iter().all(|x| *x == 1), "the latest holders stay");
    }

    #[test]
    fn popularity_counts_deepest_matches_and_decays() {
        let mut ix = PrefixIndex::new(100);
        ix.record(&[1, 2, 3], 0);
        ix.record(&[1, 9], 1);
        let mut m = [0; 2];
        // Block 3 is the deepest match of requests that go on past the shared prefix too.
        for n in 1..=5u16 {
            assert_eq!(ix.matched(&[1, 2, 3, 4], &[0, 1], &mut m, 0), n);
        }
        assert_eq!(m, [3, 1]);
        // Another request whose deepest match is block 1: its own count.
        assert_eq!(ix.matched(&[1, 5], &[0, 1], &mut m, 0), 1);
        // Nothing matched: not popular.
        assert_eq!(ix.matched(&[8], &[0, 1], &mut m, 0), 0);
        // Two epochs later the five hits have halved twice (5 -> 2 -> 1), plus this one.
        assert_eq!(ix.matched(&[1, 2, 3], &[0, 1], &mut m, 2 * EPOCH_PICKS), 2);
        // Long idle: gone.
        assert_eq!(
            ix.matched(&[1, 2, 3], &[0, 1], &mut m, 100 * EPOCH_PICKS),
            1
        );
    }
}
