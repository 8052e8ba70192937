//! `usage::openai_usage_in` on arbitrary upstream answer bodies:
//!
//! - nothing panics, on the raw bytes or with them as the value of a body's `usage`;
//! - the hand reader agrees with serde: whenever serde reads the value after `"usage":`
//!   as `OpenAiUsage`, `openai_usage_in` returns exactly that usage (the hand reader may
//!   step aside to serde, but never answers differently).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::usage::{openai_usage_in, OpenAiUsage, Usage};

const PREFIX: &[u8] = br#"{"id":"x","usage":"#;

fn serde_reads(value: &[u8]) -> Option<Usage> {
    serde_json::Deserializer::from_slice(value)
        .into_iter::<OpenAiUsage>()
        .next()
        .and_then(Result::ok)
        .map(Into::into)
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
        .count();
    &b[n..]
}

fuzz_target!(|data: &[u8]| {
    let _ = openai_usage_in(data);

    // `data` as the usage object of a body. The body's closing brace may complete it.
    let mut body = PREFIX.to_vec();
    body.extend_from_slice(data);
    body.push(b'}');
    let read = openai_usage_in(&body);

    // The reader only looks at the last `"usage"` and only at an object: compare where
    // that is this one.
    let value = &body[PREFIX.len()..];
    let is_last = !data.windows(7).any(|w| w == b"\"usage\"");
    if is_last && skip_ws(value).first() == Some(&b'{') {
        if let Some(by_serde) = serde_reads(value) {
            assert_eq!(read, Some(by_serde), "hand reader and serde disagree");
        }
    }
});
