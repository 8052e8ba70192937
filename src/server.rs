//! Building and running the Pingora server from a validated config.

use crate::config::Config;
use crate::control::Control;
use crate::gateway::Gateway;
use crate::proxy::ingress::Listener;
use crate::proxy::Switchyard;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use std::path::PathBuf;
use std::sync::Arc;

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
        // SIGTERM always sleeps the full grace period (pingora#719): set both explicitly.
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
    let opt = Opt {
        upgrade: flags.upgrade,
        daemon: flags.daemon,
        nocapture: false,
        test: flags.test,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&cfg, flags));
    server.bootstrap();

    let listen: Vec<String> = cfg.listen.iter().map(|a| a.to_string()).collect();
    let admin = cfg.admin_listen;
    // Settings accepted but not enforced yet (issue 7, defect 14).
    cfg.warnings.iter().for_each(|w| log::warn!("{w}"));
    Gateway::install(Arc::new(Gateway::new(cfg)));

    let control = server.add_service(background_service("control", Control { config_path }));
    let mut main = pingora_proxy::http_proxy_service_with_name(
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
    let main = server.add_service(main);
    main.add_dependency(&control);
    if let Some(addr) = admin {
        let mut svc = pingora_proxy::http_proxy_service_with_name(
            &server.configuration,
            Switchyard {
                listener: Listener::Admin,
            },
            "switchyard-admin",
        );
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    log::info!("switchyard listening on {}", listen.join(", "));
    server.run_forever()
}
