//! One JSON object per request, to stderr or a file (contract §9, §12).
//! Names the key by its configured name, never the secret.

use once_cell::sync::OnceCell;
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

static SINK: OnceCell<Mutex<Box<dyn Write + Send>>> = OnceCell::new();

/// Send the access log to `path` (appending) instead of stderr. First call wins.
pub fn init(path: Option<&std::path::Path>) -> std::io::Result<()> {
    let w: Box<dyn Write + Send> = match path {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let _ = SINK.set(Mutex::new(w));
    Ok(())
}

#[derive(Serialize, Default)]
pub struct AccessLine<'a> {
    pub ts: String,
    pub request_id: &'a str,
    pub key: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub model: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub endpoint: Option<String>,
    pub status: u16,
    pub attempts: u32,
    pub ttft_ms: Option<f64>,
    pub duration_ms: f64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub usage_estimated: bool,
    pub cost_usd: Option<f64>,
    pub error: Option<&'a str>,
}

pub fn write(line: &AccessLine) {
    let Ok(mut json) = serde_json::to_vec(line) else {
        return;
    };
    json.push(b'\n');
    match SINK.get() {
        Some(m) => {
            if let Ok(mut w) = m.lock() {
                let _ = w.write_all(&json);
            }
        }
        None => {
            let _ = std::io::stderr().write_all(&json);
        }
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without a date crate.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
