//! Addresses as written in the config and the environment: upstream URLs
//! (`https://api.groq.com/openai/v1`), pool entries (`10.1.0.11:8000`) and
//! listener addresses (`0.0.0.0:8080`, `[::1]:8080`).
//!
//! Parsed by hand because the accepted forms are few and a general URL parser
//! would accept (and silently keep) user info, queries and fragments that make
//! no sense for an upstream base URL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::model::Endpoint;

/// Where a provider lives: the endpoint to connect to and the path prefix that
/// every upstream path starts with (no trailing `/`, `""` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub endpoint: Endpoint,
    pub base_path: String,
}

impl Endpoint {
    /// `host:port` as used in a `Host` header or a connect address, with an
    /// IPv6 literal put back in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `http[s]://host[:port][/path]`. The port defaults to 80 or 443; the
/// path, without its trailing `/`, becomes the base path.
pub fn parse_url(text: &str) -> Result<BaseUrl, String> {
    let s = text.trim();
    let text = &shown(text);
    let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(s, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(s, "http://") {
        (false, rest)
    } else {
        return Err(format!(
            "`{text}` is not a URL: expected http://host[:port][/path] or https://host[:port][/path]"
        ));
    };
    if s.contains(char::is_whitespace) {
        return Err(format!("URL `{text}` contains white space"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "URL `{text}` has a query or fragment: give only scheme, host, port and path"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!(
            "URL `{text}` carries credentials: put the secret in api_key instead"
        ));
    }
    let (host, port) = parse_authority(authority).map_err(|why| format!("URL `{text}`: {why}"))?;
    Ok(BaseUrl {
        endpoint: Endpoint {
            host,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            tls,
        },
        base_path: path.trim_end_matches('/').to_string(),
    })
}

/// Parses one entry of an `endpoints:` pool: `host:port` (plain HTTP, with
/// `default_base_path`) or a full URL as in [`parse_url`].
pub fn parse_pool_entry(text: &str, default_base_path: &str) -> Result<BaseUrl, String> {
    let s = text.trim();
    if s.contains("://") {
        return parse_url(s);
    }
    let text = &shown(text);
    if s.contains('@') {
        return Err(format!(
            "endpoint `{text}` carries credentials: put the secret in api_key instead"
        ));
    }
    if s.contains('/') || s.contains(char::is_whitespace) {
        return Err(format!(
            "endpoint `{text}`: expected host:port (e.g. 10.1.0.11:8000) or a URL (http://host:port/v1)"
        ));
    }
    let (host, port) = parse_authority(s).map_err(|why| format!("endpoint `{text}`: {why}"))?;
    let port = port.ok_or_else(|| {
        format!("endpoint `{text}` needs a port: write {s}:8000 or a URL (http://{s}/v1)")
    })?;
    Ok(BaseUrl {
        endpoint: Endpoint {
            host,
            port,
            tls: false,
        },
        base_path: default_base_path.to_string(),
    })
}

/// Parses a listener address: `IP:PORT`, `[IPv6]:PORT`, or `localhost:PORT`
/// (taken as 127.0.0.1, since a listener binds one address).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let s = text.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = strip_prefix_ignore_case(s, "localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    Err(format!(
        "listen address `{text}` is not IP:PORT: write e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
    ))
}

