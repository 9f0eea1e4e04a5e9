//! The CLI's one way into a running agent's API (`burnwatch status`, `alerts`, `silence`):
//! the `--url` accepted with or without `http://`, the bearer token (`--token-file` or
//! `BURNWATCH_TOKEN`), one bounded exchange, and one wording for every failure, so every
//! command reports an unreachable agent or a refusal the same way. The requests go through
//! the crate's one outbound client ([`HttpClient`]: connection reuse, timeouts, the token
//! marked sensitive); this module keeps only the CLI's wording and the API's JSON.

use std::path::Path;

use bytes::Bytes;
use hyper::{Method, StatusCode, Uri};
use serde_json::Value;

use crate::http_client::{ClientError, HttpClient, NoAnswer, secret_header};
use crate::secret::{Secret, SecretError, SecretValue};
use crate::time::Dur;

/// The environment variable the CLI reads the API token from when `--token-file` is absent.
pub const TOKEN_ENV: &str = "BURNWATCH_TOKEN";

/// Bound on one exchange (connect, request, whole answer).
pub const TIMEOUT: Dur = Dur::from_secs(10);

/// Largest answer read (a status table of many thousands of SLOs stays far below).
pub const MAX_ANSWER: usize = 64 << 20;

/// Why a request to the agent failed; every message names the agent's URL.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// `--url` is not an address.
    #[error("--url {0:?} is not an agent address; write host:port or http://host:port")]
    Url(String),
    /// The token could not be read.
    #[error("the API token: {0}")]
    Token(#[from] SecretError),
    /// The token cannot be sent in a header (the message does not repeat it).
    #[error("the API token holds a line break or another character a header cannot carry")]
    BadToken,
    /// The HTTP client could not be built.
    #[error("the HTTP client: {0}")]
    Client(#[from] ClientError),
    /// Nothing answered.
    #[error(
        "cannot reach the agent at {url}: {reason}; is `burnwatch run` listening there (--url)?"
    )]
    Unreachable {
        /// The agent's base URL.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// No whole answer within [`TIMEOUT`].
    #[error("{method} {url}: no answer within {TIMEOUT}")]
    Timeout {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
    },
    /// The agent answered with an error status; `message` is its own explanation.
    #[error("{method} {url}: {status}: {message}")]
    Refused {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The agent's `error` text.
        message: String,
    },
    /// The answer is not the API's JSON.
    #[error("{method} {url}: the answer ({status}) is not JSON: {reason}")]
    NotJson {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// Why.
        reason: String,
    },
}

/// The token to send: the file's content with `token_file`, else `BURNWATCH_TOKEN` when
/// set, else none.
pub fn token(token_file: Option<&Path>) -> Result<Option<SecretValue>, SecretError> {
    match token_file {
        Some(p) => Secret::File(p.to_path_buf()).resolve().map(Some),
        None if std::env::var_os(TOKEN_ENV).is_some() => {
            Secret::Env(TOKEN_ENV.to_owned()).resolve().map(Some)
        }
        None => Ok(None),
    }
}

/// A client of one agent's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `http://host:port`, no trailing slash.
    base: String,
    token: Option<SecretValue>,
    client: HttpClient,
}

impl ApiClient {
    /// A client for the agent at `url` (`127.0.0.1:9464`, `http://127.0.0.1:9464/` or
    /// `localhost:9464`; the API is plain HTTP).
    pub fn new(url: &str, token: Option<SecretValue>) -> Result<ApiClient, ApiClientError> {
        let bad = || ApiClientError::Url(url.to_owned());
        let url_text = url.trim();
        let with_scheme = if url_text.contains("://") {
            url_text.to_owned()
        } else {
            format!("http://{url_text}")
        };
        let uri: Uri = with_scheme.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") || uri.path() != "/" || uri.query().is_some() {
            return Err(bad());
        }
        let a = uri.authority().ok_or_else(bad)?;
        let port_text = a.as_str().len() > a.host().len();
        if a.host().is_empty() || a.as_str().contains('@') || (port_text && a.port_u16().is_none())
        {
            return Err(bad());
        }
        let authority = format!("{}:{}", a.host(), a.port_u16().unwrap_or(80));
        Ok(ApiClient {
            base: format!("http://{authority}"),
            token,
            client: HttpClient::new()?,
        })
    }

    /// The base URL, `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request (`path` starting with `/`), bounded by [`TIMEOUT`]: the JSON answer, or an
    /// error carrying the agent's own message for a non-2xx status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            let bearer = secret_header(&format!("Bearer {}", t.expose().trim()))
                .map_err(|_| ApiClientError::BadToken)?;
            req = req.header(hyper::header::AUTHORIZATION, bearer);
        }
        let bytes = Bytes::from(body.map(Value::to_string).unwrap_or_default());
        let req = req.body(bytes).map_err(|e| ApiClientError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let resp = match self.client.exchange(req, TIMEOUT, MAX_ANSWER).await {
            Ok(r) => r,
            Err(NoAnswer::Timeout(_)) => return Err(ApiClientError::Timeout { method, url }),
            Err(NoAnswer::Network(reason)) => {
                return Err(ApiClientError::Unreachable {
                    url: self.base.clone(),
                    reason,
                });
            }
        };
        let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let json: Result<Value, _> = serde_json::from_slice(&resp.body);
        if !status.is_success() {
            let message = json
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "no message".to_owned());
            return Err(ApiClientError::Refused {
                method,
                url,
                status,
                message,
            });
        }
        json.map_err(|e| ApiClientError::NotJson {
            method,
            url,
            status,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_or_without_scheme() {
        for (given, base) in [
            ("127.0.0.1:9464", "http://127.0.0.1:9464"),
            ("http://127.0.0.1:9464/", "http://127.0.0.1:9464"),
            ("localhost:8080", "http://localhost:8080"),
            ("http://[::1]:9464", "http://[::1]:9464"),
            ("agent.internal", "http://agent.internal:80"),
        ] {
            let c = ApiClient::new(given, None).expect(given);
            assert_eq!(c.base(), base, "{given}");
        }
        for bad in [
            "https://x:1",
            "ftp://x",
            "x:1/api",
            "",
            "http://",
            "u@x:1",
            "x:port",
        ] {
            let e = ApiClient::new(bad, None).expect_err(bad);
            assert!(e.to_string().contains("host:port"), "{bad}: {e}");
        }
    }

    /// A token with a line break used to read "cannot reach the agent": it is the token, and
    /// the message does not repeat it.
    #[tokio::test]
    async fn a_token_no_header_can_carry_is_named_without_its_value() {
        let token = SecretValue::new("s3cret\nX-Other: 1".to_owned());
        let c = ApiClient::new("127.0.0.1:9", Some(token)).expect("client");
        let e = c
            .request(Method::GET, "/api/v1/slos", None)
            .await
            .expect_err("refused before connecting");
        assert!(matches!(e, ApiClientError::BadToken), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn the_token_comes_from_the_file_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("t");
        std::fs::write(&f, "s3cret\n").expect("write");
        let t = token(Some(&f)).expect("read").expect("some");
        assert_eq!(t.expose(), "s3cret");
        let e = token(Some(&dir.path().join("missing"))).expect_err("missing");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
