//! `config::load_str` (what `switchyard check` and SIGHUP reloads run) on arbitrary text:
//!
//! - nothing panics;
//! - every diagnostic names a line of the text: 1-based, at most one past the last line
//!   break (where an unterminated construct ends), and carries a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config::load_str;

/// A fixed environment, so a finding replays: ports and directories as the sample configs
/// expect, names starting with `UNSET` unset, every other name a plain secret.
fn env(name: &str) -> Option<String> {
    if name.starts_with("UNSET") {
        None
    } else if name.ends_with("PORT") || name.ends_with("MOCK") {
        Some("18080".into())
    } else if name.ends_with("OUT") || name.ends_with("DIR") {
        Some("/tmp/switchyard-fuzz".into())
    } else {
        Some("sk-fuzz-0123456789".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Err(diagnostics) = load_str("fuzz.yaml", &text, &env) else {
        return;
    };
    assert!(!diagnostics.is_empty(), "an error without a diagnostic");
    // Lines as YAML counts them (a lone CR breaks a line too, CR LF is one break), which is
    // how the loader numbers them and how an editor shows a CR-only file.
    let lines = text.replace("\r\n", "\n").replace('\r', "\n").split('\n').count();
    for d in &diagnostics {
        assert!(
            (1..=lines).contains(&d.line),
            "diagnostic on line {} of a {lines}-line text: {d}",
            d.line
        );
        assert!(!d.message.is_empty(), "empty message on line {}", d.line);
    }
});
