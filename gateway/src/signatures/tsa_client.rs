//! RFC 3161 over HTTP (§3.4): one POST of `application/timestamp-query`,
//! one `application/timestamp-reply` back, on a connection of its own.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;

/// A TSA reply is a token with a certificate chain: kilobytes. More is
/// not a TSA.
const MAX_REPLY_BYTES: usize = 256 * 1024;

/// Where the TSA listens, checked when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsaUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl TsaUrl {
    pub fn parse(text: &str) -> Result<TsaUrl, String> {
        let uri: Uri = text.parse().map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{text:?}: only http:// (RFC 3161 tokens are signed; the request holds a hash)"));
        }
        let host = uri.host().ok_or_else(|| format!("{text:?} names no host"))?.to_owned();
        let path = uri.path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
        Ok(TsaUrl { host, port: uri.port_u16().unwrap_or(80), path })
    }
}

/// Sends `query` and returns the reply's body; every failure is a sentence
/// for the log and the `timestamp_unavailable` refusal.
pub async fn post(url: &TsaUrl, query: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", url.host, url.port))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let request = Request::post(url.path.as_str())
            .header(HOST, format!("{}:{}", url.host, url.port))
            .header(CONTENT_TYPE, "application/timestamp-query")
            .body(Full::new(Bytes::from(query)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("no answer: {e}"))?;
        let status = response.status();
        let kind = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        driver.abort();
        if !status.is_success() {
            return Err(format!("the TSA answered HTTP {status}"));
        }
        if !kind.starts_with("application/timestamp-reply") {
            return Err(format!("the TSA answered {kind:?}, not application/timestamp-reply"));
        }
        Ok(body.to_vec())
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

#[cfg(test)]
mod tests {
    use super::TsaUrl;

    #[test]
    fn only_plain_http_urls_with_a_host() {
        let u = TsaUrl::parse("http://tsa.example:3180/tsa").unwrap();
        assert_eq!(u, TsaUrl { host: "tsa.example".into(), port: 3180, path: "/tsa".into() });
        assert_eq!(TsaUrl::parse("http://127.0.0.1").unwrap().port, 80);
        assert_eq!(TsaUrl::parse("http://127.0.0.1").unwrap().path, "/");
        for bad in ["https://tsa.example/", "tsa.example", "ftp://x/", "http:///nohost", ""] {
            assert!(TsaUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
