//! `SseRelay` on an arbitrary upstream stream cut into arbitrary chunks, in both modes:
//!
//! - pass-through (`new(false)`): what goes downstream is the stream, byte for byte (whole
//!   events as they complete, the unfinished rest at the end);
//! - filtering (`new(true)`): what goes downstream is never longer than what came in;
//! - both modes read the same usage, counts and flags however the stream is cut, and
//!   filtering forwards the same bytes as when the whole stream comes as one chunk.
//!
//! Input layout (so seeds are plain SSE with a short header): byte 0 low nibble = N, the
//! next N bytes are chunk lengths used in turn (0 = an empty chunk), the rest is the
//! stream. N = 0 feeds the stream as one chunk.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::sse::SseRelay;

/// The one call into the relay's API, kept here so an API change is a one-line edit.
/// `Err` means the relay gave up on the stream (the proxy aborts it).
fn feed(relay: &mut SseRelay, chunk: &Bytes) -> Result<Option<Bytes>, String> {
    relay.feed(chunk).map_err(|e| e.to_string())
}

/// What the relay learned from a stream, compared across different cuts.
#[derive(Debug, PartialEq)]
struct Seen {
    usage: Option<switchyard::usage::Usage>,
    content_events: u64,
    saw_error: bool,
    saw_done: bool,
}

struct Run {
    out: Vec<u8>,
    /// Bytes fed before the relay stopped (all of them when it never failed).
    fed: usize,
    failed: bool,
    seen: Seen,
}

fn relay(strip: bool, stream: &[u8], cuts: &[u8]) -> Run {
    let mut r = SseRelay::new(strip);
    let mut out = Vec::new();
    let mut fed = 0;
    let mut failed = false;
    let mut next_cut = cuts.iter().cycle();
    while fed < stream.len() {
        let len = match next_cut.next() {
            Some(&n) => usize::from(n).min(stream.len() - fed),
            None => stream.len() - fed,
        };
        let chunk = Bytes::copy_from_slice(&stream[fed..fed + len]);
        fed += len;
        match feed(&mut r, &chunk) {
            Ok(None) => out.extend_from_slice(&chunk),
            Ok(Some(b)) => out.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        // The stream ended: the unfinished event, if any, goes out as it is.
        if let Some(rest) = r.finish() {
            out.extend_from_slice(&rest);
        }
    }
    let seen = Seen {
        usage: r.usage,
        content_events: r.content_events,
        saw_error: r.saw_error,
        saw_done: r.saw_done,
    };
    Run {
        out,
        fed,
        failed,
        seen,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(head & 0x0f).min(rest.len());
    let (cuts, stream) = rest.split_at(n);
    // Only empty chunks would never finish the stream.
    let cuts = if cuts.iter().all(|&c| c == 0) {
        &[][..]
    } else {
        cuts
    };

    let pass = relay(false, stream, cuts);
    if pass.failed {
        assert!(
            stream[..pass.fed].starts_with(&pass.out),
            "pass-through changed bytes"
        );
    } else {
        assert!(
            pass.out == stream,
            "pass-through output differs from its input"
        );
    }

    let filt = relay(true, stream, cuts);
    assert!(
        filt.out.len() <= filt.fed,
        "filtering output longer than its input"
    );
    if !pass.failed && !filt.failed {
        assert_eq!(
            pass.seen, filt.seen,
            "the modes read the stream differently"
        );
    }

    if cuts.is_empty() || pass.failed || filt.failed {
        return;
    }
    let pass_whole = relay(false, stream, &[]);
    let filt_whole = relay(true, stream, &[]);
    if pass_whole.failed || filt_whole.failed {
        return;
    }
    assert_eq!(
        pass.seen, pass_whole.seen,
        "pass-through depends on the cuts"
    );
    assert_eq!(filt.seen, filt_whole.seen, "filtering depends on the cuts");
    assert!(
        filt.out == filt_whole.out,
        "filtered bytes depend on the cuts"
    );
});
