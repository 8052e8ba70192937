//! The three workloads of the fleet benchmark. Sizes are in tokens (4 bytes each).
//!
//! - `shared`: agent sessions. `SYSTEM_PROMPTS` long system prompts; each session picks one, opens
//!   with a task, then each turn appends the model's reply (as received) and a tool result, so
//!   every turn's prompt extends the previous turn's prompt of the same session. `sessions` slots
//!   run concurrently; after an answer a session runs its tool for a while (`think`) before it
//!   can send again. An arrival takes the next turn of a random ready session (an agent cannot
//!   send turn k+1 before turn k's answer and its tool run), starting a new session in that slot
//!   when the old one has had its turns. When no session is ready, the arrival goes to the one
//!   that will be ready first, and is sent then; when all are waiting for answers, it is deferred
//!   to the first answer (plus its tool run). Both count as late sends in the results.
//! - `noreuse`: every prompt unique from its first byte (no block can hit), sizes like `shared`'s.
//! - `hot`: 90 % of requests are one hot system prompt + a unique question; 10 % are short
//!   unique chats (the same question sizes under a one-line unique system prompt), so TTFT
//!   percentiles measure load, not the mix.

use crate::rng::{text, Rng};

pub const SYSTEM_PROMPTS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Shared,
    NoReuse,
    Hot,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "shared" => Ok(Kind::Shared),
            "noreuse" => Ok(Kind::NoReuse),
            "hot" => Ok(Kind::Hot),
            _ => Err(format!("unknown workload `{s}`: shared, noreuse or hot")),
        }
    }
}

/// Token ranges (inclusive) of the parts of the workloads.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub system: (usize, usize),
    pub first_user: (usize, usize),
    pub tool_result: (usize, usize),
    pub turns: (usize, usize),
    pub max_tokens: (usize, usize),
    /// Milliseconds a session's tool runs between an answer and its next turn.
    pub think_ms: (usize, usize),
    /// `noreuse`: the whole prompt.
    pub unique_prompt: (usize, usize),
    /// `hot`: the hot system prompt and the unique question after it.
    pub hot_system: usize,
    pub hot_question: (usize, usize),
    pub hot_share: f64,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            system: (2000, 3000),
            first_user: (100, 400),
            tool_result: (400, 1500),
            turns: (6, 16),
            max_tokens: (32, 128),
            think_ms: (200, 1000),
            unique_prompt: (3000, 12000),
            hot_system: 3000,
            hot_question: (100, 500),
            hot_share: 0.9,
        }
    }
}

/// One request to send.
#[derive(Clone, Debug)]
pub struct Job {
    /// The session slot (`shared`), to report the answer back to.
    pub slot: Option<usize>,
    pub session_id: String,
    /// The `messages` array, as JSON.
    pub messages: String,
    pub max_tokens: usize,
    pub turn: usize,
}

struct Session {
    id: String,
    messages: Vec<(&'static str, String)>,
    turn: usize,
    turns: usize,
}

struct Slot {
    session: Option<Session>,
    /// Waiting for an answer (or reserved for a send at `ready_at`).
    busy: bool,
    /// When its tool run ends (seconds since the start).
    ready_at: f64,
}

pub struct Workload {
    kind: Kind,
    sizes: Sizes,
    rng: Rng,
    systems: Vec<String>,
    hot: String,
    slots: Vec<Slot>,
    deferred: usize,
    pub deferred_total: usize,
    pub sessions_started: usize,
    next_id: u64,
}

pub fn json_escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn messages_json(messages: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(messages.iter().map(|(_, c)| c.len() + 32).sum());
    out.push('[');
    for (i, (role, content)) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"role\":\"");
        out.push_str(role);
        out.push_str("\",\"content\":");
        json_escape(content, &mut out);
        out.push('}');
    }
    out.push(']');
    out
}

