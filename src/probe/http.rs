//! HTTP(S) checks and the scraper's fetch: one hand-driven HTTP/1.1 exchange per hop.
//!
//! A hop is resolve -> connect -> (TLS) -> hyper's HTTP/1 client handshake -> request -> response
//! headers -> body. hyper's connection future is polled alongside whatever the check is waiting
//! on (see [`Driver`]) instead of being spawned, so dropping a check drops its connection and no
//! task outlives it.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use super::tls::ClientStream;
use super::{
    Clock, Failure, MAX_REDIRECTS, PROBE_BODY_CAP, Phase, Phases, Prober, Seen, USER_AGENT, cert,
    connect_tcp, tls,
};
use crate::rules::model::{HttpProbe, StatusRange};
use crate::time::Dur;

/// A parsed `http://` or `https://` URL, ready to connect to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// `https`.
    pub(crate) tls: bool,
    /// Host without IPv6 brackets, for resolution and SNI.
    pub(crate) host: String,
    /// The port, defaulted from the scheme.
    pub(crate) port: u16,
    /// `Host` header value: host as written, plus the port when it is not the default.
    pub(crate) host_header: String,
    /// Origin-form request target (`/path?query`).
    pub(crate) path: String,
}

/// Parses an `http(s)` URL (also used by the notification client, [`crate::notify::webhook`]).
pub(crate) fn parse_url(url: &str) -> Result<Target, Failure> {
    let bad = |why: &str| Failure::Config(format!("URL `{url}`: {why}"));
    // The fragment is never sent; http::Uri refuses it, so cut it first.
    let no_fragment = url.split('#').next().unwrap_or(url);
    let uri: Uri = no_fragment.parse().map_err(|e| bad(&format!("{e}")))?;
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        _ => return Err(bad("must start with http:// or https://")),
    };
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let raw_host = authority.host();
    let host = raw_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(raw_host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let default_port = if tls { 443 } else { 80 };
    let port = authority.port_u16().unwrap_or(default_port);
    let host_header = if port == default_port {
        raw_host.to_owned()
    } else {
        format!("{raw_host}:{port}")
    };
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        Some(p) if p.starts_with('/') => p.to_owned(),
        Some(p) if !p.is_empty() => format!("/{p}"),
        _ => "/".to_owned(),
    };
    Ok(Target {
        tls,
        host: host.to_owned(),
        port,
        host_header,
        path,
    })
}

/// Resolves a `Location` header against the URL it came from (RFC 3986 section 5.2, without
/// fragments, which are never sent).
fn resolve_location(base: &str, location: &str) -> Result<String, Failure> {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or(location);
    if has_scheme(location) {
        return Ok(location.to_owned());
    }
    let base_uri: Uri = base
        .split('#')
        .next()
        .unwrap_or(base)
        .parse()
        .map_err(|e| Failure::Config(format!("URL `{base}`: {e}")))?;
    let scheme = base_uri.scheme_str().unwrap_or("http");
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    let authority = base_uri.authority().map_or("", |a| a.as_str());
    let base_path = match base_uri.path() {
        "" => "/",
        p => p,
    };
    let (path, query) = if location.is_empty() {
        (base_path.to_owned(), base_uri.query().map(str::to_owned))
    } else if let Some(q) = location.strip_prefix('?') {
        (base_path.to_owned(), Some(q.to_owned()))
    } else {
        let (loc_path, loc_query) = match location.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (location, None),
        };
        let merged = if loc_path.starts_with('/') {
            loc_path.to_owned()
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{loc_path}")
        };
        (remove_dot_segments(&merged), loc_query)
    };
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    })
}

