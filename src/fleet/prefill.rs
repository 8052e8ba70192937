//! Prefills sent to each endpoint and not yet answered with a first token: how much prompt an
//! endpoint is still computing (a load), and which blocks of it are not cached there yet.
//!
//! The prefix index records a prompt's blocks on an endpoint when the request is sent, but the
//! replica caches them only once it has computed them. A second request for the same prefix
//! that arrives meanwhile finds nothing cached: vLLM computes the blocks again for it, in the
//! same steps as the first (chunked prefill shares each step's token budget), so it waits about
//! as long as the first. Such blocks count as unmatched on that endpoint until the first
//! request's first token: while one replica computes a new hot system prompt, its next
//! arrivals go to idle replicas (which compute it side by side, as round robin would have them)
//! instead of queueing behind it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Pending prefills remembered per endpoint with their blocks; past this many (a replica with
/// a long queue), the rest still count as load but their blocks look cached, as if this module
/// were not there.
const PENDING_MAX: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    /// The first block of the prompt the endpoint computes (it held the ones before).
    from: usize,
    /// That block's hash: a later prompt with this hash at `from` shares every block before.
    head: u64,
}

#[derive(Debug, Default)]
struct Shared {
    by_endpoint: Mutex<HashMap<SocketAddr, Vec<Pending>>>,
    next: AtomicU64,
}

/// The pending prefills of one fleet.
pub struct Prefills {
    shared: Arc<Shared>,
    /// Uncomputed blocks per endpoint (a load; exact past `PENDING_MAX`).
    blocks: pingora_limits::inflight::Inflight,
}

impl Default for Prefills {
    fn default() -> Prefills {
        Prefills {
            shared: Arc::default(),
            blocks: pingora_limits::inflight::Inflight::new(),
        }
    }
}

/// A prefill in progress on an endpoint; dropped at the request's first token (or its end).
pub struct Prefilling {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `None`: not remembered block by block (`PENDING_MAX`).
    id: Option<u64>,
    _blocks: pingora_limits::inflight::Guard,
}

impl std::fmt::Debug for Prefilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilling")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for Prefilling {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let mut m = self
            .shared
            .by_endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(v) = m.get_mut(&self.addr) {
            v.retain(|p| p.id != id);
            if v.is_empty() {
                m.remove(&self.addr);
            }
        }
    }
}

impl Prefills {
    /// `addr` computes `chain[from..]` (it holds, as far as the index knows, the blocks
    /// before) until the guard is dropped. `None` when there is nothing to compute.
    pub fn begin(&self, addr: SocketAddr, chain: &[u64], from: usize) -> Option<Prefilling> {
        let head = *chain.get(from)?;
        let blocks = self.blocks.incr(addr, (chain.len() - from) as isize).0;
        let mut m = self
            .shared
            .by_endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let v = m.entry(addr).or_default();
        let id = (v.len() < PENDING_MAX).then(|| {
            let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
            v.push(Pending { id, from, head });
            id
        });
        Some(Prefilling {
            shared: self.shared.clone(),
            addr,
            id,
            _blocks: blocks,
        })
    }

    /// Blocks pending on `addr`.
    pub fn blocks(&self, addr: SocketAddr) -> usize {
        self.blocks.incr(addr, 0).1.max(0) as usize
    }

    /// For each of `addrs`, of the `matched` leading blocks of `chain` the index says it
    /// holds, how many it has computed (in place): a pending prefill there that shares the
    /// prompt up to its first block (same hash at the same depth) has not computed that block
    /// and the ones after.
    pub fn computed(&self, addrs: &[SocketAddr], chain: &[u64], matched: &mut [usize]) {
        if matched.iter().all(|m| *m == 0) {
            return;
        }
        let by_endpoint = self
            .shared
            .by_endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (addr, m) in addrs.iter().zip(matched.iter_mut()) {
            if let Some(pending) = by_endpoint.get(addr).filter(|_| *m > 0) {
                *m = pending
                    .iter()
                    .filter(|p| p.from < *m && chain.get(p.from) == Some(&p.head))
                    .map(|p| p.from)
                    .fold(*m, usize::min);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 8000))
    }

    /// `computed` for one endpoint.
    fn computed(p: &Prefills, addr: SocketAddr, chain: &[u64], matched: usize) -> usize {
        let mut m = [matched];
        p.computed(&[addr], chain, &mut m);
        m[0]
    }

    #[test]
    fn blocks_in_progress_are_not_computed_until_the_first_token() {
        let p = Prefills::default();
        let a = addr(1);
        let chain = [1, 2, 3, 4, 5, 6];
        // `a` held the first two blocks and is computing the other four.
        let first = p.begin(a, &chain, 2).unwrap();
        assert_eq!(p.blocks(a), 4);
        assert_eq!(computed(&p, a, &chain, 6), 2);
        // A prompt that shares three blocks: only the two computed ones are there.
        assert_eq!(computed(&p, a, &[1, 2, 3, 9], 3), 2);
        // One that parts before the pending block does not depend on it.
        assert_eq!(computed(&p, a, &[1, 7, 8], 1), 1);
        // Another endpoint is not concerned.
        assert_eq!(computed(&p, addr(2), &chain, 6), 6);
        drop(first);
        assert_eq!(computed(&p, a, &chain, 6), 6);
        assert_eq!(p.blocks(a), 0);
        assert!(
            p.shared.by_endpoint.lock().unwrap().is_empty(),
            "no empty entries left"
        );
    }

    #[test]
    fn the_earliest_pending_block_counts() {
        let p = Prefills::default();
        let a = addr(3);
        let chain = [1, 2, 3, 4, 5, 6];
        let _later = p.begin(a, &chain, 4).unwrap();
        let earlier = p.begin(a, &chain, 1).unwrap();
        assert_eq!(computed(&p, a, &chain, 6), 1);
        drop(earlier);
        assert_eq!(computed(&p, a, &chain, 6), 4);
        assert!(p.begin(a, &chain, 6).is_none(), "nothing to compute");
    }

    #[test]
    fn remembered_prefills_are_bounded() {
        let p = Prefills::default();
        let a = addr(4);
        let chain = [1, 2];
        let guards: Vec<_> = (0..PENDING_MAX + 10)
            .map(|_| p.begin(a, &chain, 0).unwrap())
            .collect();
        assert_eq!(p.shared.by_endpoint.lock().unwrap()[&a].len(), PENDING_MAX);
        assert_eq!(p.blocks(a), 2 * (PENDING_MAX + 10), "all count as load");
        drop(guards);
        assert!(p.shared.by_endpoint.lock().unwrap().is_empty());
    }
}
