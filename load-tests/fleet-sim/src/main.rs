//! `fleet-sim`: a simulated vLLM fleet and a load generator for switchyard's fleet routing
//! benchmark (`load-tests/fleet.sh`). See README.md next to this crate.
//!
//!   fleet-sim serve --replicas 8 --base-port 18100 [--kv-tokens N ...]
//!   fleet-sim load --url http://127.0.0.1:8080 --workload shared --rate 18 --duration 40 \
//!       --key sk-bench --model sim-model --out result.json

mod engine;
mod http;
mod load;
mod prompt;
mod rng;
mod server;
mod workload;

use std::collections::HashMap;
use std::time::Duration;

const USAGE: &str = "usage:
  fleet-sim serve --base-port P [--replicas 8] [--host 127.0.0.1] [--model sim-model]
      [--kv-tokens 65536] [--max-num-seqs 256] [--max-batched-tokens 2048] [--max-waiting 256]
      [--max-model-len 32768] [--prefill-us-per-token 100] [--step-base-ms 15]
      [--step-per-seq-ms 0.5] [--default-max-tokens 128] [--max-body 16MiB]
      [--duration-limit 30m]
  fleet-sim load --url http://HOST:PORT[,http://...] --workload shared|noreuse|hot --rate R
      --duration S [--key sk-bench] [--model sim-model] [--out FILE.json] [--seed 1]
      [--requests FILE.jsonl] [--label TEXT] [--arrivals poisson|fixed] [--timeout 60s]
      [--drain TIMEOUT+5s] [--warmup 0s] [--sessions 48]
      [--pick round_robin|session|prefix|least|sticky] [--sticky-slack 3]
      [--system LO-HI] [--first-user LO-HI] [--tool-result LO-HI] [--turns LO-HI]
      [--think-ms LO-HI] [--max-tokens LO-HI] [--unique-prompt LO-HI] [--hot-system N]
      [--hot-question LO-HI] [--hot-share 0.9]";

struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String], known: &[&str]) -> Result<Args, String> {
        let mut m = HashMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{a}`"))?;
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
                    (key.to_string(), v.clone())
                }
            };
            if !known.contains(&key.as_str()) {
                return Err(format!("unknown option --{key}"));
            }
            m.insert(key, value);
        }
        Ok(Args(m))
    }

    fn str(&self, k: &str, default: &str) -> String {
        self.0
            .get(k)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k}: `{v}` is not a number")),
        }
    }

    fn dur(&self, k: &str, default: Duration) -> Result<Duration, String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => parse_duration(v).ok_or_else(|| format!("--{k}: `{v}` is not a duration")),
        }
    }

    fn range(&self, k: &str, default: (usize, usize)) -> Result<(usize, usize), String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => {
                let bad = || format!("--{k}: `{v}` is not LO-HI");
                let (lo, hi) = v.split_once('-').unwrap_or((v, v));
                let (lo, hi) = (
                    lo.parse().map_err(|_| bad())?,
                    hi.parse().map_err(|_| bad())?,
                );
                if lo > hi {
                    return Err(bad());
                }
                Ok((lo, hi))
            }
        }
    }
}

/// `90`, `90s`, `500ms`, `5m`, `1h`.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.parse::<usize>().ok().map(|n| n * mul)
}

fn serve_opts(a: &Args) -> Result<server::ServeOpts, String> {
    let d = engine::Params::default();
    let kv_tokens: usize = a.num("kv-tokens", d.kv_blocks * prompt::BLOCK_TOKENS)?;
    let params = engine::Params {
        kv_blocks: kv_tokens / prompt::BLOCK_TOKENS,
        max_num_seqs: a.num("max-num-seqs", d.max_num_seqs)?,
        max_batched_tokens: a.num("max-batched-tokens", d.max_batched_tokens)?,
        max_waiting: a.num("max-waiting", d.max_waiting)?,
        max_model_len: a.num("max-model-len", d.max_model_len)?,
        prefill_us_per_token: a.num("prefill-us-per-token", d.prefill_us_per_token)?,
        step_base_us: a.num("step-base-ms", d.step_base_us / 1000.0)? * 1000.0,
        step_us_per_seq: a.num("step-per-seq-ms", d.step_us_per_seq / 1000.0)? * 1000.0,
    };
    if params.kv_blocks == 0 || params.max_num_seqs == 0 || params.max_batched_tokens == 0 {
        return Err(
            "--kv-tokens (>= 16), --max-num-seqs and --max-batched-tokens must be positive".into(),
        );
    }
    let base_port: u16 = a.num("base-port", 0)?;
    if base_port == 0 {
        return Err("give --base-port".into());
    }
    let max_body = a.str("max-body", "16MiB");
    Ok(server::ServeOpts {
        replicas: a.num("replicas", 8)?,
        host: a.str("host", "127.0.0.1"),
        base_port,
        model: a.str("model", "sim-model"),
        params,
        default_max_tokens: a.num("default-max-tokens", 128)?,
        max_body: parse_size(&max_body).ok_or("--max-body: a size like 16MiB")?,
        max_conns: 4096,
        duration_limit: a.dur("duration-limit", Duration::from_secs(1800))?,
    })
}

fn load_opts(a: &Args) -> Result<load::LoadOpts, String> {
    let d = workload::Sizes::default();
    let sizes = workload::Sizes {
        system: a.range("system", d.system)?,
        first_user: a.range("first-user", d.first_user)?,
        tool_result: a.range("tool-result", d.tool_result)?,
        turns: a.range("turns", d.turns)?,
        max_tokens: a.range("max-tokens", d.max_tokens)?,
        think_ms: a.range("think-ms", d.think_ms)?,
        unique_prompt: a.range("unique-prompt", d.unique_prompt)?,
        hot_system: a.num("hot-system", d.hot_system)?,
        hot_question: a.range("hot-question", d.hot_question)?,
        hot_share: a.num("hot-share", d.hot_share)?,
    };
    if sizes.max_tokens.0 == 0 || sizes.turns.0 == 0 {
        return Err("--max-tokens and --turns start at 1".into());
    }
    let workload = a.str("workload", "");
    let rate: f64 = a.num("rate", 0.0)?;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err("give --rate > 0".into());
    }
    let timeout = a.dur("timeout", Duration::from_secs(60))?;
    let duration = a.dur("duration", Duration::ZERO)?;
    if rate * duration.as_secs_f64() > 1e6 {
        return Err("--rate x --duration: at most a million requests".into());
    }
    Ok(load::LoadOpts {
        urls: a
            .str("url", "")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        pick: load::Pick::parse(&a.str("pick", "round_robin"))?,
        kind: workload::Kind::parse(&workload)?,
        workload,
        sizes,
        sessions: a.num("sessions", 48)?,
        rate,
        duration,
        poisson: match a.str("arrivals", "poisson").as_str() {
            "poisson" => true,
            "fixed" => false,
            other => return Err(format!("--arrivals `{other}`: poisson or fixed")),
        },
        key: a.str("key", "sk-bench"),
        model: a.str("model", "sim-model"),
        seed: a.num("seed", 1)?,
        timeout,
        warmup: a.dur("warmup", Duration::ZERO)?,
        drain: a.dur("drain", timeout + Duration::from_secs(5))?,
        label: a.str("label", ""),
        sticky_slack: a.num("sticky-slack", 3)?,
        requests_out: a.0.get("requests").cloned(),
    })
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match argv.first().map(String::as_str) {
        Some("serve") => run_serve(&argv[1..]),
        Some("load") => run_load(&argv[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = code {
        eprintln!("fleet-sim: {e}");
        std::process::exit(2);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn run_serve(argv: &[String]) -> Result<(), String> {
    let known = [
        "replicas",
        "base-port",
        "host",
        "model",
        "kv-tokens",
        "max-num-seqs",
        "max-batched-tokens",
        "max-waiting",
        "max-model-len",
        "prefill-us-per-token",
        "step-base-ms",
        "step-per-seq-ms",
        "default-max-tokens",
        "max-body",
        "duration-limit",
    ];
    let opts = serve_opts(&Args::parse(argv, &known)?)?;
    runtime()?
        .block_on(server::serve(opts))
        .map_err(|e| e.to_string())
}

fn run_load(argv: &[String]) -> Result<(), String> {
    let known = [
        "url",
        "pick",
        "workload",
        "rate",
        "duration",
        "key",
        "model",
        "out",
        "seed",
        "arrivals",
        "timeout",
        "sessions",
        "warmup",
        "drain",
        "label",
        "system",
        "first-user",
        "tool-result",
        "turns",
        "max-tokens",
        "think-ms",
        "requests",
        "unique-prompt",
        "hot-system",
        "hot-question",
        "hot-share",
        "sticky-slack",
    ];
    let a = Args::parse(argv, &known)?;
    let opts = load_opts(&a)?;
    if opts.duration.is_zero() {
        return Err("give --duration".into());
    }
    let out = a.0.get("out").cloned();
    let summary = runtime()?.block_on(load::run(opts))?;
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    match out {
        Some(path) => std::fs::write(&path, text + "\n").map_err(|e| format!("{path}: {e}"))?,
        None => println!("{text}"),
    }
    let g = |p: &str| summary.pointer(p).cloned().unwrap_or_default();
    eprintln!(
        "fleet-sim load {} {}: ok {} failed {} ttft p50/p90/p99 {}/{}/{} ms, {:.0} output tok/s, cache hit {:.2}",
        g("/workload"),
        g("/label"),
        g("/ok"),
        g("/failed"),
        g("/ttft_ms/p50"),
        g("/ttft_ms/p90"),
        g("/ttft_ms/p99"),
        g("/output_tok_per_s").as_f64().unwrap_or(0.0),
        g("/cache_hit_rate").as_f64().unwrap_or(0.0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("100"), Some(100));
    }
}