/// True when `s` starts with `scheme:` (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 section 5.2.4 for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    // The first segment is the empty one before the leading '/'.
    for (i, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        // A trailing "." or ".." names a directory, so the path keeps its final '/'.
        if i == last && matches!(*seg, "." | "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<ClientStream>, Full<Bytes>>;

/// Polls hyper's connection future alongside the future a check is waiting on, so one task
/// drives both and nothing needs spawning.
struct Driver {
    conn: Pin<Box<Connection>>,
    /// Kept so hyper does not start closing the connection before the body is read.
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    done: bool,
    /// Why the connection ended, when it ended in error: a better message than the
    /// "connection closed" the request side then sees.
    error: Option<Failure>,
}

impl Driver {
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        loop {
            if self.done {
                return fut.await;
            }
            tokio::select! {
                biased;
                out = &mut fut => return out,
                res = self.conn.as_mut() => {
                    self.done = true;
                    if let Err(e) = res {
                        self.error = Some(hyper_failure(&e));
                    }
                }
            }
        }
    }

    fn failure(&mut self, e: &hyper::Error) -> Failure {
        self.error.take().unwrap_or_else(|| hyper_failure(e))
    }

    /// The next piece of body data, or `None` at the end.
    async fn chunk(
        &mut self,
        clock: &mut Clock,
        body: &mut Incoming,
    ) -> Result<Option<Bytes>, Failure> {
        loop {
            match clock
                .step(Phase::Transfer, self.drive(body.frame()))
                .await?
            {
                None => return Ok(None),
                Some(Err(e)) => return Err(self.failure(&e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                    // Trailers carry nothing a check looks at.
                }
            }
        }
    }
}

/// Classifies a hyper error, walking its sources for an I/O cause.
fn hyper_failure(e: &hyper::Error) -> Failure {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    let mut io = false;
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        io |= s.is::<std::io::Error>();
        source = s.source();
    }
    if io || e.is_incomplete_message() || e.is_closed() {
        Failure::Io(text)
    } else {
        Failure::Protocol(text)
    }
}

/// What one hop sends.
struct Hop<'a> {
    method: &'a Method,
    target: &'a Target,
    headers: &'a HeaderMap,
    body: Bytes,
    tls: Option<Arc<ClientConfig>>,
}

/// Connects and sends one request; returns the response head and the driver needed to read
/// its body.
async fn exchange(
    hop: Hop<'_>,
    clock: &mut Clock,
    seen: &mut Seen,
) -> Result<(Response<Incoming>, Driver), Failure> {
    let target = hop.target;
    let tcp = connect_tcp(clock, &target.host, target.port).await?;
    let stream = match hop.tls {
        None => ClientStream::Plain(tcp),
        Some(config) => {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| Failure::Config(format!("host `{}`: {e}", target.host)))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let tls = clock
                .step(Phase::Tls, connector.connect(name, tcp))
                .await?
                .map_err(|e| tls::handshake_failure(&e))?;
            seen.cert(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|leaf| cert::not_after_ms(leaf)),
            );
            ClientStream::Tls(Box::new(tls))
        }
    };
    let mut req = Request::builder()
        .method(hop.method.clone())
        .uri(target.path.as_str())
        .body(Full::new(hop.body))
        .map_err(|e| Failure::Config(e.to_string()))?;
    let headers = req.headers_mut();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&target.host_header)
            .map_err(|e| Failure::Config(format!("host `{}`: {e}", target.host_header)))?,
    );
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in hop.headers {
        headers.insert(name.clone(), value.clone());
    }
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e))?;
    let mut driver = Driver {
        conn: Box::pin(conn),
        sender: None,
        done: false,
        error: None,
    };
    let response = clock
        .step(Phase::FirstByte, driver.drive(sender.send_request(req)))
        .await?;
    driver.sender = Some(sender);
    let response = response.map_err(|e| driver.failure(&e))?;
    Ok((response, driver))
}

