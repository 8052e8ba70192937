//! One JSON object per request, to stderr or a file (contract §9, §12).
//! Names the key by its configured name, never the secret.
//!
//! Lines are written by a dedicated thread, never on the proxy's event loop: a file write can
//! stall for tens of milliseconds (page-cache writeback), and on a worker thread that stalls
//! every connection it serves. The request path only moves what it already holds into a
//! `Record` and pushes it onto a bounded queue. The writer wakes every 100 ms, formats
//! what is queued and writes it at once. When the queue is full (the disk cannot keep up)
//! records are dropped and counted in
//! `switchyard_access_log_dropped_total` rather than blocking the proxy.
//!
//! `init` opens the file (so a bad path fails the start) but does not start the writer:
//! `--daemon` forks after `init`, and a thread started before the fork does not exist in the
//! daemon (every line was lost). The writer starts in the serving process, from the
//! lifecycle service or the first `write`, whichever comes first.

use crate::usage::Usage;
use once_cell::sync::{Lazy, OnceCell};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records that may wait for the writer (a pointer each in the queue, about 250 bytes behind it).
const QUEUE: usize = 65_536;
/// The writer flushes at least this often while lines keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

static SENDER: OnceCell<SyncSender<Box<Record>>> = OnceCell::new();
/// The writer's half (queue end and sink), waiting for `start_writer`.
type WriterHalf = (Receiver<Box<Record>>, Box<dyn Write + Send>);
static PENDING: Mutex<Option<WriterHalf>> = Mutex::new(None);
/// Set once the writer thread runs (or could not be started); checked on every `write`.
static STARTED: AtomicBool = AtomicBool::new(false);
/// Serialises `flush` against the writer (tests and shutdown wait on it).
static FLUSHED: Lazy<(Mutex<u64>, std::sync::Condvar)> =
    Lazy::new(|| (Mutex::new(0), std::sync::Condvar::new()));

