//! The translators on arbitrary bytes, as a client or an upstream could send them:
//!
//! - byte 0 selects what the rest is: 0 an OpenAI client request, 1 an Anthropic client
//!   request (decoded, then encoded for every upstream wire), 2 an OpenAI upstream stream,
//!   3 an Anthropic upstream stream (decoded in chunks, re-encoded for both client dialects),
//!   4 a whole upstream answer, 5 an upstream error body (for every wire);
//! - for streams, byte 1's low nibble N and the next N bytes are chunk lengths, as in
//!   `sse_relay`.
//!
//! Checks: no panic; a stream decodes to the same events however it is cut; nothing follows
//! an `Error` event; a decoded error keeps its status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::errors::ClientDialect;
use switchyard::translate::{self, ClientOpts, Event, Target, Wire};

const WIRES: [Wire; 3] = [Wire::OpenAiChat, Wire::AnthropicMessages, Wire::BedrockConverse];

fn decode_stream(wire: Wire, chunks: &[&[u8]]) -> (Vec<Event>, bool) {
    let mut d = translate::stream_decoder(wire, 1 << 20);
    let mut events = Vec::new();
    for c in chunks {
        if d.feed(c, &mut events).is_err() {
            return (events, true);
        }
    }
    let failed = d.finish(&mut events).is_err();
    (events, failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 | 1 => {
            let client = if kind % 6 == 0 { ClientDialect::OpenAi } else { ClientDialect::Anthropic };
            if let Ok(req) = translate::decode_request(client, rest) {
                for wire in WIRES {
                    let t = Target { provider: "fuzz", model: "m", default_max_tokens: 16 };
                    let _ = translate::encode_request(wire, &req, &t);
                }
            }
        }
        2 | 3 => {
            let wire = if kind % 6 == 2 { Wire::OpenAiChat } else { Wire::AnthropicMessages };
            let Some((&n, rest)) = rest.split_first() else {
                return;
            };
            let n = (n & 0x0f) as usize;
            if rest.len() < n {
                return;
            }
            let (lens, stream) = rest.split_at(n);
            let mut chunks = Vec::new();
            let mut at = 0;
            for (i, l) in lens.iter().cycle().enumerate() {
                if at >= stream.len() || i > 4096 || n == 0 {
                    break;
                }
                let end = (at + *l as usize).min(stream.len());
                chunks.push(&stream[at..end]);
                at = end;
            }
            if at < stream.len() {
                chunks.push(&stream[at..]);
            }
            let (whole, whole_failed) = decode_stream(wire, &[stream]);
            let (cut, cut_failed) = decode_stream(wire, &chunks);
            if !whole_failed && !cut_failed {
                assert_eq!(whole, cut, "events depend on where the stream is cut");
            }
            if let Some(at) = cut.iter().position(|e| matches!(e, Event::Error(_))) {
                assert_eq!(at + 1, cut.len(), "events after an error");
            }
            for client in [ClientDialect::OpenAi, ClientDialect::Anthropic] {
                let opts = ClientOpts { include_usage: true, ..Default::default() };
                let mut enc = translate::stream_encoder(client, opts);
                let mut out = Vec::new();
                for e in &cut {
                    enc.encode(e, &mut out);
                }
            }
        }
        4 => {
            for wire in WIRES {
                if let Ok(r) = translate::decode_response(wire, rest) {
                    for client in [ClientDialect::OpenAi, ClientDialect::Anthropic] {
                        let _ = translate::encode_response(client, &r, &ClientOpts::default());
                    }
                }
            }
        }
        _ => {
            for wire in WIRES {
                let e = translate::decode_error(wire, 529, Some("ThrottlingException:x"), rest);
                assert_eq!(e.status, 529);
                let _ = e.body(ClientDialect::Anthropic);
            }
        }
    }
});
