//! Health-check probes (HTTP(S), TCP, DNS) and the bounded HTTP fetch the scraper uses.
//!
//! Owns the network side of a check: each [`Prober::run`] drives one connection by hand
//! (resolve with the system resolver, connect, TLS handshake with rustls, one HTTP/1.1 exchange
//! with hyper), so the [`Phases`] it reports are real wall-clock intervals, and it always returns
//! a [`ProbeOutcome`] within the probe's timeout, which covers the whole check. Nothing here
//! decides what an outcome means for an SLO; the agent feeds outcomes to the engine.
//!
//! Deliberate limits, documented in one place:
//! - HTTP/1.1 only (ALPN offers `http/1.1`), one fresh connection per check, `Connection: close`.
//! - The probe reads at most [`PROBE_BODY_CAP`] bytes of a body. A body regex is matched against
//!   the whole body, so a larger body fails as `body_too_large` when a regex is set; without a
//!   regex the check stops reading there and succeeds.
//! - With `tls_verify: false` no certificate check is made at all, expiry included: the user
//!   opted out of certificate checks. The leaf's `notAfter` is still reported in
//!   [`ProbeOutcome::cert_not_after_ms`], so expiry can be watched separately. With verification
//!   on, an expired certificate fails as `cert_expired` rather than the generic `tls`.
//! - DNS probes and host names use the system resolver (`getaddrinfo` via tokio), so
//!   `/etc/hosts` and the local resolver configuration apply.

mod cert;
mod dns;
pub(crate) mod http;
mod tcp;
pub(crate) mod tls;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::clock::wall_ms;
use crate::rules::model::{Probe, ProbeKind};
use crate::time::Dur;

pub use cert::not_after_ms as cert_not_after_ms;
pub use http::{FetchError, FetchRequest, FetchResponse};

/// Largest body an HTTP probe reads (1 MiB); see the module documentation.
pub const PROBE_BODY_CAP: usize = 1 << 20;

/// Most redirects an HTTP probe or fetch follows before failing `too_many_redirects`.
pub const MAX_REDIRECTS: u32 = 10;

/// Extra time [`Prober::run`] allows itself beyond the probe's timeout before it abandons a
/// check that is stuck somewhere no per-phase deadline reaches.
const SAFETY_SLACK: std::time::Duration = std::time::Duration::from_millis(100);

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("burnwatch/", env!("CARGO_PKG_VERSION"));

/// Where the collectors get their answers: one check, one page fetch. [`Prober`] answers over
/// the network (what `run` and `demo` use); a test can answer in process (e.g.
/// [`crate::synthetic::InProcess`]) so that the whole agent runs on tokio's paused clock, where
/// real sockets would race the simulated timeouts.
#[async_trait::async_trait]
pub trait Checker: Send + Sync {
    /// Runs one check of `probe`; returns within its timeout, never panics.
    async fn check(&self, probe: &Probe) -> ProbeOutcome;
    /// GETs `req.url` for the scraper.
    async fn fetch(&self, req: &FetchRequest<'_>) -> Result<FetchResponse, FetchError>;
}

#[async_trait::async_trait]
impl Checker for Prober {
    async fn check(&self, probe: &Probe) -> ProbeOutcome {
        self.run(probe).await
    }

    async fn fetch(&self, req: &FetchRequest<'_>) -> Result<FetchResponse, FetchError> {
        Prober::fetch(self, req).await
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// When the check started, in milliseconds since the Unix epoch (wall clock).
    pub started_ms: i64,
    /// True when every condition of the probe held.
    pub success: bool,
    /// Total time of the check in seconds (monotonic clock).
    pub duration_secs: f64,
    /// Time spent in each phase; their sum never exceeds `duration_secs`.
    pub phases: Phases,
    /// The last HTTP status received, if any.
    pub status: Option<u16>,
    /// The earliest `notAfter` (ms since the epoch) of the TLS leaf certificates seen, if any.
    pub cert_not_after_ms: Option<i64>,
    /// Why the check failed; `None` exactly when `success`.
    pub failure: Option<Failure>,
}

/// Seconds spent in each phase of a check, summed over redirects; 0.0 for a phase that did not
/// happen. Phases are disjoint intervals of the check, so they add up to at most its duration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// Name resolution.
    pub dns: f64,
    /// TCP connect.
    pub connect: f64,
    /// TLS handshake.
    pub tls: f64,
    /// From sending the request (or the TCP probe's line) to receiving the response headers
    /// (or the reply line).
    pub first_byte: f64,
    /// Reading the response body.
    pub transfer: f64,
}

impl Phases {
    /// The sum of all phases, in seconds.
    pub fn total(&self) -> f64 {
        self.dns + self.connect + self.tls + self.first_byte + self.transfer
    }