static DROPPED: Lazy<prometheus::IntCounter> = Lazy::new(|| {
    prometheus::register_int_counter!(
        "switchyard_access_log_dropped_total",
        "Access-log lines dropped because the writer could not keep up"
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

/// Open the sink: `path` (appending) or stderr. First call wins. The writer thread starts
/// with [`start_writer`] or the first [`write`].
pub fn init(path: Option<&std::path::Path>) -> std::io::Result<()> {
    let sink: Box<dyn Write + Send> = match path {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => Box::new(std::io::stderr()),
    };
    Lazy::force(&DROPPED);
    let (tx, rx) = sync_channel::<Box<Record>>(QUEUE);
    if SENDER.set(tx).is_ok() {
        if let Ok(mut p) = PENDING.lock() {
            *p = Some((rx, sink));
        }
    }
    Ok(())
}

/// Start the writer thread, once, in the process that serves (after `--daemon`'s fork).
/// Should the thread not start, lines are dropped and counted, never queued forever.
pub fn start_writer() {
    let Some((rx, sink)) = PENDING.lock().ok().and_then(|mut p| p.take()) else {
        return; // already started, or `init` not called yet
    };
    STARTED.store(true, Ordering::Release);
    if let Err(e) = std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || writer(rx, sink))
    {
        // The receiver went with the failed closure: every `write` now counts a drop.
        log::error!("cannot start the access-log writer ({e}): lines are dropped and counted");
    }
}

/// Wakes on a timer, never per line: a receiver parked in `recv` would make every request's
/// `try_send` a futex wake-up and a context switch (measured: 2 futex + 1 write per request);
/// with the writer asleep, sending is a plain queue push and lines go out in one write per tick.
fn writer(rx: Receiver<Box<Record>>, mut sink: Box<dyn Write + Send>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut format = Formatter::default();
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let mut open = true;
        loop {
            match rx.try_recv() {
                Ok(rec) => format.line(&rec, &mut batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
            if batch.len() >= 256 * 1024 {
                let _ = sink.write_all(&batch);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            let _ = sink.write_all(&batch);
            let _ = sink.flush();
            batch.clear();
        }
        let (lock, cv) = &*FLUSHED;
        if let Ok(mut n) = lock.lock() {
            *n += 1;
            cv.notify_all();
        }
        if !open {
            return;
        }
    }
}

/// Wait until lines written before this call reached the sink (at most `limit`).
pub fn flush(limit: Duration) {
    if !STARTED.load(Ordering::Acquire) {
        return; // nothing was ever written
    }
    let (lock, cv) = &*FLUSHED;
    let Ok(guard) = lock.lock() else { return };
    let start = *guard;
    // Two writer rounds: the one in progress may have missed our lines.
    let _ = cv.wait_timeout_while(guard, limit, |n| *n < start + 2);
}

/// What one request leaves in the access log. Built on the event loop from values the
/// request already owns (moved, not formatted); the writer thread turns it into JSON, so
/// the proxy's worker never formats a timestamp, a float or an escaped string.
#[derive(Debug, Default)]
pub struct Record {
    pub at: Option<SystemTime>,
    pub request_id: String,
    pub key: Option<String>,
    pub method: String,
    pub path: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub endpoint: Option<SocketAddr>,
    /// Why a fleet picked that endpoint (`prefix_hit`, `spill`, ...); `None` outside fleets.
    pub pick: Option<&'static str>,
    pub status: u16,
    pub attempts: u32,
    pub ttft: Option<Duration>,
    pub duration: Duration,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
}

/// Queue one record; never blocks.
pub fn write(rec: Record) {
    match SENDER.get() {
        Some(tx) => {
            if !STARTED.load(Ordering::Relaxed) {
                start_writer();
            }
            match tx.try_send(Box::new(rec)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => DROPPED.inc(),
            }
        }
        // Not initialised (unit tests, tools): write directly.
        None => {
            let mut line = Vec::with_capacity(384);
            Formatter::default().line(&rec, &mut line);
            let _ = std::io::stderr().write_all(&line);
        }
    }
}

/// Turns records into JSON lines. Keeps the formatted date-and-time of the last whole
/// second, since consecutive lines almost always share it.
#[derive(Default)]
pub struct Formatter {
    second: u64,
    stamp: [u8; 19],
}

impl Formatter {
    /// One JSON object and a line feed, fields in a fixed order.
    pub fn line(&mut self, r: &Record, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":\"");
        self.timestamp(r.at.unwrap_or_else(SystemTime::now), out);
        out.extend_from_slice(b"\",\"request_id\":");
        json_str(out, &r.request_id);
        out.extend_from_slice(b",\"key\":");
        opt_str(out, r.key.as_deref());
        out.extend_from_slice(b",\"method\":");
        json_str(out, &r.method);
        out.extend_from_slice(b",\"path\":");
        json_str(out, &r.path);
        out.extend_from_slice(b",\"model\":");
        opt_str(out, r.model.as_deref());
        out.extend_from_slice(b",\"provider\":");
        opt_str(out, r.provider.as_deref());
        out.extend_from_slice(b",\"endpoint\":");
        match r.endpoint {
            Some(a) => {
                out.push(b'"');
                socket_addr(out, a);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"pick\":");
        opt_str(out, r.pick);
        out.extend_from_slice(b",\"status\":");
        uint(out, r.status as u64);
        out.extend_from_slice(b",\"attempts\":");
        uint(out, r.attempts as u64);
        out.extend_from_slice(b",\"ttft_ms\":");
        match r.ttft {
            Some(d) => millis(out, d),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"duration_ms\":");
        millis(out, r.duration);
        let u = r.usage;
        for (name, v) in [
            ("input_tokens", u.map(|u| u.input)),
            ("output_tokens", u.map(|u| u.output)),
            ("cached_input_tokens", u.map(|u| u.cached_input)),
            ("reasoning_tokens", u.map(|u| u.reasoning)),
            ("total_tokens", u.map(|u| u.total)),
        ] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            match v {
                Some(n) => uint(out, n),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"usage_estimated\":");
        out.extend_from_slice(if u.is_some_and(|u| u.estimated) {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"cost_usd\":");
        match r.cost_usd.filter(|c| c.is_finite()) {
            Some(c) => {
                let _ = write!(out, "{c}");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"error\":");
        opt_str(out, r.error.as_deref());
        out.extend_from_slice(b"}\n");
    }

    /// RFC 3339 UTC with milliseconds: `2026-11-21T12:42:00.123Z`.
    fn timestamp(&mut self, at: SystemTime, out: &mut Vec<u8>) {
        let now = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = now.as_secs();
        if secs != self.second || self.stamp[0] == 0 {
            self.second = secs;
            self.stamp = civil_second(secs);
        }
        out.extend_from_slice(&self.stamp);
        out.push(b'.');
        let ms = now.subsec_millis();
        out.extend_from_slice(&[
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second, without a date crate (Howard Hinnant's
/// civil-from-days).
fn civil_second(secs: u64) -> [u8; 19] {
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let mut s = [0u8; 19];
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            s[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, rem / 3600, 2);
    put(14, rem % 3600 / 60, 2);
    put(17, rem % 60, 2);
    s[4] = b'-';
    s[7] = b'-';
    s[10] = b'T';
    s[13] = b':';
    s[16] = b':';
    s
}

/// `1.2.3.4:80` by hand (the `Display` impl costs several times this); IPv6 through `Display`.
fn socket_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                uint(out, octet as u64);
            }
            out.push(b':');
            uint(out, v4.port() as u64);
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn uint(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Milliseconds with three decimals (microsecond resolution), e.g. `12.345`.
fn millis(out: &mut Vec<u8>, d: Duration) {
    let us = d.as_micros() as u64;
    uint(out, us / 1000);
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: quotes, backslashes and control bytes escaped; other UTF-8 as it is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape_and_value() {
        let mut f = Formatter::default();
        let mut out = Vec::new();
        // 2026-11-21T12:42:07.089Z
        let at = UNIX_EPOCH + Duration::from_millis(1_795_264_927_089);
        f.timestamp(at, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "2026-11-21T12:42:07.089Z"
        );
        out.clear();
        // The cached second is replaced when the second changes, even across a day.
        f.timestamp(
            UNIX_EPOCH + Duration::from_millis(951_782_400_000),
            &mut out,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn a_line_is_json_with_every_field() {
        let rec = Record {
            request_id: "req_1".into(),
            key: Some("team \"a\"\n".into()),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: Some("gpt-4o-mini".into()),
            provider: Some("fleet".into()),
            endpoint: Some("127.0.0.1:8000".parse().unwrap()),
            pick: Some("prefix_hit"),
            status: 200,
            attempts: 2,
            ttft: Some(Duration::from_micros(1_234_567)),
            duration: Duration::from_micros(2_000_001),
            usage: Some(Usage {
                input: 12,
                output: 3,
                total: 15,
                cached_input: 4,
                ..Default::default()
            }),
            error: Some("\u{1}ctl ünï".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        Formatter::default().line(&rec, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["key"], "team \"a\"\n");
        assert_eq!(v["endpoint"], "127.0.0.1:8000");
        assert_eq!(v["status"], 200);
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["ttft_ms"].as_f64(), Some(1234.567));
        assert_eq!(v["duration_ms"].as_f64(), Some(2000.001));
        assert_eq!(v["input_tokens"], 12);
        assert_eq!(v["cached_input_tokens"], 4);
        assert_eq!(v["total_tokens"], 15);
        assert_eq!(v["usage_estimated"], false);
        assert_eq!(v["cost_usd"], serde_json::Value::Null);
        assert_eq!(v["error"], "\u{1}ctl ünï");
        assert_eq!(v["pick"], "prefix_hit");
        assert_eq!(v.as_object().unwrap().len(), 21);
    }

    #[test]
    fn socket_addresses_print_as_display_does() {
        for a in [
            "127.0.0.1:8000",
            "10.0.255.9:1",
            "[::1]:443",
            "[fe80::1]:8080",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let mut out = Vec::new();
            socket_addr(&mut out, a);
            assert_eq!(String::from_utf8(out).unwrap(), a.to_string());
        }
    }

    #[test]
    fn records_reach_the_file_through_the_writer_thread() {
        let path = std::env::temp_dir().join(format!("sy-access-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        init(Some(&path)).unwrap();
        for i in 0..100 {
            write(Record {
                request_id: format!("r{i}"),
                status: 200,
                ..Default::default()
            });
        }
        flush(Duration::from_secs(2));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 100);
        for (i, l) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["request_id"], format!("r{i}"));
        }
        let _ = std::fs::remove_file(&path);
    }
}
