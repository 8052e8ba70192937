//! Provider adapters: one module per upstream dialect behind one small trait.
//!
//! An adapter says which wire format a target speaks (per provider *and* model), where each
//! operation lives on it, and how a final request is authorised (credentials, host,
//! framing; SigV4 signs the final path, Host and body, so this runs last). Bodies are built
//! apart from adapters (`proxy::prepare`): spliced when the client already speaks the
//! target's wire, translated (`crate::translate`) when not. Adding a dialect means one
//! module here plus a row in `adapter_for`.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod openai;
pub mod sigv4;

use crate::config::{Dialect, Provider};
use crate::errors::{ClientDialect, GatewayError};
use crate::translate::Wire;
use http::{header, HeaderName};

/// What the client asked the gateway to do, from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    ImagesGenerations,
    AudioSpeech,
    Rerank,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Operation {
    /// The client-facing path of each operation served from a JSON body.
    pub fn from_path(path: &str) -> Option<Operation> {
        Some(match path {
            "/v1/chat/completions" => Operation::ChatCompletions,
            "/v1/completions" => Operation::Completions,
            "/v1/embeddings" => Operation::Embeddings,
            "/v1/responses" => Operation::Responses,
            "/v1/images/generations" => Operation::ImagesGenerations,
            "/v1/audio/speech" => Operation::AudioSpeech,
            "/v1/rerank" => Operation::Rerank,
            "/v1/messages" => Operation::Messages,
            "/v1/messages/count_tokens" => Operation::CountTokens,
            _ => return None,
        })
    }

    /// The dialect a client of this operation speaks (errors are written in it).
    pub fn client_dialect(self) -> ClientDialect {
        match self {
            Operation::Messages | Operation::CountTokens => ClientDialect::Anthropic,
            _ => ClientDialect::OpenAi,
        }
    }

    /// A chat turn: the one operation every dialect translates.
    pub fn is_chat(self) -> bool {
        matches!(self, Operation::ChatCompletions | Operation::Messages)
    }

    /// Path below an OpenAI-compatible base URL (which already holds `/v1`).
    pub fn openai_suffix(self) -> Option<&'static str> {
        Some(match self {
            Operation::ChatCompletions => "/chat/completions",
            Operation::Completions => "/completions",
            Operation::Embeddings => "/embeddings",
            Operation::Responses => "/responses",
            Operation::ImagesGenerations => "/images/generations",
            Operation::AudioSpeech => "/audio/speech",
            Operation::Rerank => "/rerank",
            // Translated to chat completions before they get here.
            Operation::Messages => "/chat/completions",
            Operation::CountTokens => return None,
        })
    }

    /// `gen_ai_operation_name` (OpenTelemetry GenAI conventions).
    pub fn otel_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat",
            Operation::Completions => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
            Operation::ImagesGenerations => "image_generation",
            Operation::AudioSpeech => "speech",
            Operation::Rerank => "rerank",
            Operation::Messages => "messages",
            Operation::CountTokens => "count_tokens",
        }
    }

    /// Operations whose streams end with a usage chunk when asked for `include_usage`.
    pub fn streams_usage(self) -> bool {
        matches!(self, Operation::ChatCompletions | Operation::Completions)
    }
}

/// One upstream dialect.
pub trait Adapter: Send + Sync {
    /// The wire format `provider` speaks for `model` (a wire belongs to provider *and*
    /// model: Claude and Gemini both live on Vertex). `None`: not served by this build.
    fn wire(&self, provider: &Provider, model: &str) -> Option<Wire>;

    /// Path and query of `op` for `model`, or a refusal (400/404 in the client's dialect)
    /// when this upstream does not serve the operation.
    fn path(
        &self,
        provider: &Provider,
        op: Operation,
        model: &str,
        stream: bool,
    ) -> Result<String, GatewayError>;

    /// Credentials, host and framing on the final request (path set, body final). Client
    /// credentials are removed here: they never reach an upstream.
    fn authorize(
        &self,
        provider: &Provider,
        endpoint: &crate::pool::PoolEndpoint,
        hdr: &mut Head,
        body: &[u8],
    ) -> pingora_error::Result<()>;
}

/// The upstream request's header as plain `http` parts: edited without Pingora's second map
/// of the client's spelling of each name, with names built at compile time (see
/// `proxy::head`; every `insert_header` on a `RequestHeader` parses and copies the name
/// and updates both maps). The proxy puts it back into Pingora's header when the adapter is
/// done.
pub type Head = http::request::Parts;

pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The adapter of a dialect, or `None` while that dialect is not served yet.
pub fn adapter_for(dialect: Dialect) -> Option<&'static dyn Adapter> {
    match dialect {
        Dialect::OpenAi => Some(&openai::OpenAiCompatible),
        Dialect::AzureOpenAi | Dialect::AzureFoundry => Some(&azure::Azure),
        Dialect::Anthropic => Some(&anthropic::Anthropic),
        Dialect::Bedrock => Some(&bedrock::Bedrock),
        Dialect::Vertex | Dialect::Gemini | Dialect::Replicate => None,
    }
}

