//! A minimal HTTP/1.1 `POST` over `std::net::TcpStream`, for the OpenLineage
//! sender. Plain `http://` only: nothing in the dependency tree offers a
//! blocking client with TLS at no extra compile cost (ureq is there, but only
//! as a build dependency of DuckDB, compiled with other settings), and a
//! lineage collector (Marquez) usually sits next to the run in the cluster.
//! Every step has a deadline: connect, write and read each time out.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A parsed `http://host[:port]/path` endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses an endpoint URL. `https://` is refused with a clear message.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "`{url}`: https:// lineage endpoints are not supported yet (floe-host sends plain http://; \
                     put a TLS-terminating proxy or the collector's in-cluster http:// address in lineage_endpoint)"
                ));
            }
            _ => return Err(format!("`{url}` is not an http:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("`{url}`: credentials in the URL are not supported"));
        }
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let (host, port) = match authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
            Some((v6, rest)) => (v6, rest.strip_prefix(':')),
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(port) => port.parse().map_err(|_| format!("`{url}`: bad port `{port}`"))?,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(Endpoint { host: host.to_string(), port, path: path.to_string() })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Why a POST did not get a 2xx answer.
#[derive(Debug)]
pub enum PostError {
    /// Connecting, writing or reading failed or timed out: worth a retry.
    Transport(String),
    /// The server answered with this status.
    Status(u16, String),
}

impl PostError {
    /// Whether another attempt may succeed (transport errors, 429 and 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            PostError::Transport(_) => true,
            PostError::Status(code, _) => *code == 429 || *code >= 500,
        }
    }
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Transport(e) => write!(f, "{e}"),
            PostError::Status(code, line) => write!(f, "HTTP {code} ({line})"),
        }
    }
}

/// POSTs `body` as JSON. `connect` bounds each connection attempt, `io` each
/// write and read.
pub fn post_json(endpoint: &Endpoint, body: &str, connect: Duration, io: Duration) -> Result<u16, PostError> {
    let addrs = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| PostError::Transport(format!("cannot resolve {}: {e}", endpoint.host)))?;
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, connect) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
        }
    }
    let mut stream = stream
        .ok_or_else(|| PostError::Transport(last.unwrap_or_else(|| format!("{} has no address", endpoint.host))))?;
    let transport = |what: &str, e: std::io::Error| {
        let timed_out = matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        PostError::Transport(if timed_out {
            format!("{what} timed out after {:?}", io)
        } else {
            format!("{what} failed: {e}")
        })
    };
    stream.set_read_timeout(Some(io)).map_err(|e| transport("setting the read timeout", e))?;
    stream.set_write_timeout(Some(io)).map_err(|e| transport("setting the write timeout", e))?;
    let _ = stream.set_nodelay(true);
    let name = if endpoint.host.contains(':') { format!("[{}]", endpoint.host) } else { endpoint.host.clone() };
    let host = if endpoint.port == 80 { name } else { format!("{name}:{}", endpoint.port) };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: floe-host/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .and_then(|()| stream.flush())
        .map_err(|e| transport("sending the request", e))?;
    // Only the status line matters; read until it is complete.
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") && response.len() < 8192 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(transport("waiting for the response", e)),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let line = text.lines().next().unwrap_or("").trim().to_string();
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| PostError::Transport(format!("no HTTP status line in the response ({:?})", line)))?;
    if (200..300).contains(&code) { Ok(code) } else { Err(PostError::Status(code, line)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("http://marquez:5000/api/v1/lineage").unwrap();
        assert_eq!(e, Endpoint { host: "marquez".into(), port: 5000, path: "/api/v1/lineage".into() });
        let e = Endpoint::parse("http://collector").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
        let err = Endpoint::parse("https://marquez/api/v1/lineage").unwrap_err();
        assert!(err.contains("not supported yet"), "{err}");
        assert!(Endpoint::parse("marquez:5000").is_err());
    }
}
