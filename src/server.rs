//! Building and running the Pingora server from a validated config.

use crate::config::{Config, Dialect};
use crate::control::Control;
use crate::gateway::Gateway;
use crate::proxy::ingress::Listener;
use crate::proxy::Switchyard;
use async_trait::async_trait;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{ListenFds, RunArgs, RuntimeOpts, Server, ShutdownWatch};
use pingora_core::services::background::background_service;
use pingora_core::services::{ServiceReadyNotifier, ServiceWithDependents};
use std::net::TcpListener;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Pingora's own process flags, kept working (contract §1).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFlags {
    pub daemon: bool,
    pub upgrade: bool,
    pub test: bool,
}

/// Pingora's `ServerConf`, generated from our validated config (its own YAML loader would
/// silently ignore unknown keys, pingora-notes pitfall 22).
pub fn server_conf(cfg: &Config, flags: ProcessFlags) -> ServerConf {
    ServerConf {
        threads: cfg.server.threads.max(1),
        daemon: flags.daemon,
        pid_file: cfg.server.pid_file.clone(),
        upgrade_sock: cfg.server.upgrade_sock.clone(),
        // Pingora sleeps the whole grace period after SIGTERM (pingora#719); `lifecycle` exits
        // as soon as nothing is in flight. Both set explicitly (Pingora's default is 300 s).
        grace_period_seconds: Some(cfg.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(cfg.server.shutdown_timeout.as_secs().max(1)),
        // One current-thread runtime per worker instead of tokio's work-stealing pool: each
        // request stays on its thread, with no cross-thread wakeups. A bare Pingora proxy went
        // from 92 to 68 µs of CPU per request on this machine (load-tests/RESULTS.md).
        work_stealing: false,
        ..ServerConf::default()
    }
}

/// Start serving; never returns.
pub fn run(cfg: Config, config_path: Option<PathBuf>, flags: ProcessFlags) -> ! {
    crate::metrics::init();
    if let Err(e) = crate::access_log::init(cfg.access_log.as_deref()) {
        eprintln!("switchyard: cannot open the access log: {e}");
        std::process::exit(1);
    }
    let listen: Vec<String> = cfg.listen.iter().map(|a| a.to_string()).collect();
    let admin = cfg.admin_listen.map(|a| a.to_string());
    // Bind before Pingora does: it would log "listening", retry a taken port for ~30 s, then
    // panic in a runtime thread and stay alive serving nothing. Before `Server::new`, so the
    // error is the only line. With `--upgrade` the sockets come from the old process; `--test`
    // must pass while the running instance holds them.
    let mut bound = if flags.upgrade || flags.test {
        Vec::new()
    } else {
        match bind_all(listen.iter().chain(admin.iter())) {
            Ok(b) => b,
            Err(line) => {
                eprintln!("switchyard: {line}");
                std::process::exit(1);
            }
        }
    };
    let opt = Opt {
        upgrade: flags.upgrade,
        daemon: flags.daemon,
        nocapture: false,
        test: flags.test,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&cfg, flags));
    // With `--upgrade` this receives the listening sockets of the running process;
    // with `--test` it exits here.
    server.bootstrap();

    for line in describe(&cfg) {
        log::info!("{line}");
    }
    // Settings accepted but not enforced yet (issue 7, defect 14).
    cfg.warnings.iter().for_each(|w| log::warn!("{w}"));
    let grace = cfg.server.grace_period;
    Gateway::install(Arc::new(Gateway::new(cfg)));

    let phases = server.watch_execution_phase();
    server.add_service(background_service(
        "lifecycle",
        crate::lifecycle::Watcher::new(phases, grace),
    ));
    let control = server.add_service(background_service("control", Control { config_path }));
    let mut main = crate::head_deadline::proxy_service(
        &server.configuration,
        Switchyard {
            listener: Listener::Main {
                serves_ops: admin.is_none(),
            },
        },
        "switchyard",
    );
    for addr in &listen {
        main.add_tcp(addr);
    }
    let main_sockets = take_sockets(&mut bound, &listen);
    let main = server.add_service(PreBound::new(main, main_sockets));
    main.add_dependency(&control);
    if let Some(addr) = &admin {
        let mut svc = crate::head_deadline::proxy_service(
            &server.configuration,
            Switchyard {
                listener: Listener::Admin,
            },
            "switchyard-admin",
        );
        svc.add_tcp(addr);
        let sockets = take_sockets(&mut bound, std::slice::from_ref(addr));
        server.add_service(PreBound::new(svc, sockets));
    }
    server.run(RunArgs::default());
    // Pingora's own end of a shutdown (grace period over, runtimes stopped): lines of the
    // requests that finished reach the sink first.
    crate::access_log::flush(Duration::from_secs(1));
    std::process::exit(0)
}

