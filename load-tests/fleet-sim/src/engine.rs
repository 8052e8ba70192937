//! One replica's scheduler and KV cache, in the shape of vLLM V1's, as a pure state machine:
//! no clock, no I/O. `plan_step` chooses the next batch and says how long the GPU would take for
//! it; the caller waits that long (a tokio sleep in `serve`, nothing in the tests) and calls
//! `finish_step`, which advances the requests and says which tokens came out.
//!
//! The model (README.md gives the numbers and why they are plausible):
//!
//! - KV memory is `kv_blocks` blocks of 16 tokens. A block is either free, held by running
//!   requests (pinned: a reference count), or cached and idle (evictable, LRU order).
//! - A waiting request is admitted, in FIFO order, when its KV fits: its cached prefix (the
//!   longest run of its leading block keys that the cache holds, at most all but its last token)
//!   is pinned, and fresh blocks are taken for the rest of the prompt plus `max_tokens`, evicting
//!   idle cached blocks, least recently used first, when no free block is left. If even that is
//!   not enough it waits, and so does everyone behind it (head-of-line, like vLLM's FIFO policy).
//!   Reserving `max_tokens` up front stands in for vLLM's grow-then-preempt; it never preempts.
//! - A step carries one token for every decoding request and as many prompt tokens of prefilling
//!   requests as the token budget leaves (chunked prefill); it takes
//!   `step_base + step_per_seq * requests in the step + prefill_per_token * prompt tokens in it`.
//!   Only uncached prompt tokens are computed, so a cache hit shortens prefill, and a long
//!   prefill slows every decoding request that shares its steps.
//! - A prompt block enters the cache (keyed by its chain hash) once computed; it stays pinned
//!   while its request runs, then becomes evictable. Blocks are released tail first, so a
//!   prefix's tail is evicted before its head. Generated tokens are never cached.
//! - The step that finishes a prompt's prefill samples its first token; each later step one more,
//!   until `max_tokens`.

use crate::prompt::{Prompt, BLOCK_TOKENS};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A replica's hardware and scheduler settings.
#[derive(Clone, Debug)]
pub struct Params {
    /// KV capacity in blocks of 16 tokens (cached prefixes and running requests share it).
    pub kv_blocks: usize,
    /// Most requests running at once (vLLM `--max-num-seqs`).
    pub max_num_seqs: usize,
    /// Token budget of one step (vLLM `--max-num-batched-tokens`).
    pub max_batched_tokens: usize,
    /// Longest waiting queue; past it a request is refused (503).
    pub max_waiting: usize,
    /// Longest prompt + max_tokens (vLLM `--max-model-len`); past it, 400.
    pub max_model_len: usize,
    pub prefill_us_per_token: f64,
    pub step_base_us: f64,
    pub step_us_per_seq: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            kv_blocks: 4096,
            max_num_seqs: 256,
            max_batched_tokens: 2048,
            max_waiting: 256,
            max_model_len: 32768,
            prefill_us_per_token: 100.0,
            step_base_us: 15_000.0,
            step_us_per_seq: 500.0,
        }
    }
}

pub type ReqId = u64;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The waiting queue is full (503).
    QueueFull,
    /// Prompt + max_tokens exceeds the model's length or the whole KV (400).
    TooLong { tokens: usize, limit: usize },
}

/// What a step produced for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emit {
    /// Generated token `index` (0 = the first token, the end of prefill).
    Token { id: ReqId, index: usize },
    /// The request is complete (after its last `Token`); its usage.
    Done { id: ReqId, usage: Usage },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub cached_tokens: usize,
}

/// A planned step: the work in it and how long the GPU takes for it.
#[derive(Debug, Clone)]
pub struct Step {
    pub duration_us: u64,
    /// (request, prompt tokens computed in this step; 0 = one decode token)
    pub work: Vec<(ReqId, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    /// `computed` prompt tokens are in KV (cached or computed).
    Prefill {
        computed: usize,
    },
    Decode {
        generated: usize,
    },
}

#[derive(Debug)]
struct Req {
    prompt: Prompt,
    max_tokens: usize,
    phase: Phase,
    cached_tokens: usize,
    /// Cached blocks this request holds a reference on, in prefix order.
    pinned: Vec<u64>,
    /// Blocks this request holds outside the cache.
    private: usize,
    /// Prompt blocks [0, registered) are accounted for (pinned, or kept private as duplicates).
    registered: usize,
}

#[derive(Debug)]
struct Cached {
    refs: u32,
    /// LRU stamp while idle (refs == 0).
    stamp: u64,
}

/// Counters and gauges, as `/metrics` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub running: usize,
    pub waiting: usize,
    /// Blocks held by running requests / all blocks (vLLM counts idle cached blocks as free).
    pub kv_usage: f64,
    pub cached_blocks: usize,
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub finished: u64,
    pub refused: u64,
}

