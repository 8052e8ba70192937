//! The `switchyard` binary: `switchyard [--config FILE]` serves, `switchyard check` validates.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use switchyard::server::{self, ProcessFlags};

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM edge gateway on Cloudflare Pingora"
)]
struct Cli {
    /// Config file (YAML). Without one, providers come from the environment (zero-config).
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Run in the background (Pingora's daemon mode).
    #[arg(long, short = 'd')]
    daemon: bool,
    /// Take the listening sockets over from a running instance (zero-downtime upgrade).
    #[arg(long, short = 'u')]
    upgrade: bool,
    /// Test the configuration and exit (Pingora's `--test`).
    #[arg(long, short = 't')]
    test: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config file: print every problem as `FILE:LINE: message` and exit 2, or
    /// exit 0; warnings (`FILE:LINE: warning: ...`, settings not enforced yet) do not fail it.
    Check,
}

/// The log filter without `RUST_LOG` (an empty `RUST_LOG` counts as unset). Two Pingora lines
/// are silenced, since they repeat without saying anything an operator can act on:
/// - `pingora_core::connectors`: "failed to acquire reusable stream" at ERROR, thousands of
///   times under normal load (an idle upstream connection still watched by its idle task is
///   not reused; a new one is opened). The module logs nothing else above debug.
/// - `pingora_load_balancing` below error: "… becomes unhealthy" prints the whole backend as a
///   ~1 KB debug dump. The control task logs one short line per endpoint state change instead.
///
/// `RUST_LOG` replaces this whole filter: `RUST_LOG=info` shows both again.
const DEFAULT_LOG_FILTER: &str = "info,pingora_core::connectors=off,pingora_load_balancing=error";

/// Large buffers (request bodies up to `max_request_body`) come from their own mappings and
/// go back to the system when freed. glibc's default raises its mmap threshold after each
/// large free, so after a burst of big bodies later ones stay in the heap: 20 stalled 30 MiB
/// uploads left 504 MB resident after their connections closed (issue 7).
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}

fn main() {
    return_large_buffers_to_the_system();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_string());
    env_logger::Builder::new().parse_filters(&filter).init();
    let cli = Cli::parse();
    if let Some(Command::Check) = cli.command {
        let Some(path) = cli.config.as_deref() else {
            eprintln!("switchyard check: --config FILE is required");
            std::process::exit(2);
        };
        let env = |k: &str| std::env::var(k).ok();
        match switchyard::config::load_file(path, &env) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    println!("{w}");
                }
                println!("{}: ok", path.display());
                std::process::exit(0);
            }
            Err(problems) => {
                for p in problems {
                    println!("{p}");
                }
                std::process::exit(2);
            }
        }
    }
    let cfg = match switchyard::control::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("switchyard: {why}");
            std::process::exit(2);
        }
    };
    let flags = ProcessFlags {
        daemon: cli.daemon,
        upgrade: cli.upgrade,
        test: cli.test,
    };
    server::run(cfg, cli.config, flags)
}