    fn slot(&mut self, phase: Phase) -> &mut f64 {
        match phase {
            Phase::Dns => &mut self.dns,
            Phase::Connect => &mut self.connect,
            Phase::Tls => &mut self.tls,
            Phase::FirstByte => &mut self.first_byte,
            Phase::Transfer => &mut self.transfer,
        }
    }
}

/// A phase of a check, named in timeout failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Name resolution.
    Dns,
    /// TCP connect.
    Connect,
    /// TLS handshake.
    Tls,
    /// Waiting for the response headers (or the TCP reply line).
    FirstByte,
    /// Reading the body.
    Transfer,
}

impl Phase {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::FirstByte => "first_byte",
            Phase::Transfer => "transfer",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check (or a fetch) failed. [`Failure::reason`] is a stable machine name for labels;
/// `Display` is the sentence for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The check did not finish within its timeout.
    #[error("timeout after {after} during {phase}")]
    Timeout {
        /// The configured timeout.
        after: Dur,
        /// The phase that was running when time ran out.
        phase: Phase,
    },
    /// Name resolution failed or gave no usable address.
    #[error("dns: {0}")]
    Dns(String),
    /// The server actively refused the connection.
    #[error("connection refused by {0}")]
    Refused(String),
    /// Any other connect failure (unreachable, reset, ...).
    #[error("connect: {0}")]
    Connect(String),
    /// TLS handshake or certificate verification failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The server's certificate has expired (verification on).
    #[error("certificate expired{}", fmt_not_after(*.not_after_ms))]
    CertExpired {
        /// The certificate's `notAfter`, ms since the epoch, when known.
        not_after_ms: Option<i64>,
    },
    /// The final status is not among the expected ones.
    #[error("status {status} (expected {expected})")]
    Status {
        /// The status received.
        status: u16,
        /// The accepted ranges, e.g. `200-299`.
        expected: String,
    },
    /// The body does not match the required regex.
    #[error("body does not match /{0}/")]
    BodyMismatch(String),
    /// The body matches the forbidden regex.
    #[error("body matches forbidden /{0}/")]
    BodyForbidden(String),
    /// The TCP reply line does not match the expected regex.
    #[error("reply {line:?} does not match /{regex}/")]
    ExpectMismatch {
        /// The first reply line (cut to 200 characters).
        line: String,
        /// The expected regex.
        regex: String,
    },
    /// More redirects than [`MAX_REDIRECTS`].
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    /// The body exceeds the limit.
    #[error("body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// An I/O error on an established connection.
    #[error("i/o: {0}")]
    Io(String),
    /// The peer broke the HTTP protocol (bad response, bad gzip, unsupported encoding).
    #[error("http: {0}")]
    Protocol(String),
    /// The check itself is malformed (bad URL, method, header, or an unreadable CA file).
    #[error("invalid check: {0}")]
    Config(String),
}

fn fmt_not_after(ms: Option<i64>) -> String {
    match ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(ts) => format!(" (notAfter {ts})"),
        None => String::new(),
    }
}