pub struct Engine {
    p: Params,
    cache: HashMap<u64, Cached>,
    /// Idle cached blocks: LRU stamp -> block key.
    idle: BTreeMap<u64, u64>,
    pinned_blocks: usize,
    private_blocks: usize,
    next_stamp: u64,
    reqs: HashMap<ReqId, Req>,
    waiting: VecDeque<ReqId>,
    running: Vec<ReqId>,
    next_id: ReqId,
    stats: Snapshot,
}

impl Engine {
    pub fn new(p: Params) -> Engine {
        Engine {
            p,
            cache: HashMap::new(),
            idle: BTreeMap::new(),
            pinned_blocks: 0,
            private_blocks: 0,
            next_stamp: 0,
            reqs: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_id: 1,
            stats: Snapshot::default(),
        }
    }

    fn free_blocks(&self) -> usize {
        self.p.kv_blocks - self.pinned_blocks - self.private_blocks - self.idle.len()
    }

    /// Queue a request; it runs when its KV fits.
    pub fn submit(&mut self, prompt: Prompt, max_tokens: usize) -> Result<ReqId, Refusal> {
        let tokens = prompt.tokens + max_tokens;
        let limit = self.p.max_model_len.min(self.p.kv_blocks * BLOCK_TOKENS);
        if tokens > limit || prompt.tokens == 0 || max_tokens == 0 {
            self.stats.refused += 1;
            return Err(Refusal::TooLong { tokens, limit });
        }
        if self.waiting.len() >= self.p.max_waiting {
            self.stats.refused += 1;
            return Err(Refusal::QueueFull);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.reqs.insert(
            id,
            Req {
                prompt,
                max_tokens,
                phase: Phase::Waiting,
                cached_tokens: 0,
                pinned: Vec::new(),
                private: 0,
                registered: 0,
            },
        );
        self.waiting.push_back(id);
        Ok(id)
    }

    /// Forget a request (client gone): its blocks are released at once.
    pub fn abort(&mut self, id: ReqId) {
        let Some(req) = self.reqs.remove(&id) else {
            return;
        };
        if req.phase == Phase::Waiting {
            self.waiting.retain(|w| *w != id);
        } else {
            self.running.retain(|r| *r != id);
            self.release(req);
        }
    }

    /// Abort everything and empty the cache and the counters (a fresh replica). Request ids
    /// keep counting: a connection that still holds an old id must not abort a new request.
    pub fn reset(&mut self) -> Vec<ReqId> {
        let ids: Vec<ReqId> = self.reqs.keys().copied().collect();
        let next_id = self.next_id;
        *self = Engine::new(self.p.clone());
        self.next_id = next_id;
        ids
    }

    /// Try to admit the request at the head of the queue.
    fn admit(&mut self, id: ReqId) -> bool {
        let req = &self.reqs[&id];
        let total = (req.prompt.tokens + req.max_tokens).div_ceil(BLOCK_TOKENS);
        // At least the last prompt token is always computed (it yields the first logits).
        let max_hit = req
            .prompt
            .blocks
            .len()
            .min((req.prompt.tokens - 1) / BLOCK_TOKENS);
        let hit = req.prompt.blocks[..max_hit]
            .iter()
            .take_while(|k| self.cache.contains_key(k))
            .count();
        let idle_in_hit = req.prompt.blocks[..hit]
            .iter()
            .filter(|k| self.cache[*k].refs == 0)
            .count();
        let fresh = total - hit;
        if self.free_blocks() + self.idle.len() - idle_in_hit < fresh {
            return false;
        }
        let keys: Vec<u64> = req.prompt.blocks[..hit].to_vec();
        let prompt_tokens = req.prompt.tokens;
        for k in &keys {
            let c = self.cache.get_mut(k).expect("hit block is cached");
            if c.refs == 0 {
                self.idle.remove(&c.stamp);
                self.pinned_blocks += 1;
            }
            c.refs += 1;
        }
        while self.free_blocks() < fresh {
            let (_, key) = self.idle.pop_first().expect("enough idle blocks to evict");
            self.cache.remove(&key);
        }
        self.private_blocks += fresh;
        self.stats.prefix_queries += prompt_tokens as u64;
        self.stats.prefix_hits += (hit * BLOCK_TOKENS) as u64;
        let req = self.reqs.get_mut(&id).expect("admitted request");
        req.cached_tokens = hit * BLOCK_TOKENS;
        req.pinned = keys;
        req.private = fresh;
        req.registered = hit;
        req.phase = Phase::Prefill {
            computed: hit * BLOCK_TOKENS,
        };
        true
    }

    fn release(&mut self, req: Req) {
        // Tail first: the end of a prefix gets the older stamp and is evicted before its head.
        for k in req.pinned.iter().rev() {
            let c = self.cache.get_mut(k).expect("pinned block is cached");
            c.refs -= 1;
            if c.refs == 0 {
                c.stamp = self.next_stamp;
                self.next_stamp += 1;
                self.idle.insert(c.stamp, *k);
                self.pinned_blocks -= 1;
            }
        }
        self.private_blocks -= req.private;
    }

    /// Choose the next batch; `None` when there is nothing to run.
    pub fn plan_step(&mut self) -> Option<Step> {
        let mut budget = self.p.max_batched_tokens;
        let mut work = Vec::new();
        for id in &self.running {
            if budget == 0 {
                break;
            }
            match self.reqs[id].phase {
                Phase::Decode { .. } => {
                    work.push((*id, 0));
                    budget -= 1;
                }
                Phase::Prefill { computed } => {
                    let n = (self.reqs[id].prompt.tokens - computed).min(budget);
                    work.push((*id, n));
                    budget -= n;
                }
                Phase::Waiting => unreachable!("a running request is not waiting"),
            }
        }
        while budget > 0 && self.running.len() < self.p.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            if !self.admit(id) {
                break;
            }
            self.waiting.pop_front();
            self.running.push(id);
            let req = &self.reqs[&id];
            let n = (req.prompt.tokens - req.cached_tokens).min(budget);
            work.push((id, n));
            budget -= n;
        }
        if work.is_empty() {
            return None;
        }
        let prefill: usize = work.iter().map(|(_, n)| n).sum();
        let us = self.p.step_base_us
            + self.p.step_us_per_seq * work.len() as f64
            + self.p.prefill_us_per_token * prefill as f64;
        Some(Step {
            duration_us: us.round() as u64,
            work,
        })
    }

