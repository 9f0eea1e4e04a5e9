//! The `alerting:` section of the agent config: where notifications go and how they are
//! grouped, inhibited and delivered. Each part is decoded by the module that owns it (routes,
//! receivers, inhibition rules, the Alertmanager client); this module composes them and checks
//! what only the whole can tell: every receiver a route names exists.
//!
//! Without an `alerting:` section the agent still evaluates alerts (they show in
//! `/api/v1/alerts` and can be silenced) but sends them nowhere: the root route goes to a
//! receiver with no integrations.

use crate::notify::alertmanager::{self, AlertmanagerConfig};
use crate::notify::inhibit::{self, InhibitRule};
use crate::notify::receiver::{self, ReceiverConfig};
use crate::notify::route::{self, Route, RouteSpec};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::node::Node;
use crate::time::Dur;

/// The receiver of the built-in route used when the config has no `alerting:` section.
pub const NOWHERE: &str = "nowhere";

/// `state_durability`: what a change of the alerting state has survived once it is
/// acknowledged (a silence POST answered 200, a notification handed to delivery). See
/// docs/alerting.md, "State on disk".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateDurability {
    /// `process` (default): acknowledged once its record is written to the log file (in the
    /// kernel's page cache), which survives SIGKILL and every crash of the agent; a background
    /// fdatasync follows at once, so a power loss or kernel crash loses at most the changes of
    /// the last moments (one or two fdatasyncs of the disk, milliseconds).
    #[default]
    Process,
    /// `power`: acknowledged after the record's fdatasync, which also survives a power loss; a
    /// commit then takes one fdatasync of the disk (4 ms median, 8 ms p99 on the benchmark's).
    Power,
}

/// The validated `alerting:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingConfig {
    /// `external_url`: the agent's URL as people reach it, used for links in notifications
    /// (generator links, the API). Default `http://<listen address>`.
    pub external_url: Option<String>,
    /// `route`: the routing tree (Alertmanager's `route:` syntax and defaults: `group_wait` 30s,
    /// `group_interval` 5m, `repeat_interval` 4h).
    pub route: Route,
    /// `receivers`: named receivers, each with its integrations (webhook, slack, pagerduty,
    /// email).
    pub receivers: Vec<ReceiverConfig>,
    /// `inhibit_rules`: Alertmanager inhibition rules (source matchers, target matchers,
    /// `equal`).
    pub inhibit_rules: Vec<InhibitRule>,
    /// `default_inhibit_rules` (default true): a page tier of an SLO inhibits its ticket tiers,
    /// and a failing `depends_on` probe inhibits the alerts that depend on it.
    pub default_inhibit_rules: bool,
    /// `alertmanager`: also push every alert to these Alertmanagers (API v2), for teams that
    /// keep Alertmanager for routing.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// `silence_retention` (default 120h): how long expired silences are kept (for the API and
    /// `burnwatch alerts`) before they are forgotten.
    pub silence_retention: Dur,
    /// `state_durability` (`process`, the default, or `power`): when a change of the alerting
    /// state is acknowledged, after its write or after its fdatasync ([`StateDurability`]).
    pub state_durability: StateDurability,
}

impl Default for AlertingConfig {
    fn default() -> AlertingConfig {
        let spec = RouteSpec {
            receiver: Some(NOWHERE.to_string()),
            ..RouteSpec::default()
        };
        AlertingConfig {
            external_url: None,
            route: Route::build(spec).expect("a root route with only a receiver is valid"),
            receivers: vec![ReceiverConfig {
                name: NOWHERE.to_string(),
                webhook: Vec::new(),
                slack: Vec::new(),
                pagerduty: Vec::new(),
                email: Vec::new(),
            }],
            inhibit_rules: Vec::new(),
            default_inhibit_rules: true,
            alertmanager: None,
            silence_retention: Dur::from_hours(120),
            state_durability: StateDurability::Process,
        }
    }
}

const KEYS: &[&str] = &[
    "external_url",
    "route",
    "receivers",
    "inhibit_rules",
    "default_inhibit_rules",
    "alertmanager",
    "silence_retention",
    "state_durability",
];

/// Decodes the `alerting:` mapping; every problem is reported with its position.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<AlertingConfig> {
    let m = MapReader::new(d, node, "`alerting`", KEYS)?;
    let before = d.errors();
    let defaults = AlertingConfig::default();
    let external_url = m.opt(d, "external_url", Decoder::url);
    // With only `alertmanager:`, Alertmanager does the routing (as in a Prometheus config):
    // burnwatch's own route sends nowhere.
    let alertmanager_only =
        m.get("route").is_none() && m.get("receivers").is_none() && m.get("alertmanager").is_some();
    let (route, receivers) = if alertmanager_only {
        (
            Some(defaults.route.clone()),
            Some(defaults.receivers.clone()),
        )
    } else {
        (
            m.req(d, "route", "{receiver: oncall}", |d, n, _| {
                route::decode(d, n)
            }),
            m.req(
                d,
                "receivers",
                "[{name: oncall, webhook: [{url: ...}]}]",
                |d, n, _| receiver::decode(d, n),
            ),
        )
    };
    let inhibit_rules = m.opt(d, "inhibit_rules", |d, n, _| inhibit::decode(d, n));
    let default_inhibit_rules = m.opt(d, "default_inhibit_rules", Decoder::bool);
    let alertmanager = m.opt(d, "alertmanager", |d, n, _| alertmanager::decode(d, n));
    let silence_retention = m.opt(d, "silence_retention", Decoder::pos_dur);
    let state_durability = m
        .opt(d, "state_durability", |d, n, k| {
            d.choice(n, k, &["process", "power"])
        })
        .map(|v| {
            if v == "power" {
                StateDurability::Power
            } else {
                StateDurability::Process
            }
        });
    let (route, receivers) = (route?, receivers?);
    if let Some(route_node) = m.get("route") {
        for name in route.receivers() {
            if !receivers.iter().any(|r| r.name == name) {
                d.error(
                    route_node.pos(),
                    format!(
                        "the route sends to receiver `{name}`, which is not defined; add it under `alerting.receivers` or fix the name"
                    ),
                );
            }
        }
    }
    if d.errors() != before {
        return None;
    }
    Some(AlertingConfig {
        external_url,
        route,
        receivers,
        inhibit_rules: inhibit_rules.unwrap_or_default(),
        default_inhibit_rules: default_inhibit_rules.unwrap_or(defaults.default_inhibit_rules),
        alertmanager,
        silence_retention: silence_retention.unwrap_or(defaults.silence_retention),
        state_durability: state_durability.unwrap_or(defaults.state_durability),
    })
}
