//! `RequestHead::scan` on arbitrary client bytes, and when it succeeds the rewrites the
//! proxy makes (`set_model`, `force_include_usage`, `splice`):
//!
//! - nothing panics;
//! - the spliced body is valid JSON whenever the input was;
//! - rescanning the spliced body finds the new model, `include_usage` set on a stream,
//!   and every other field the head reads unchanged;
//! - a model rewrite alone leaves every byte outside the model's span as the client sent it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchyard::body::{force_include_usage, set_model, splice, RequestHead};

/// Names a route may rewrite to, including ones that need escaping in JSON.
const MODELS: &[&str] = &[
    "gpt-4o-mini",
    "meta-llama/Llama-3.1-8B-Instruct",
    "",
    "quote \" and back\\slash",
    "ünïcødé \u{2028} 🦀",
    "ctrl \u{1} \u{1f} tab\t",
];

fn valid_json(b: &[u8]) -> bool {
    serde_json::from_slice::<&RawValue>(b).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(head) = RequestHead::scan(data) else {
        return;
    };
    // The scan succeeded, so the body is one JSON object ending at `object_end`.
    assert_eq!(data.get(head.object_end), Some(&b'}'), "object_end");
    let input_valid = valid_json(data);
    let body = Bytes::copy_from_slice(data);
    let model = MODELS[data.len() % MODELS.len()];

    // The model rewrite alone: only the span changes.
    if let Some(edit) = set_model(&head, model) {
        let span = edit.range.clone();
        let out = splice(&body, vec![edit]);
        assert_eq!(
            &out[..span.start],
            &body[..span.start],
            "bytes before the model"
        );
        assert_eq!(
            &out[out.len() - (body.len() - span.end)..],
            &body[span.end..],
            "bytes after the model"
        );
        let again = RequestHead::scan(&out).expect("rescan after set_model");
        assert_eq!(again.model.as_deref(), Some(model));
    }

    // Both rewrites together, as the proxy makes them for a stream.
    let mut edits = Vec::new();
    edits.extend(set_model(&head, model));
    edits.extend(force_include_usage(&body, &head));
    let out = splice(&body, edits);
    if input_valid {
        assert!(valid_json(&out), "spliced body is not valid JSON");
    }
    let again = match RequestHead::scan(&out) {
        Ok(h) => h,
        Err(e) => panic!("rescan of the spliced body failed: {e:?}"),
    };
    if head.model_span.is_some() {
        assert_eq!(again.model.as_deref(), Some(model), "new model");
    } else {
        assert_eq!(again.model, None);
    }
    assert_eq!(again.stream, head.stream, "stream");
    if head.stream {
        assert!(again.include_usage, "include_usage on a stream");
    } else {
        assert_eq!(again.include_usage, head.include_usage);
    }
    assert_eq!(again.messages_kind, head.messages_kind, "messages");
    assert_eq!(again.max_tokens, head.max_tokens, "max_tokens");
});