/// Parses configured headers once per check.
fn header_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap, Failure> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let bad = |e: &dyn std::fmt::Display| Failure::Config(format!("header `{name}`: {e}"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Where a redirect response points, if it is one (301, 302, 303, 307, 308 with a Location).
fn redirect_target(url: &str, response: &Response<Incoming>) -> Result<Option<String>, Failure> {
    if !matches!(response.status().as_u16(), 301..=303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| Failure::Protocol("Location header is not ASCII".to_owned()))?;
    resolve_location(url, location).map(Some)
}

/// Follows redirects from `url` and returns the final response with its driver.
///
/// 301, 302 and 303 turn the request into a body-less GET (HEAD stays HEAD), as browsers do;
/// 307 and 308 repeat it as is. A configured `Host` header only applies to the first hop, since
/// a redirect may lead to another host.
async fn follow(
    prober: &Prober,
    first: FirstHop<'_>,
    clock: &mut Clock,
    seen: &mut Seen,
) -> Result<(Response<Incoming>, Driver), Failure> {
    let mut url = first.url.to_owned();
    let mut method = first.method;
    let mut body = first.body;
    let mut headers = first.headers;
    let mut redirects = 0;
    loop {
        let target = parse_url(&url)?;
        let tls = if target.tls {
            Some(prober.tls_config(first.tls_verify, first.ca_file)?)
        } else {
            None
        };
        let hop = Hop {
            method: &method,
            target: &target,
            headers: &headers,
            body: body.clone(),
            tls,
        };
        let (response, driver) = exchange(hop, clock, seen).await?;
        seen.status = Some(response.status().as_u16());
        let next = if first.follow_redirects {
            redirect_target(&url, &response)?
        } else {
            None
        };
        let Some(next) = next else {
            return Ok((response, driver));
        };
        if redirects >= MAX_REDIRECTS {
            return Err(Failure::TooManyRedirects(MAX_REDIRECTS));
        }
        redirects += 1;
        if matches!(response.status().as_u16(), 301..=303) && method != Method::HEAD {
            method = Method::GET;
            body = Bytes::new();
        }
        headers.remove(header::HOST);
        url = next;
    }
}

/// The first request of a check, before redirects.
struct FirstHop<'a> {
    url: &'a str,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    follow_redirects: bool,
    tls_verify: bool,
    ca_file: Option<&'a std::path::Path>,
}

/// `lo-hi` ranges joined by commas (`200` when lo == hi).
fn describe_ranges(ranges: &[StatusRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            if r.lo == r.hi {
                r.lo.to_string()
            } else {
                format!("{}-{}", r.lo, r.hi)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

const DEFAULT_STATUS: [StatusRange; 1] = [StatusRange { lo: 200, hi: 299 }];

/// Runs an HTTP probe (see the module documentation of [`super`] for the body cap and TLS
/// rules).
pub(super) async fn probe(
    prober: &Prober,
    p: &HttpProbe,
    clock: &mut Clock,
    seen: &mut Seen,
) -> Result<(), Failure> {
    let method = Method::from_bytes(p.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| Failure::Config(format!("method `{}`: {e}", p.method)))?;
    let first = FirstHop {
        url: &p.url,
        method,
        headers: header_map(p.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        body: p.body.clone().map(Bytes::from).unwrap_or_default(),
        follow_redirects: p.follow_redirects,
        tls_verify: p.tls_verify,
        ca_file: p.ca_file.as_deref(),
    };
    let (response, mut driver) = follow(prober, first, clock, seen).await?;
    judge_status(p, response.status().as_u16())?;
    let matching = p.body_matches.is_some() || p.body_not_matches.is_some();
    let mut body = response.into_body();
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Some(chunk) = driver.chunk(clock, &mut body).await? {
        read = read.saturating_add(chunk.len());
        if read > PROBE_BODY_CAP {
            if matching {
                return Err(Failure::BodyTooLarge(PROBE_BODY_CAP as u64));
            }
            break;
        }
        if matching {
            kept.extend_from_slice(&chunk);
        }
    }
    if matching {
        judge_body(p, &kept)?;
    }
    Ok(())
}

/// The probe's status condition (`expect_status`, default 2xx) on a final status.
pub fn judge_status(p: &HttpProbe, status: u16) -> Result<(), Failure> {
    let expected: &[StatusRange] = if p.expect_status.is_empty() {
        &DEFAULT_STATUS
    } else {
        &p.expect_status
    };
    if expected.iter().any(|r| (r.lo..=r.hi).contains(&status)) {
        Ok(())
    } else {
        Err(Failure::Status {
            status,
            expected: describe_ranges(expected),
        })
    }
}

/// The probe's body conditions (`body_matches`, `body_not_matches`) on a whole body.
pub fn judge_body(p: &HttpProbe, body: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(body);
    if let Some(re) = &p.body_matches
        && !re.is_match(&text)
    {
        return Err(Failure::BodyMismatch(re.as_str().to_owned()));
    }
    if let Some(re) = &p.body_not_matches
        && re.is_match(&text)
    {
        return Err(Failure::BodyForbidden(re.as_str().to_owned()));
    }
    Ok(())
}

/// A GET for the scraper.
#[derive(Debug, Clone)]
pub struct FetchRequest<'a> {
    /// `http://` or `https://` URL.
    pub url: &'a str,
    /// Extra request headers (e.g. `Accept`); they override the defaults.
    pub headers: &'a [(&'a str, &'a str)],
    /// Give-up time for the whole fetch, redirects and body included.
    pub timeout: Dur,
    /// Largest accepted body in bytes, after decompression; a larger body is an error and is
    /// not read further.
    pub body_limit: u64,
    /// Verify the server certificate (default true).
    pub tls_verify: bool,
    /// Extra CA bundle (PEM) to trust.
    pub ca_file: Option<&'a std::path::Path>,
}

impl<'a> FetchRequest<'a> {
    /// A fetch with no extra headers and TLS verification against the Mozilla roots.
    pub fn new(url: &'a str, timeout: Dur, body_limit: u64) -> FetchRequest<'a> {
        FetchRequest {
            url,
            headers: &[],
            timeout,
            body_limit,
            tls_verify: true,
            ca_file: None,
        }
    }
}

/// A fetched page. Any status is returned as is (redirects followed); judging it is the
/// caller's business.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// The final HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if present and ASCII.
    pub content_type: Option<String>,
    /// The body, gzip already undone.
    pub body: Bytes,
    /// Time spent in each phase.
    pub phases: Phases,
    /// Total time of the fetch in seconds.
    pub duration_secs: f64,
}

/// A failed fetch: why, and how far it got.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{failure}")]
pub struct FetchError {
    /// What went wrong; [`Failure::reason`] gives the machine name.
    pub failure: Failure,
    /// Time spent in each phase before the failure.
    pub phases: Phases,
    /// The status, when a response head arrived before the failure.
    pub status: Option<u16>,
}

impl FetchError {
    /// Stable short machine name, as [`Failure::reason`].
    pub fn reason(&self) -> &'static str {
        self.failure.reason()
    }
}

/// Collects body bytes up to a limit, refusing (with an error) the write that would pass it.
struct Limited {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() > self.limit - self.buf.len() {
            self.exceeded = true;
            return Err(std::io::Error::other("body limit exceeded"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(Limited),
    Gzip(Box<flate2::write::GzDecoder<Limited>>),
}

impl Decoder {
    fn write(&mut self, chunk: &[u8], limit: u64) -> Result<(), Failure> {
        let (res, sink) = match self {
            Decoder::Identity(sink) => (sink.write_all(chunk), &*sink),
            Decoder::Gzip(dec) => {
                let res = dec.write_all(chunk);
                (res, dec.get_ref())
            }
        };
        res.map_err(|e| body_error(e, sink.exceeded, limit))
    }

    fn finish(self, limit: u64) -> Result<Vec<u8>, Failure> {
        match self {
            Decoder::Identity(sink) => Ok(sink.buf),
            Decoder::Gzip(mut dec) => {
                if let Err(e) = dec.try_finish() {
                    return Err(body_error(e, dec.get_ref().exceeded, limit));
                }
                dec.finish()
                    .map(|sink| sink.buf)
                    .map_err(|e| Failure::Protocol(format!("gzip: {e}")))
            }
        }
    }
}

fn body_error(e: std::io::Error, exceeded: bool, limit: u64) -> Failure {
    if exceeded {
        Failure::BodyTooLarge(limit)
    } else {
        Failure::Protocol(format!("gzip: {e}"))
    }
}

/// Runs a fetch (see [`Prober::fetch`]).
pub(super) async fn fetch(
    prober: &Prober,
    req: &FetchRequest<'_>,
) -> Result<FetchResponse, FetchError> {
    let mut clock = Clock::new(req.timeout);
    let mut seen = Seen::default();
    let hard_deadline = clock.deadline + super::SAFETY_SLACK;
    let result =
        tokio::time::timeout_at(hard_deadline, fetch_in(prober, req, &mut clock, &mut seen))
            .await
            .unwrap_or(Err(Failure::Timeout {
                after: req.timeout,
                phase: Phase::Transfer,
            }));
    match result {
        Ok((status, content_type, body)) => Ok(FetchResponse {
            status,
            content_type,
            body,
            phases: clock.phases,
            duration_secs: clock.elapsed(),
        }),
        Err(failure) => Err(FetchError {
            failure,
            phases: clock.phases,
            status: seen.status,
        }),
    }
}

async fn fetch_in(
    prober: &Prober,
    req: &FetchRequest<'_>,
    clock: &mut Clock,
    seen: &mut Seen,
) -> Result<(u16, Option<String>, Bytes), Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    for (name, value) in header_map(req.headers.iter().copied())? {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
    let first = FirstHop {
        url: req.url,
        method: Method::GET,
        headers,
        body: Bytes::new(),
        follow_redirects: true,
        tls_verify: req.tls_verify,
        ca_file: req.ca_file,
    };
    let (response, mut driver) = follow(prober, first, clock, seen).await?;
    let status = response.status().as_u16();
    let head = response.headers();
    let content_type = head
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = req.body_limit;
    let sink = Limited {
        buf: Vec::new(),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        exceeded: false,
    };
    let encoding = head
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let mut decoder = match encoding.as_deref() {
        None | Some("" | "identity") => {
            let declared = head
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // Refuse a declared oversize body without reading any of it.
            if declared.is_some_and(|n| n > limit) {
                return Err(Failure::BodyTooLarge(limit));
            }
            Decoder::Identity(sink)
        }
        Some("gzip" | "x-gzip") => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(sink))),
        Some(other) => {
            return Err(Failure::Protocol(format!(
                "unsupported content-encoding `{other}`"
            )));
        }
    };
    // Deflate never expands data by more than a few bytes per 16 KiB block, so compressed
    // input beyond this cannot decode within the limit: stop reading it early.
    let wire_cap = limit.saturating_add(limit / 64).saturating_add(4096);
    let mut wire = 0u64;
    let mut body = response.into_body();
    while let Some(chunk) = driver.chunk(clock, &mut body).await? {
        wire = wire.saturating_add(chunk.len() as u64);
        if wire > wire_cap {
            return Err(Failure::BodyTooLarge(limit));
        }
        decoder.write(&chunk, limit)?;
    }
    let body = decoder.finish(limit)?;
    Ok((status, content_type, Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://example.com/a?b=1#frag").unwrap();
        assert_eq!(
            t,
            Target {
                tls: true,
                host: "example.com".into(),
                port: 443,
                host_header: "example.com".into(),
                path: "/a?b=1".into(),
            }
        );
        let t = parse_url("http://[::1]:8080").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.host_header, "[::1]:8080");
        assert_eq!(t.path, "/");
        let t = parse_url("HTTP://h:80/x").unwrap();
        assert_eq!((t.tls, t.host_header.as_str()), (false, "h"));
        assert_eq!(parse_url("ftp://h/").unwrap_err().reason(), "config");
        assert_eq!(parse_url("/relative").unwrap_err().reason(), "config");
    }

    #[test]
    fn locations() {
        let base = "http://h:81/a/b/c?q=1";
        let cases = [
            ("https://other/x", "https://other/x"),
            ("//other:9/y", "http://other:9/y"),
            ("/abs?z", "http://h:81/abs?z"),
            ("d", "http://h:81/a/b/d"),
            ("../d", "http://h:81/a/d"),
            ("../../../../d", "http://h:81/d"),
            ("./", "http://h:81/a/b/"),
            ("..", "http://h:81/a/"),
            ("?r=2", "http://h:81/a/b/c?r=2"),
            ("", "http://h:81/a/b/c?q=1"),
            ("d#frag", "http://h:81/a/b/d"),
            ("g;x=1/./y", "http://h:81/a/b/g;x=1/y"),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve_location(base, loc).unwrap(), want, "{loc}");
        }
        assert_eq!(
            resolve_location("http://h", "x").unwrap(),
            "http://h/x",
            "a base without a path has the root as its directory"
        );
    }

    #[test]
    fn ranges_text() {
        let r = [
            StatusRange { lo: 200, hi: 299 },
            StatusRange { lo: 404, hi: 404 },
        ];
        assert_eq!(describe_ranges(&r), "200-299,404");
    }

    #[test]
    fn limited_sink_accepts_exactly_the_limit() {
        let mut d = Decoder::Identity(Limited {
            buf: Vec::new(),
            limit: 4,
            exceeded: false,
        });
        d.write(b"ab", 4).unwrap();
        d.write(b"cd", 4).unwrap();
        assert_eq!(d.write(b"e", 4).unwrap_err(), Failure::BodyTooLarge(4));
    }

    #[test]
    fn gzip_roundtrip_and_corruption() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello gzip").unwrap();
        let gz = enc.finish().unwrap();
        let new = || {
            Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(Limited {
                buf: Vec::new(),
                limit: 100,
                exceeded: false,
            })))
        };
        let mut d = new();
        for piece in gz.chunks(3) {
            d.write(piece, 100).unwrap();
        }
        assert_eq!(d.finish(100).unwrap(), b"hello gzip");
        // A flipped CRC byte must not pass as a good body.
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xFF;
        let mut d = new();
        let res = d.write(&bad, 100).and_then(|()| d.finish(100).map(|_| ()));
        assert_eq!(res.unwrap_err().reason(), "http");
        // A truncated stream is an error too.
        let mut d = new();
        let res = d
            .write(&gz[..gz.len() - 4], 100)
            .and_then(|()| d.finish(100).map(|_| ()));
        assert_eq!(res.unwrap_err().reason(), "http");
    }
}
