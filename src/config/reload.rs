//! What a SIGHUP reload cannot apply. A reload swaps the routing state (keys,
//! providers, models, limits) in whole, but the sockets, the worker threads and
//! the access-log file are set up once, when the process starts.

use super::model::Config;

/// Warnings for the settings that differ between the running `old` config and the
/// reloaded `new` one but cannot change without a new process: the old values keep
/// serving, everything else in `new` applies. Empty when there is nothing to say.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let sorted = |list: &[std::net::SocketAddr]| {
        let mut list = list.to_vec();
        list.sort();
        list.dedup();
        list
    };
    let show = |list: &[std::net::SocketAddr]| {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let admin = |a: Option<std::net::SocketAddr>| a.map_or("(none)".to_string(), |a| a.to_string());
    let mut moved = Vec::new();
    if sorted(&old.listen) != sorted(&new.listen) {
        moved.push(format!(
            "listen [{}] -> [{}]",
            show(&old.listen),
            show(&new.listen)
        ));
    }
    if old.admin_listen != new.admin_listen {
        moved.push(format!(
            "admin.listen {} -> {}",
            admin(old.admin_listen),
            admin(new.admin_listen)
        ));
    }
    if !moved.is_empty() {
        warnings.push(format!(
            "reload: {} needs a restart or a binary upgrade (start the new process with --upgrade): the old listeners keep serving; everything else in the new config applies",
            moved.join(", ")
        ));
    }
    let (o, n) = (&old.server, &new.server);
    let fixed: Vec<&str> = [
        ("server.threads", o.threads != n.threads),
        ("server.pid_file", o.pid_file != n.pid_file),
        ("server.upgrade_sock", o.upgrade_sock != n.upgrade_sock),
        ("access_log", old.access_log != new.access_log),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    if !fixed.is_empty() {
        warnings.push(format!(
            "reload: a change of {} applies only to a new process (restart, or --upgrade): the old values stay in force",
            fixed.join(", ")
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn config(text: &str) -> Config {
        load_str("r.yaml", text, &|_| None).unwrap()
    }

    #[test]
    fn a_listener_change_says_it_needs_a_restart() {
        let old = config("listen: [\"127.0.0.1:8080\", \"127.0.0.1:8081\"]\n");
        let same = config(
            "listen: [\"127.0.0.1:8081\", \"127.0.0.1:8080\"]\nlimits: { connect_timeout: 1s }\n",
        );
        assert_eq!(restart_needed(&old, &same), Vec::<String>::new());

        let moved = config("listen: 127.0.0.1:9000\nadmin: { listen: \"127.0.0.1:9090\" }\n");
        let warnings = restart_needed(&old, &moved);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            warnings[0],
            "reload: listen [127.0.0.1:8080, 127.0.0.1:8081] -> [127.0.0.1:9000], admin.listen (none) -> 127.0.0.1:9090 needs a restart or a binary upgrade (start the new process with --upgrade): the old listeners keep serving; everything else in the new config applies"
        );
    }

    #[test]
    fn process_settings_say_so_too() {
        let old = config("listen: 127.0.0.1:1\n");
        let new = config("listen: 127.0.0.1:1\nserver: { threads: 8 }\naccess_log: /tmp/a.log\n");
        assert_eq!(
            restart_needed(&old, &new),
            vec!["reload: a change of server.threads, access_log applies only to a new process (restart, or --upgrade): the old values stay in force"]
        );
    }
}