impl Workload {
    pub fn new(kind: Kind, sizes: Sizes, sessions: usize, seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        // The shared prompts depend on the seed only, so every case of a run sees the same ones.
        let systems = (0..SYSTEM_PROMPTS)
            .map(|i| {
                let n = rng.range(sizes.system.0, sizes.system.1);
                format!("You are agent persona {i}.\n{}", text(&mut rng, n * 4))
            })
            .collect();
        let hot = format!(
            "You are the hot assistant.\n{}",
            text(&mut rng, sizes.hot_system * 4)
        );
        Workload {
            kind,
            sizes,
            rng,
            systems,
            hot,
            slots: (0..sessions.max(1))
                .map(|_| Slot {
                    session: None,
                    busy: false,
                    ready_at: 0.0,
                })
                .collect(),
            deferred: 0,
            deferred_total: 0,
            sessions_started: 0,
            next_id: 0,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!(
            "{prefix}-{:08x}-{}",
            self.rng.next_u64() as u32,
            self.next_id
        )
    }

    fn max_tokens(&mut self) -> usize {
        self.rng
            .range(self.sizes.max_tokens.0, self.sizes.max_tokens.1)
    }

    /// A request arrives at `now` (seconds since the start): the job and how many seconds
    /// from now to send it, or `None` when it is deferred to the next answer.
    pub fn arrival(&mut self, now: f64) -> Option<(Job, f64)> {
        match self.kind {
            Kind::Shared => {
                let ready: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| !self.slots[i].busy && self.slots[i].ready_at <= now)
                    .collect();
                if !ready.is_empty() {
                    let slot = ready[(self.rng.next_u64() % ready.len() as u64) as usize];
                    return Some((self.next_turn(slot), 0.0));
                }
                let soonest = (0..self.slots.len())
                    .filter(|&i| !self.slots[i].busy)
                    .min_by(|&a, &b| self.slots[a].ready_at.total_cmp(&self.slots[b].ready_at));
                match soonest {
                    Some(slot) => {
                        let delay = self.slots[slot].ready_at - now;
                        Some((self.next_turn(slot), delay))
                    }
                    None => {
                        self.deferred += 1;
                        self.deferred_total += 1;
                        None
                    }
                }
            }
            Kind::NoReuse => {
                let id = self.id("req");
                let n = self
                    .rng
                    .range(self.sizes.unique_prompt.0, self.sizes.unique_prompt.1);
                let q = self
                    .rng
                    .range(self.sizes.first_user.0, self.sizes.first_user.1)
                    .min(n / 2);
                // The unique id leads the prompt: not even the first block can hit.
                let system = format!("{id}\n{}", text(&mut self.rng, (n - q) * 4));
                let user = text(&mut self.rng, q * 4);
                let max_tokens = self.max_tokens();
                Some((
                    Job {
                        slot: None,
                        messages: messages_json(&[("system", system), ("user", user)]),
                        session_id: id,
                        max_tokens,
                        turn: 0,
                    },
                    0.0,
                ))
            }
            Kind::Hot => {
                let id = self.id("req");
                let q = self
                    .rng
                    .range(self.sizes.hot_question.0, self.sizes.hot_question.1);
                // The rest is other traffic: short unique chats (a unique system line).
                let system = if self.rng.unit() < self.sizes.hot_share {
                    self.hot.clone()
                } else {
                    format!("{id}: you are a helpful assistant.")
                };
                let user = format!("{id}: {}", text(&mut self.rng, q * 4));
                let max_tokens = self.max_tokens();
                Some((
                    Job {
                        slot: None,
                        messages: messages_json(&[("system", system), ("user", user)]),
                        session_id: id,
                        max_tokens,
                        turn: 0,
                    },
                    0.0,
                ))
            }
        }
    }

    fn next_turn(&mut self, slot: usize) -> Job {
        let fresh = match &self.slots[slot].session {
            None => true,
            Some(s) => s.turn >= s.turns,
        };
        if fresh {
            let id = self.id("sess");
            let sys = self.systems[(self.rng.next_u64() % SYSTEM_PROMPTS as u64) as usize].clone();
            let n = self
                .rng
                .range(self.sizes.first_user.0, self.sizes.first_user.1);
            let task = format!("Task {id}: {}", text(&mut self.rng, n * 4));
            let turns = self.rng.range(self.sizes.turns.0, self.sizes.turns.1);
            self.slots[slot].session = Some(Session {
                id,
                messages: vec![("system", sys), ("user", task)],
                turn: 0,
                turns,
            });
            self.sessions_started += 1;
        } else {
            let n = self
                .rng
                .range(self.sizes.tool_result.0, self.sizes.tool_result.1);
            let result = format!("Tool result:\n{}", text(&mut self.rng, n * 4));
            let s = self.slots[slot].session.as_mut().expect("a session");
            s.messages.push(("user", result));
        }
        let max_tokens = self.max_tokens();
        self.slots[slot].busy = true;
        let s = self.slots[slot].session.as_mut().expect("a session");
        s.turn += 1;
        Job {
            slot: Some(slot),
            session_id: s.id.clone(),
            messages: messages_json(&s.messages),
            max_tokens,
            turn: s.turn,
        }
    }

