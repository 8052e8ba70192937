//! The headers the gateway edits (the upstream request's, the client's response's), edited as
//! plain `http` parts.
//!
//! Pingora keeps an upstream response's header names in their original case in a second
//! map beside the values, and every `insert_header` parses the name again, copies it, clones
//! it into that map and grows both maps. On a response to a key with limits that was a fifth
//! of the gateway's instructions per request (callgrind, issue 9). Header names are
//! case-insensitive (RFC 9110 §5.1), so the gateway drops the case map once, edits the
//! `http::HeaderMap` directly with names built at compile time, and hands the header back:
//! standard names go out in their usual title case, the others in lower case (as HTTP/2
//! sends every name). The upstream request's header goes the same way in
//! `upstream_request_filter` (the adapters edit a [`crate::providers::Head`]).

use http::response::Parts;
use http::{HeaderName, HeaderValue};
use pingora_error::{ErrorType, OrErr, Result};
use pingora_http::RequestHeader;
use pingora_http::ResponseHeader;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Headers the gateway may add to a relayed response: ours, and six `x-ratelimit-*`.
const ROOM: usize = 12;

/// Run `edit` on `resp`'s parts without its case map, with room for the gateway's headers,
/// and put them back (also when `edit` fails).
pub fn edit<T>(resp: &mut ResponseHeader, edit: impl FnOnce(&mut Parts) -> T) -> T {
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: Parts = std::mem::replace(resp, empty).into();
    parts.headers.reserve(ROOM);
    let out = edit(&mut parts);
    *resp = ResponseHeader::from(parts);
    out
}

/// Run `edit` on the upstream request's parts without the case map, with room for the
/// gateway's headers, and put them back (also when `edit` fails). The request-target is
/// taken from the URI from then on: every attempt sets it (`set_uri` did the same).
pub fn edit_request<T>(
    req: &mut RequestHeader,
    edit: impl FnOnce(&mut crate::providers::Head) -> T,
) -> T {
    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts: crate::providers::Head = std::mem::replace(req, empty).into();
    parts.headers.reserve(ROOM);
    let out = edit(&mut parts);
    *req = RequestHeader::from(parts);
    out
}

/// A header value from text the gateway holds (a request id): checked, never a panic.
pub fn value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text).or_err(ErrorType::InvalidHTTPHeader, "invalid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_the_upstream_headers_and_write_names_case_insensitively() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("Content-Type", "application/json")
            .unwrap();
        resp.insert_header("X-Upstream-Thing", "1").unwrap();
        edit(&mut resp, |p| {
            p.headers.insert(X_REQUEST_ID, value("abc").unwrap());
        });
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers["content-type"], "application/json");
        assert_eq!(resp.headers["x-upstream-thing"], "1");
        assert_eq!(resp.headers["x-request-id"], "abc");
        let mut wire = Vec::new();
        resp.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert!(
            wire.contains("Content-Type: application/json\r\n"),
            "{wire}"
        );
        assert!(wire.contains("x-upstream-thing: 1\r\n"), "{wire}");
        assert!(wire.contains("x-request-id: abc\r\n"), "{wire}");
        // Pingora's own edits after ours still work on the case-free header.
        resp.insert_header("Connection", "close").unwrap();
        assert_eq!(resp.headers["connection"], "close");
    }

    #[test]
    fn a_value_the_header_cannot_hold_is_an_error() {
        assert!(value("a\nb").is_err());
    }
}