impl Failure {
    /// Stable short machine name, for labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Timeout { .. } => "timeout",
            Failure::Dns(_) => "dns",
            Failure::Refused(_) => "refused",
            Failure::Connect(_) => "connect",
            Failure::Tls(_) => "tls",
            Failure::CertExpired { .. } => "cert_expired",
            Failure::Status { .. } => "status",
            Failure::BodyMismatch(_) => "body_mismatch",
            Failure::BodyForbidden(_) => "body_forbidden",
            Failure::ExpectMismatch { .. } => "expect_mismatch",
            Failure::TooManyRedirects(_) => "too_many_redirects",
            Failure::BodyTooLarge(_) => "body_too_large",
            Failure::Io(_) => "io",
            Failure::Protocol(_) => "http",
            Failure::Config(_) => "config",
        }
    }
}

/// Why a [`Prober`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A probe's `ca_file` is unreadable, empty or not PEM certificates.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file named in the probe.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the client configuration.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
}

/// Runs checks. Build it once from the rule set's probes and share it (it is `Send + Sync`):
/// it caches one TLS client configuration per distinct `(tls_verify, ca_file)`.
pub struct Prober {
    configs: Mutex<HashMap<tls::TlsKey, Arc<ClientConfig>>>,
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Prober {
    /// Builds the TLS configurations the given probes need (plus the default verifying one the
    /// fetcher uses). A bad `ca_file` is an error naming the file. Probes added later (after a
    /// reload) still work: a missing configuration is built on first use.
    pub fn new(probes: &[Probe]) -> Result<Prober, ProbeError> {
        let mut configs = HashMap::new();
        let default_key = tls_key(true, None);
        configs.insert(default_key.clone(), tls::client_config(&default_key)?);
        for probe in probes {
            if let ProbeKind::Http(h) = &probe.kind {
                let key = tls_key(h.tls_verify, h.ca_file.as_deref());
                if let std::collections::hash_map::Entry::Vacant(slot) = configs.entry(key) {
                    let config = tls::client_config(slot.key())?;
                    slot.insert(config);
                }
            }
        }
        Ok(Prober {
            configs: Mutex::new(configs),
        })
    }

    /// Runs one check. Never panics, and returns within `probe.timeout` (plus a few
    /// milliseconds); a check cut short reports `timeout` with the phase it was in.
    pub async fn run(&self, probe: &Probe) -> ProbeOutcome {
        let started_ms = wall_ms();
        let mut clock = Clock::new(probe.timeout);
        let mut seen = Seen::default();
        let hard_deadline = clock.deadline + SAFETY_SLACK;
        let check = async {
            match &probe.kind {
                ProbeKind::Http(h) => http::probe(self, h, &mut clock, &mut seen).await,
                ProbeKind::Tcp {
                    address,
                    send,
                    expect,
                } => tcp::probe(address, send.as_deref(), expect.as_deref(), &mut clock).await,
                ProbeKind::Dns { name, record } => dns::probe(name, record, &mut clock).await,
            }
        };
        // Every await inside is bounded by the clock's deadline; this outer bound only guards
        // against a step that forgot to be.
        let result = tokio::time::timeout_at(hard_deadline, check)
            .await
            .unwrap_or(Err(Failure::Timeout {
                after: probe.timeout,
                phase: Phase::Transfer,
            }));
        let duration_secs = clock.elapsed();
        ProbeOutcome {
            started_ms,
            success: result.is_ok(),
            duration_secs,
            phases: clock.phases,
            status: seen.status,
            cert_not_after_ms: seen.cert_not_after_ms,
            failure: result.err(),
        }
    }

    /// GETs `req.url` for the scraper (see [`FetchRequest`]).
    pub async fn fetch(&self, req: &FetchRequest<'_>) -> Result<FetchResponse, FetchError> {
        http::fetch(self, req).await
    }

    /// The cached client configuration for a check, built on first use if a reload brought a
    /// new `(tls_verify, ca_file)` pair.
    fn tls_config(
        &self,
        verify: bool,
        ca_file: Option<&Path>,
    ) -> Result<Arc<ClientConfig>, Failure> {
        let key = tls_key(verify, ca_file);
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = configs.get(&key) {
            return Ok(config.clone());
        }
        let config = tls::client_config(&key).map_err(|e| Failure::Config(e.to_string()))?;
        configs.insert(key, config.clone());
        Ok(config)
    }
}

/// A CA file only matters when verifying, so `tls_verify: false` shares one configuration.
fn tls_key(verify: bool, ca_file: Option<&Path>) -> tls::TlsKey {
    tls::TlsKey {
        verify,
        ca_file: if verify {
            ca_file.map(Path::to_owned)
        } else {
            None
        },
    }
}

/// What a check observed besides success or failure.
#[derive(Debug, Default)]
struct Seen {
    status: Option<u16>,
    cert_not_after_ms: Option<i64>,
}

impl Seen {
    fn cert(&mut self, not_after: Option<i64>) {
        self.cert_not_after_ms = match (self.cert_not_after_ms, not_after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The deadline of one check and the time spent in each phase so far.
struct Clock {
    start: Instant,
    deadline: Instant,
    timeout: Dur,
    phases: Phases,
}

impl Clock {
    fn new(timeout: Dur) -> Clock {
        let start = Instant::now();
        // A check never needs more than a day; the cap keeps the deadline arithmetic finite.
        let budget = std::time::Duration::from_millis(timeout.millis().min(Dur::DAY.millis()));
        Clock {
            start,
            deadline: start + budget,
            timeout,
            phases: Phases::default(),
        }
    }

    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Runs one step of `phase` against the check's deadline, adding its time to the phase
    /// whether it finishes, fails or times out.
    async fn step<F: Future>(&mut self, phase: Phase, fut: F) -> Result<F::Output, Failure> {
        let t = Instant::now();
        let out = tokio::time::timeout_at(self.deadline, fut).await;
        *self.phases.slot(phase) += t.elapsed().as_secs_f64();
        out.map_err(|_| Failure::Timeout {
            after: self.timeout,
            phase,
        })
    }
}

/// Resolves `host` and connects to the first address that accepts, within the clock.
async fn connect_tcp(clock: &mut Clock, host: &str, port: u16) -> Result<TcpStream, Failure> {
    let addrs: Vec<SocketAddr> = clock
        .step(Phase::Dns, tokio::net::lookup_host((host, port)))
        .await?
        .map_err(|e| Failure::Dns(format!("{host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match clock.step(Phase::Connect, TcpStream::connect(addr)).await? {
            Ok(stream) => {
                // Requests are written in one piece; Nagle would only delay them.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        None => Failure::Dns(format!("{host}: no address")),
        Some((addr, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Failure::Refused(addr.to_string())
        }
        Some((addr, e)) => Failure::Connect(format!("{addr}: {e}")),
    })
}

/// Splits `host:port` (or `[v6]:port`) into a bare host and a port.
fn split_host_port(address: &str) -> Result<(&str, u16), Failure> {
    let bad = || Failure::Config(format!("address `{address}` is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splitting() {
        assert_eq!(split_host_port("db:5432"), Ok(("db", 5432)));
        assert_eq!(split_host_port("[::1]:53"), Ok(("::1", 53)));
        assert!(split_host_port("db").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("db:99999").is_err());
    }

    #[test]
    fn failure_text() {
        let f = Failure::Timeout {
            after: Dur::from_secs(2),
            phase: Phase::Connect,
        };
        assert_eq!(f.to_string(), "timeout after 2s during connect");
        assert_eq!(f.reason(), "timeout");
        let f = Failure::Status {
            status: 503,
            expected: "200-299".to_owned(),
        };
        assert_eq!(f.to_string(), "status 503 (expected 200-299)");
        let f = Failure::CertExpired {
            not_after_ms: Some(1_577_836_800_000),
        };
        assert_eq!(
            f.to_string(),
            "certificate expired (notAfter 2020-01-01T00:00:00Z)"
        );
        assert_eq!(f.reason(), "cert_expired");
    }

    #[test]
    fn seen_keeps_earliest_certificate() {
        let mut seen = Seen::default();
        seen.cert(None);
        assert_eq!(seen.cert_not_after_ms, None);
        seen.cert(Some(20));
        seen.cert(Some(10));
        seen.cert(None);
        seen.cert(Some(30));
        assert_eq!(seen.cert_not_after_ms, Some(10));
    }
}