/// Splits `host[:port]` (with `[v6]` brackets) and checks both parts.
fn parse_authority(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{inside}` is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{after}` after the IPv6 address"))?,
            ),
        };
        (inside.to_string(), port)
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("write an IPv6 address in brackets, e.g. [::1]:8000".into())
            }
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(format!("`{host}` is not a valid host name"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("`{p}` is not a port (1-65535)")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// `text` as a message may quote it: user info (`user:password@`) is replaced by `***`,
/// since a URL may carry a secret (diagnostics are logged).
pub(crate) fn shown(text: &str) -> String {
    let (scheme, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => text.to_string(),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(host: &str, port: u16, tls: bool, path: &str) -> BaseUrl {
        BaseUrl {
            endpoint: Endpoint {
                host: host.into(),
                port,
                tls,
            },
            base_path: path.into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://api.groq.com/openai/v1"),
            Ok(base("api.groq.com", 443, true, "/openai/v1"))
        );
        assert_eq!(
            parse_url("http://127.0.0.1:8000/v1/"),
            Ok(base("127.0.0.1", 8000, false, "/v1"))
        );
        assert_eq!(
            parse_url("https://api.perplexity.ai"),
            Ok(base("api.perplexity.ai", 443, true, ""))
        );
        assert_eq!(
            parse_url("https://api.anthropic.com/"),
            Ok(base("api.anthropic.com", 443, true, ""))
        );
        assert_eq!(
            parse_url("HTTP://[::1]:8000/v1"),
            Ok(base("::1", 8000, false, "/v1"))
        );
        assert_eq!(parse_url("http://[::1]"), Ok(base("::1", 80, false, "")));
        assert_eq!(
            parse_url("https://X.openai.azure.com"),
            Ok(base("x.openai.azure.com", 443, true, ""))
        );
    }

    #[test]
    fn bad_urls_say_why() {
        let err = |s: &str| parse_url(s).unwrap_err();
        assert!(err("api.openai.com/v1").contains("not a URL"));
        assert!(err("ftp://x").contains("not a URL"));
        assert!(err("https://").contains("missing host"));
        assert!(err("https://x:0").contains("not a port"));
        assert!(err("https://x:99999").contains("not a port"));
        assert!(err("https://x:abc/v1").contains("not a port"));
        assert!(err("https://user:pw@x").contains("api_key"));
        assert!(!err("https://user:pw@x").contains("pw"));
        assert!(!err("ftp://user:pw@x/v1").contains("pw"));
        assert!(!err("user:pw@x/v1").contains("pw"));
        assert!(!parse_pool_entry("user:pw@x", "/v1")
            .unwrap_err()
            .contains("pw"));
        assert!(err("https://x/v1?a=b").contains("query"));
        assert!(err("https://::1:80").contains("brackets"));
        assert!(err("https://[::1").contains("unclosed"));
        assert!(err("https://[zz]:1").contains("not an IPv6"));
        assert!(err("https://[::1]x").contains("unexpected"));
        assert!(err("https://a b").contains("white space"));
        assert!(err("https://a$b").contains("not a valid host"));
    }

    #[test]
    fn pool_entries() {
        assert_eq!(
            parse_pool_entry("10.1.0.11:8000", "/v1"),
            Ok(base("10.1.0.11", 8000, false, "/v1"))
        );
        assert_eq!(
            parse_pool_entry("[::1]:8000", "/v1"),
            Ok(base("::1", 8000, false, "/v1"))
        );
        assert_eq!(
            parse_pool_entry("https://gpu-1.internal/x/v1", "/v1"),
            Ok(base("gpu-1.internal", 443, true, "/x/v1"))
        );
        assert!(parse_pool_entry("10.1.0.11", "/v1")
            .unwrap_err()
            .contains("needs a port"));
        assert!(parse_pool_entry("10.1.0.11:8000/v1", "/v1")
            .unwrap_err()
            .contains("expected host:port"));
    }

    #[test]
    fn authority_brackets_ipv6() {
        assert_eq!(
            base("::1", 8000, false, "").endpoint.authority(),
            "[::1]:8000"
        );
        assert_eq!(base("a.b", 443, true, "").endpoint.authority(), "a.b:443");
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("0.0.0.0:8080"),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:8080"),
            Ok("[::1]:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen("localhost:9"),
            Ok("127.0.0.1:9".parse().unwrap())
        );
        assert!(parse_listen("8080").unwrap_err().contains("IP:PORT"));
        assert!(parse_listen("example.com:80").is_err());
    }
}