    /// A job finished at `now`; `reply` is the answer's text (`None`: it failed, the session
    /// ends). Returns a deferred arrival and in how many seconds to send it (after the tool run).
    pub fn complete(&mut self, job: &Job, reply: Option<String>, now: f64) -> Option<(Job, f64)> {
        let slot = job.slot?;
        let think = self.rng.range(self.sizes.think_ms.0, self.sizes.think_ms.1) as f64 / 1000.0;
        self.slots[slot].busy = false;
        self.slots[slot].ready_at = now + think;
        match reply {
            Some(r) => {
                if let Some(s) = self.slots[slot].session.as_mut() {
                    s.messages.push(("assistant", r));
                }
            }
            None => self.slots[slot].session = None,
        }
        if self.deferred > 0 {
            self.deferred -= 1;
            return Some((self.next_turn(slot), think));
        }
        None
    }

    /// Arrivals still deferred (never sent) at the end.
    pub fn deferred_now(&self) -> usize {
        self.deferred
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn render(job: &Job) -> Vec<u8> {
        let body: Value =
            serde_json::from_str(&format!("{{\"messages\":{}}}", job.messages)).unwrap();
        crate::prompt::render(&body).unwrap()
    }

    #[test]
    fn a_sessions_turns_extend_each_other() {
        let mut w = Workload::new(Kind::Shared, Sizes::default(), 1, 3);
        let (a, delay) = w.arrival(0.0).unwrap();
        assert_eq!(delay, 0.0);
        assert!(
            w.arrival(0.1).is_none(),
            "the only session is busy: deferred"
        );
        let (b, think) = w
            .complete(&a, Some("the and for ".into()), 1.0)
            .expect("the deferred turn");
        assert!(
            (0.2..=1.0).contains(&think),
            "sent after the tool run: {think}"
        );
        assert_eq!(
            (a.session_id.as_str(), a.turn, b.turn),
            (b.session_id.as_str(), 1, 2)
        );
        let (pa, pb) = (render(&a), render(&b));
        assert!(pb.starts_with(&pa));
        let tokens = pa.len() / 4;
        assert!((2000..3600).contains(&tokens), "{tokens}");
        assert!(pb.len() - pa.len() >= 4 * 200);
        // A failed turn ends the session; the slot starts another, once its tool run is over.
        assert!(w.complete(&b, None, 10.0).is_none());
        let (c, delay) = w.arrival(10.1).unwrap();
        assert!((0.1..=0.9).contains(&delay), "{delay}");
        assert_ne!(c.session_id, a.session_id);
        assert_eq!(c.turn, 1);
        assert!(w.complete(&c, Some(String::new()), 20.0).is_none());
        assert_eq!(w.arrival(30.0).unwrap().1, 0.0, "ready: sent at once");
    }

    #[test]
    fn noreuse_prompts_differ_in_their_first_block_and_hot_ones_share_a_prefix() {
        let mut w = Workload::new(Kind::NoReuse, Sizes::default(), 1, 3);
        let (a, b) = (
            render(&w.arrival(0.0).unwrap().0),
            render(&w.arrival(0.0).unwrap().0),
        );
        assert_ne!(a[..64], b[..64]);
        let mut w = Workload::new(Kind::Hot, Sizes::default(), 1, 3);
        let prompts: Vec<Vec<u8>> = (0..200)
            .map(|_| render(&w.arrival(0.0).unwrap().0))
            .collect();
        let hot = prompts
            .iter()
            .filter(|p| p.starts_with(b"<|system|>\nYou are the hot assistant.\n"))
            .count();
        assert!((160..200).contains(&hot), "{hot}");
    }

    #[test]
    fn messages_are_valid_json() {
        let mut s = String::new();
        json_escape("a\"b\\c\nd\u{1}", &mut s);
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\"b\\c\nd\u{1}"
        );
    }
}
