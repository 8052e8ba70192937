//! Just enough HTTP/1.1 for a loopback benchmark: a bounded request reader for the replicas and
//! a response reader (Content-Length, chunked, or until close) for the load generator.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub enum ReadError {
    Io,
    /// Head over 64 KiB (431) or body over the cap (413).
    TooLarge(u16),
    Malformed,
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> ReadError {
        ReadError::Io
    }
}

async fn fill<R: AsyncRead + Unpin>(sock: &mut R, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 16384];
    let n = sock.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Read one request; `None` on a clean close (or an idle connection past `idle`).
pub async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
    max_body: usize,
    idle: Duration,
) -> Result<Option<Request>, ReadError> {
    let end = loop {
        if let Some(p) = memchr::memmem::find(buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::TooLarge(431));
        }
        match tokio::time::timeout(idle, fill(sock, buf)).await {
            Err(_) | Ok(Ok(0)) => return Ok(None),
            Ok(r) => r?,
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ReadError::Malformed)?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().ok_or(ReadError::Malformed)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    buf.drain(..end + 4);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| ReadError::Malformed)?;
        if len > max_body {
            return Err(ReadError::TooLarge(413));
        }
        while buf.len() < len {
            if fill(sock, buf).await? == 0 {
                return Err(ReadError::Malformed);
            }
        }
        buf.drain(..len).collect()
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            match dechunk(buf, &mut body)? {
                Dechunk::Done => break body,
                Dechunk::More => {
                    if body.len() > max_body {
                        return Err(ReadError::TooLarge(413));
                    }
                    if fill(sock, buf).await? == 0 {
                        return Err(ReadError::Malformed);
                    }
                }
            }
        }
    } else {
        Vec::new()
    };
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

pub enum Dechunk {
    More,
    Done,
}

/// Move every complete chunk of `buf` into `out`; `Done` after the last (0-size) chunk.
pub fn dechunk(buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<Dechunk, ReadError> {
    loop {
        let Some(eol) = memchr::memmem::find(buf, b"\r\n") else {
            return if buf.len() > 1024 {
                Err(ReadError::Malformed)
            } else {
                Ok(Dechunk::More)
            };
        };
        let line = std::str::from_utf8(&buf[..eol]).map_err(|_| ReadError::Malformed)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ReadError::Malformed)?;
        if buf.len() < eol + 2 + size + 2 {
            return Ok(Dechunk::More);
        }
        if size == 0 {
            buf.drain(..eol + 4);
            return Ok(Dechunk::Done);
        }
        out.extend_from_slice(&buf[eol + 2..eol + 2 + size]);
        buf.drain(..eol + 2 + size + 2);
    }
}

pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

pub async fn write_whole(
    sock: &mut TcpStream,
    code: u16,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    sock.write_all(&out).await
}

/// An OpenAI-style error body.
pub fn error_body(code: u16, kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        .to_string()
        .into_bytes()
}

/// Frame `data` as one HTTP chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// `http://host:port[/...]` → `host:port` (the load generator always posts to
/// `/v1/chat/completions`).
pub fn authority(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs"))?;
    let auth = rest.split('/').next().unwrap_or("");
    if !auth.contains(':') {
        return Err(format!("`{url}`: give the port"));
    }
    Ok(auth.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_handles_partial_input() {
        let mut buf = b"5\r\nhello\r\n3\r\nabc".to_vec();
        let mut out = Vec::new();
        assert!(matches!(
            dechunk(&mut buf, &mut out).unwrap(),
            Dechunk::More
        ));
        assert_eq!(out, b"hello");
        buf.extend_from_slice(b"\r\n0\r\n\r\n");
        assert!(matches!(
            dechunk(&mut buf, &mut out).unwrap(),
            Dechunk::Done
        ));
        assert_eq!(out, b"helloabc");
        assert!(buf.is_empty());
    }

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            authority("http://127.0.0.1:8080/v1").unwrap(),
            "127.0.0.1:8080"
        );
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x").is_err());
    }
}
