//! AWS eventstream bytes (Bedrock ConverseStream) cut into arbitrary chunks, through the
//! frame decoder and through the Bedrock stream decoder:
//!
//! - neither panics, whatever the bytes;
//! - the frames (or the error) do not depend on how the bytes are cut;
//! - the Bedrock decoder's events (and whether it fails) do not depend on the cuts, and
//!   nothing follows an `Error` or `Done` event.
//!
//! Input layout (as in `sse_relay`, so seeds are plain `.bin` streams with a short header):
//! byte 0 low nibble = N, the next N bytes are chunk lengths used in turn (0 = an empty
//! chunk), the rest is the stream. N = 0 feeds the stream as one chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::eventstream::{Frame, FrameDecoder};
use switchyard::translate::bedrock::Decoder;
use switchyard::translate::ir::{Event, StreamDecoder};

/// Small enough that the over-the-limit path is reached, large enough for real events.
const MAX_FRAME: usize = 64 * 1024;

fn chunks<'a>(stream: &'a [u8], cuts: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0;
    let mut next_cut = cuts.iter().cycle();
    std::iter::from_fn(move || {
        if at >= stream.len() {
            return None;
        }
        let len = match next_cut.next() {
            Some(&n) => usize::from(n).min(stream.len() - at),
            None => stream.len() - at,
        };
        let c = &stream[at..at + len];
        at += len;
        Some(c)
    })
}

fn frames(stream: &[u8], cuts: &[u8]) -> (Vec<Frame>, bool) {
    let mut d = FrameDecoder::new(MAX_FRAME);
    let mut out = Vec::new();
    for c in chunks(stream, cuts) {
        d.feed(c);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn events(stream: &[u8], cuts: &[u8]) -> (Vec<Event>, bool) {
    let mut d = Decoder::new(MAX_FRAME);
    let mut out = Vec::new();
    for c in chunks(stream, cuts) {
        if d.feed(c, &mut out).is_err() {
            return (out, true);
        }
    }
    let failed = d.finish(&mut out).is_err();
    (out, failed)
}

fn check_order(evs: &[Event]) {
    if let Some(pos) = evs
        .iter()
        .position(|e| matches!(e, Event::Error(_) | Event::Done))
    {
        assert_eq!(pos + 1, evs.len(), "events after Error/Done: {evs:?}");
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

    let whole = frames(stream, &[]);
    let cut = frames(stream, cuts);
    assert_eq!(whole, cut, "frames depend on the cuts");

    let whole = events(stream, &[]);
    let cut = events(stream, cuts);
    check_order(&whole.0);
    assert_eq!(whole, cut, "Bedrock events depend on the cuts");
});
