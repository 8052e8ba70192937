//! Baseline for load tests: the least a Pingora proxy can do (fixed upstream, no logic).
//! `cargo run --release --example bare_proxy -- LISTEN UPSTREAM`
use async_trait::async_trait;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

struct Bare(std::net::SocketAddr);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(
        &self,
        _s: &mut Session,
        _c: &mut (),
    ) -> pingora_error::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:19185".into());
    let upstream = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:19181".into())
        .parse()
        .expect("upstream addr");
    let conf = ServerConf {
        threads: 1,
        pid_file: "/tmp/bare.pid".into(),
        upgrade_sock: "/tmp/bare.sock".into(),
        work_stealing: std::env::var("STEAL").is_ok(),
        // Exit at once on SIGTERM (Pingora otherwise sleeps a 300 s grace period).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = pingora_proxy::http_proxy_service(&server.configuration, Bare(upstream));
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever();
}