    /// Apply a step after its duration has passed.
    pub fn finish_step(&mut self, step: &Step) -> Vec<Emit> {
        let mut out = Vec::new();
        for &(id, n) in &step.work {
            let Some(req) = self.reqs.get_mut(&id) else {
                continue; // aborted during the step
            };
            let index = match req.phase {
                Phase::Prefill { computed } => {
                    let computed = computed + n;
                    // Register the prompt blocks this step completed.
                    let full = (computed / BLOCK_TOKENS).min(req.prompt.blocks.len());
                    for j in req.registered..full {
                        let key = req.prompt.blocks[j];
                        if let std::collections::hash_map::Entry::Vacant(e) = self.cache.entry(key)
                        {
                            e.insert(Cached { refs: 1, stamp: 0 });
                            req.pinned.push(key);
                            req.private -= 1;
                            self.private_blocks -= 1;
                            self.pinned_blocks += 1;
                        } // else: computed twice at once; this copy stays private
                    }
                    req.registered = req.registered.max(full);
                    if computed < req.prompt.tokens {
                        req.phase = Phase::Prefill { computed };
                        continue;
                    }
                    self.stats.prompt_tokens += req.prompt.tokens as u64;
                    0
                }
                Phase::Decode { generated } => generated,
                Phase::Waiting => continue,
            };
            req.phase = Phase::Decode {
                generated: index + 1,
            };
            self.stats.generation_tokens += 1;
            out.push(Emit::Token { id, index });
            if index + 1 == req.max_tokens {
                let usage = Usage {
                    prompt_tokens: req.prompt.tokens,
                    completion_tokens: req.max_tokens,
                    cached_tokens: req.cached_tokens,
                };
                let req = self.reqs.remove(&id).expect("finished request");
                self.running.retain(|r| *r != id);
                self.release(req);
                self.stats.finished += 1;
                out.push(Emit::Done { id, usage });
            }
        }
        out
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            running: self.running.len(),
            waiting: self.waiting.len(),
            kv_usage: (self.pinned_blocks + self.private_blocks) as f64 / self.p.kv_blocks as f64,
            cached_blocks: self.cache.len(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests;