/// A few lines for the startup log: what is active, by name. Never a secret: keys by
/// their configured name, providers by id, dialect and endpoint count.
pub fn describe(cfg: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    let listen: Vec<String> = cfg.listen.iter().map(|a| a.to_string()).collect();
    lines.push(match cfg.admin_listen {
        Some(a) => format!("listening on {}; admin on {a}", listen.join(", ")),
        None => format!(
            "listening on {} (also /metrics, /healthz, /readyz)",
            listen.join(", ")
        ),
    });
    let providers: Vec<String> = cfg
        .providers
        .values()
        .map(|p| {
            let n = p.endpoints.len();
            format!(
                "{} ({}, {n} endpoint{})",
                p.id,
                dialect_name(p.dialect),
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    lines.push(if providers.is_empty() {
        "providers: none".to_string()
    } else {
        format!("providers ({}): {}", providers.len(), providers.join(", "))
    });
    let models: Vec<String> = cfg
        .models
        .iter()
        .map(|(name, route)| {
            let targets: Vec<&str> = route.targets.iter().map(|t| t.provider.as_str()).collect();
            format!("{name} -> {}", targets.join(", "))
        })
        .collect();
    lines.push(if models.is_empty() {
        "models: none configured (clients name provider/model)".to_string()
    } else {
        format!("models ({}): {}", models.len(), models.join("; "))
    });
    let keys: Vec<&str> = cfg.keys.iter().map(|k| k.name.as_str()).collect();
    lines.push(if keys.is_empty() {
        "keys: none (open gateway)".to_string()
    } else {
        format!("keys ({}): {}", keys.len(), keys.join(", "))
    });
    lines
}

/// The dialect as the config file spells a provider's `type`.
fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::OpenAi => "openai",
        Dialect::Anthropic => "anthropic",
        Dialect::AzureOpenAi => "azure_openai",
        Dialect::AzureFoundry => "azure_foundry",
        Dialect::Bedrock => "bedrock",
        Dialect::Vertex => "vertex",
        Dialect::Gemini => "gemini",
        Dialect::Replicate => "replicate",
    }
}

/// Bind every address, or say in one line which one cannot be bound and why.
fn bind_all<'a>(
    addrs: impl Iterator<Item = &'a String>,
) -> Result<Vec<(String, TcpListener)>, String> {
    let mut bound = Vec::new();
    for addr in addrs {
        // std sets SO_REUSEADDR (a restart is not refused for TIME_WAIT connections), as
        // Pingora's own bind does; Linux still refuses a port another socket listens on.
        let l = TcpListener::bind(addr.as_str()).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("cannot listen on {addr}: address already in use")
            }
            _ => format!("cannot listen on {addr}: {e}"),
        })?;
        // Pingora hands the descriptor to tokio as it is: it must not block.
        l.set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        bound.push((addr.clone(), l));
    }
    Ok(bound)
}

fn take_sockets(
    bound: &mut Vec<(String, TcpListener)>,
    addrs: &[String],
) -> Vec<(String, TcpListener)> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(bound)
        .into_iter()
        .partition(|(a, _)| addrs.contains(a));
    *bound = rest;
    mine
}

/// A listening service that starts on sockets bound before `run_forever`.
///
/// Pingora binds in `start_service` unless its table of listening descriptors (the one an
/// upgrade fills from the old process) already has the address: putting our sockets there
/// makes it use them, and passes them on at the next upgrade like its own.
pub struct PreBound<S> {
    inner: S,
    sockets: Vec<(String, TcpListener)>,
}

impl<S> PreBound<S> {
    /// `sockets`: (the address exactly as given to `add_tcp`, its bound listener).
    pub fn new(inner: S, sockets: Vec<(String, TcpListener)>) -> PreBound<S> {
        PreBound { inner, sockets }
    }
}

#[async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for PreBound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        if let Some(table) = &fds {
            let mut table = table.lock();
            for (addr, socket) in self.sockets.drain(..) {
                if table.get(&addr).is_none() {
                    table.add(addr, socket.into_raw_fd());
                }
            }
        }
        self.inner
            .start_service(fds, shutdown, listeners_per_fd, ready_notifier)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.inner.runtime_opts_override(global)
    }

    fn on_startup_delay(&self, time_waited: Duration) {
        self.inner.on_startup_delay(time_waited)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}
