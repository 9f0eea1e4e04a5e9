//! The synthetic service answering the agent's collectors in process: no sockets, no real time.
//!
//! Real loopback sockets and tokio's paused clock do not mix: while a peer's answer is on its
//! way, the idle runtime jumps the clock to the next timer, and timeouts fire that never would.
//! So a test that runs the whole agent on paused time hands it an [`InProcess`] as its
//! [`Checker`]: a scrape of `{base}/metrics` gets the service's exposition, an HTTP probe of
//! `{base}/healthz` its health answer, judged by the probe's conditions exactly as the network
//! prober judges them. Everything else about the agent (parsing, matching, the engine,
//! alerting, delivery) is the production code.

use bytes::Bytes;

use super::Service;
use crate::probe::http::{judge_body, judge_status};
use crate::probe::{Checker, Failure, FetchError, FetchRequest, FetchResponse, ProbeOutcome};
use crate::rules::model::{Probe, ProbeKind};

/// A [`Service`] reachable at `base` (e.g. `http://shop.test`) without a network.
#[derive(Debug, Clone)]
pub struct InProcess {
    base: String,
    service: Service,
}

impl InProcess {
    /// Answers for `service` at `base` (scheme and authority, no trailing slash).
    pub fn new(base: impl Into<String>, service: Service) -> InProcess {
        InProcess {
            base: base.into(),
            service,
        }
    }

    /// The status, content type and body the service's HTTP routes give a GET of `url`; an
    /// address that is not the service's is refused, as a closed port is.
    fn get(&self, url: &str) -> Result<(u16, &'static str, Bytes), Failure> {
        let path = url
            .strip_prefix(self.base.as_str())
            .ok_or_else(|| Failure::Refused(url.to_owned()))?;
        Ok(match path {
            "/metrics" => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(self.service.stats().to_prometheus()),
            ),
            "/healthz" if self.service.behaviour().health_down => {
                (503, "text/plain", Bytes::from_static(b"down\n"))
            }
            "/healthz" => (200, "text/plain", Bytes::from_static(b"ok\n")),
            _ => (404, "text/plain", Bytes::from_static(b"not found\n")),
        })
    }
}

#[async_trait::async_trait]
impl Checker for InProcess {
    async fn check(&self, probe: &Probe) -> ProbeOutcome {
        let (status, failure) = match &probe.kind {
            ProbeKind::Http(h) if h.method.eq_ignore_ascii_case("GET") => match self.get(&h.url) {
                Ok((status, _, body)) => (
                    Some(status),
                    judge_status(h, status)
                        .and_then(|()| judge_body(h, &body))
                        .err(),
                ),
                Err(f) => (None, Some(f)),
            },
            ProbeKind::Http(h) => (None, Some(Failure::Refused(h.url.clone()))),
            ProbeKind::Tcp { address, .. } => (None, Some(Failure::Refused(address.clone()))),
            ProbeKind::Dns { name, .. } => (None, Some(Failure::Dns(name.clone()))),
        };
        ProbeOutcome {
            // The collector stamps the start with the agent's clock.
            started_ms: 0,
            success: failure.is_none(),
            duration_secs: 0.0,
            phases: Default::default(),
            status,
            cert_not_after_ms: None,
            failure,
        }
    }

    async fn fetch(&self, req: &FetchRequest<'_>) -> Result<FetchResponse, FetchError> {
        let fail = |failure, status| FetchError {
            failure,
            phases: Default::default(),
            status,
        };
        let (status, content_type, body) = self.get(req.url).map_err(|f| fail(f, None))?;
        if body.len() as u64 > req.body_limit {
            return Err(fail(Failure::BodyTooLarge(req.body_limit), Some(status)));
        }
        Ok(FetchResponse {
            status,
            content_type: Some(content_type.to_owned()),
            body,
            phases: Default::default(),
            duration_secs: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Behaviour;
    use crate::time::Dur;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    #[test]
    fn answers_metrics_and_health_and_refuses_other_hosts() {
        rt().block_on(async {
            let svc = Service::new(Behaviour::healthy());
            let src = InProcess::new("http://shop.test", svc.clone());
            assert_eq!(svc.request().await, 200);
            let page = src
                .fetch(&FetchRequest::new(
                    "http://shop.test/metrics",
                    Dur::from_secs(1),
                    1 << 20,
                ))
                .await
                .expect("page");
            assert_eq!(page.status, 200);
            let text = String::from_utf8(page.body.to_vec()).expect("utf-8");
            assert_eq!(text, svc.stats().to_prometheus());
            assert!(text.contains("demo_http_requests_total{code=\"200\",path=\"/api\"} 1"));
            let small = src
                .fetch(&FetchRequest::new(
                    "http://shop.test/metrics",
                    Dur::from_secs(1),
                    10,
                ))
                .await
                .expect_err("over the limit");
            assert_eq!(small.reason(), "body_too_large");
            let other = src
                .fetch(&FetchRequest::new(
                    "http://other.test/metrics",
                    Dur::from_secs(1),
                    1 << 20,
                ))
                .await
                .expect_err("another host");
            assert_eq!(other.reason(), "refused");
        });
    }
}