/// The wire a provider speaks for a model, if this build serves it.
pub fn wire_for(provider: &Provider, model: &str) -> Option<Wire> {
    adapter_for(provider.dialect)?.wire(provider, model)
}

/// Set anew by every adapter: the body is re-framed, and the answer must come back as plain
/// text (usage is read from it). `content-length` is not listed: every adapter sets it with
/// [`set_host_and_length`], whose insert replaces the client's value in place (removing it
/// first would update both of Pingora's header maps twice on every request).
pub const FRAMING: &[&str] = &["accept-encoding", "transfer-encoding"];

/// The Anthropic client's protocol headers: kept for an Anthropic upstream, meaningless to
/// any other.
pub const ANTHROPIC_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// Percent-encode everything but `A-Z a-z 0-9 - . _ ~`. A segment that is all dots (`.`,
/// `..`) is encoded too, so no client-supplied id can become a relative path step that a
/// client library or the signer's path normalisation would resolve away.
pub fn encode_segment(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b'.') {
        return "%2E".repeat(s.len());
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Host` and `Content-Length` for the final body.
pub fn set_host_and_length(
    endpoint: &crate::pool::PoolEndpoint,
    hdr: &mut Head,
    body_len: usize,
) -> pingora_error::Result<()> {
    hdr.headers.insert(header::HOST, endpoint.host.clone());
    hdr.headers
        .insert(header::CONTENT_LENGTH, http::HeaderValue::from(body_len));
    Ok(())
}

/// A secret as a header value, marked sensitive (kept out of HPACK tables and debug output).
/// A secret with bytes a header cannot carry fails the attempt; the error never quotes it.
pub fn secret_header(value: &str) -> pingora_error::Result<http::HeaderValue> {
    use pingora_error::{ErrorType, OrErr};
    let mut h = http::HeaderValue::from_str(value).or_err(
        ErrorType::InvalidHTTPHeader,
        "the provider's credential is not a valid header value",
    )?;
    h.set_sensitive(true);
    Ok(h)
}

/// Headers that carry the client's own credentials or gateway-only routing hints.
pub const CLIENT_ONLY_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-ai-eg-model",
    "x-provider",
    "proxy-authorization",
    "cookie",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) and what only the gateway may set: they describe
/// the client's connection to the gateway, not the gateway's to the upstream. `Expect` is
/// answered (or not) by the gateway, which has read the whole body already; `Forwarded` and
/// `X-Forwarded-For` from a client are claims, replaced by what the gateway saw.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Headers the client listed in its `Connection` header are hop-by-hop too (RFC 9110
/// §7.6.1). Rare: most clients send only `keep-alive` or `close` there.
pub fn strip_connection_listed(hdr: &mut Head) {
    let Some(listed) = hdr.headers.get("connection").and_then(|v| v.to_str().ok()) else {
        return;
    };
    // On the hot path: keep-alive clients send `Connection: keep-alive` on every request, so
    // nothing is allocated unless some other name is listed.
    let named = |n: &&str| {
        !n.is_empty() && !n.eq_ignore_ascii_case("close") && !n.eq_ignore_ascii_case("keep-alive")
    };
    if !listed.split(',').map(str::trim).any(|n| named(&n)) {
        return;
    }
    let names: Vec<String> = listed
        .split(',')
        .map(str::trim)
        .filter(named)
        .take(16)
        .map(str::to_ascii_lowercase)
        .collect();
    for n in names {
        // Never let a client strip what the gateway relies on.
        if !matches!(n.as_str(), "content-length" | "content-type" | "host") {
            hdr.headers.remove(n.as_str());
        }
    }
}

/// Tell the upstream who the client is, as the gateway saw it.
pub fn set_forwarded_for(
    hdr: &mut Head,
    client: Option<std::net::IpAddr>,
) -> pingora_error::Result<()> {
    if let Some(ip) = client {
        let mut buf = [0u8; 48];
        let n = match ip {
            // Written by hand: `fmt` costs ~700 instructions on every proxied request.
            std::net::IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[n] = b'.';
                        n += 1;
                    }
                    if octet >= 100 {
                        buf[n] = b'0' + octet / 100;
                        n += 1;
                    }
                    if octet >= 10 {
                        buf[n] = b'0' + octet / 10 % 10;
                        n += 1;
                    }
                    buf[n] = b'0' + octet % 10;
                    n += 1;
                }
                n
            }
            std::net::IpAddr::V6(_) => {
                let mut w = std::io::Cursor::new(&mut buf[..]);
                let _ = std::io::Write::write_fmt(&mut w, format_args!("{ip}"));
                w.position() as usize
            }
        };
        hdr.headers.insert(
            X_FORWARDED_FOR,
            http::HeaderValue::from_bytes(&buf[..n])
                .unwrap_or(http::HeaderValue::from_static("unknown")),
        );
    }
    Ok(())
}

/// Remove every header named in `lists` (lower case) in one pass over the request's headers,
/// instead of one hash lookup per name: a request carries a handful of headers, and usually
/// just one of these (its `authorization`).
pub fn strip_headers(hdr: &mut Head, lists: &[&[&str]]) {
    const MAX: usize = 24;
    let mut present: [Option<http::HeaderName>; MAX] = Default::default();
    let mut n = 0;
    for name in hdr.headers.keys() {
        if n < MAX && lists.iter().any(|l| l.contains(&name.as_str())) {
            present[n] = Some(name.clone());
            n += 1;
        }
    }
    for name in present.iter().take(n).flatten() {
        hdr.headers.remove(name);
    }
    // More than MAX distinct matches cannot happen with the lists here; stay correct anyway.
    if n == MAX {
        for name in lists.iter().flat_map(|l| l.iter()) {
            hdr.headers.remove(*name);
        }
    }
}

/// `Authorization: Bearer <key>`, marked sensitive (kept out of HPACK tables and debug
/// output). A key with bytes a header cannot carry fails the attempt; the error never
/// quotes the key.
pub fn bearer(key: &str) -> pingora_error::Result<http::HeaderValue> {
    use pingora_error::{ErrorType, OrErr};
    let mut v = Vec::with_capacity(7 + key.len());
    v.extend_from_slice(b"Bearer ");
    v.extend_from_slice(key.as_bytes());
    let mut h = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).or_err(
        ErrorType::InvalidHTTPHeader,
        "the provider's API key is not a valid header value",
    )?;
    h.set_sensitive(true);
    Ok(h)
}

/// `Host` value for an endpoint (port only when not the scheme's default).
pub fn host_header(ep: &crate::config::Endpoint) -> String {
    let default = if ep.tls { 443 } else { 80 };
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    if ep.port == default {
        host
    } else {
        format!("{host}:{}", ep.port)
    }
}

/// A POST to `path` with `headers` (appended in order), for adapter tests.
#[cfg(test)]
pub fn test_head(path: &str, headers: &[(&str, &str)]) -> Head {
    let mut b = http::Request::builder().method("POST").uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Head {
        test_head("/v1/chat/completions", headers)
    }

    /// What Pingora writes upstream for `hdr`, once the proxy has put it back.
    fn wire(hdr: Head) -> String {
        let mut wire = Vec::new();
        pingora_http::RequestHeader::from(hdr).header_to_h1_wire(&mut wire);
        String::from_utf8(wire).unwrap()
    }

    #[test]
    fn strip_removes_every_listed_header_and_nothing_else() {
        let mut r = request(&[
            ("Authorization", "Bearer sk-client"),
            ("X-Api-Key", "sk-other"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("Content-Type", "application/json"),
            ("X-Custom", "kept"),
        ]);
        strip_headers(&mut r, &[CLIENT_ONLY_HEADERS]);
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "x-custom"]);
        // Nothing of them reaches the wire; the others do (names case-insensitively).
        let wire = wire(r);
        assert!(!wire.to_ascii_lowercase().contains("sk-"), "{wire}");
        assert!(wire.contains("x-custom: kept"), "{wire}");
        assert!(wire.contains("Content-Type: application/json"), "{wire}");
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go_forwarded_for_is_ours() {
        let mut r = request(&[
            ("Connection", "keep-alive, X-Secret-Hop, Content-Length"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Upgrade", "websocket"),
            ("Expect", "100-continue"),
            ("TE", "trailers"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
            ("Content-Length", "2"),
            ("Content-Type", "application/json"),
        ]);
        strip_connection_listed(&mut r);
        strip_headers(&mut r, &[CLIENT_ONLY_HEADERS, HOP_BY_HOP_HEADERS]);
        set_forwarded_for(&mut r, Some("127.0.0.9".parse().unwrap())).unwrap();
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(names, ["content-length", "content-type", "x-forwarded-for"]);
        assert_eq!(r.headers.get("x-forwarded-for").unwrap(), "127.0.0.9");
        assert!(!wire(r).contains("6.6.6.6"));
    }

    #[test]
    fn forwarded_for_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.99.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut r = test_head("/", &[]);
            set_forwarded_for(&mut r, Some(ip)).unwrap();
            assert_eq!(r.headers.get("x-forwarded-for").unwrap(), &ip.to_string());
        }
    }

    #[test]
    fn bearer_is_sensitive_and_rejects_bad_bytes_without_quoting_them() {
        let h = bearer("sk-up").unwrap();
        assert_eq!(h, "Bearer sk-up");
        assert!(h.is_sensitive());
        let e = bearer("sk-bad\nkey").unwrap_err();
        assert!(!e.to_string().contains("sk-bad"), "{e}");
    }
}
