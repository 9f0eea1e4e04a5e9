//! Inhibition: firing alerts that mute other alerts, with Alertmanager's rule semantics
//! (`inhibit/inhibit.go`) plus burnwatch's defaults and probe-dependency inhibition.
//!
//! A rule mutes a target alert T when T matches `target_matchers` and some *firing* source
//! alert S matches `source_matchers` with equal values for every `equal` label (a missing label
//! is the empty string). An alert matching both sides cannot be muted by sources that also match
//! both sides (no self-inhibition). Silenced sources still inhibit. The dispatcher evaluates
//! inhibition at flush time, over every alert it holds.
//!
//! Defaults (unless `default_inhibit_rules: false`): a page tier of an SLO inhibits the ticket
//! tier of the same SLO. Dependencies: when probe D is down (a firing
//! `alertname="ProbeDown", probe="D"`), the alerts of every probe that depends on D (directly or
//! transitively), and of every SLO measured by such a probe, are muted. An SLO measured by D
//! itself is a real symptom and is not muted by D.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::alert::{Alert, Fingerprint, Matchers, matcher::is_label_name, names};
use crate::notify::route::decode_matchers;
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::model::{Indicator, RuleSet};
use crate::rules::node::Node;
use crate::time::Timestamp;

/// The alert names the default rules match: probe failures are the sources of dependency
/// inhibition, burn-rate pages inhibit burn-rate tickets. Defined where the alerts are made.
pub use crate::alert::names::{PROBE_DOWN, SLO_BURN_RATE};

/// One inhibition rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InhibitRule {
    /// Optional name, for logs.
    pub name: Option<String>,
    /// Alerts that can inhibit (when firing).
    pub source_matchers: Matchers,
    /// Alerts that can be inhibited.
    pub target_matchers: Matchers,
    /// Labels whose values must be equal on source and target (missing = empty).
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The default rule: a firing page tier of an SLO inhibits its ticket tier.
    pub fn page_over_ticket() -> InhibitRule {
        let m = |sev: &str| {
            Matchers::parse(&format!(
                r#"{}="{SLO_BURN_RATE}", {}="{sev}""#,
                names::ALERTNAME,
                names::SEVERITY
            ))
            .expect("constant matchers parse")
        };
        InhibitRule {
            name: Some("page-over-ticket".into()),
            source_matchers: m("page"),
            target_matchers: m("ticket"),
            equal: vec![names::SERVICE.into(), names::SLO.into()],
        }
    }
}

/// Probe dependencies from the rules: for each probe, the probes it depends on, transitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// probe → every probe it depends on (directly or transitively), itself excluded.
    ancestors: BTreeMap<String, BTreeSet<String>>,
    /// (service, slo) → the probe its indicator measures (probe-availability SLOs only).
    slo_probe: BTreeMap<(String, String), String>,
}

impl Dependencies {
    /// Builds the transitive `depends_on` closure of every probe and the SLO-to-probe links.
    /// Cycles are tolerated (a probe never depends on itself here).
    pub fn from_rules(rules: &RuleSet) -> Dependencies {
        let probes: Vec<(&str, Vec<&str>)> = rules
            .probes
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        let slos: Vec<(&str, &str, &str)> = rules
            .slos()
            .filter_map(|s| match &s.indicator {
                Indicator::ProbeAvailability { probe } => {
                    Some((s.id.service.as_str(), s.id.slo.as_str(), probe.as_str()))
                }
                _ => None,
            })
            .collect();
        Dependencies::build(&probes, &slos)
    }

    /// Builds dependencies directly: `(probe, depends_on)` pairs and `(service, slo, probe)`
    /// links (for tools and tests without a rules file).
    pub fn from_parts(probes: &[(&str, &[&str])], slos: &[(&str, &str, &str)]) -> Dependencies {
        let probes: Vec<(&str, Vec<&str>)> = probes.iter().map(|(p, d)| (*p, d.to_vec())).collect();
        Dependencies::build(&probes, slos)
    }

    fn build(probes: &[(&str, Vec<&str>)], slos: &[(&str, &str, &str)]) -> Dependencies {
        let direct: BTreeMap<&str, &[&str]> =
            probes.iter().map(|(p, d)| (*p, d.as_slice())).collect();
        let mut ancestors = BTreeMap::new();
        for (name, deps) in probes {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&str> = deps.clone();
            while let Some(q) = stack.pop() {
                if q == *name || !seen.insert(q.to_string()) {
                    continue;
                }
                stack.extend(direct.get(q).into_iter().flat_map(|d| d.iter().copied()));
            }
            if !seen.is_empty() {
                ancestors.insert(name.to_string(), seen);
            }
        }
        let slo_probe = slos
            .iter()
            .map(|(svc, slo, probe)| ((svc.to_string(), slo.to_string()), probe.to_string()))
            .collect();
        Dependencies {
            ancestors,
            slo_probe,
        }
    }

    /// The probes whose failure mutes an alert with these labels: the ancestors of its `probe`
    /// label, and the ancestors (not the probe itself) of the probe measuring its SLO.
    pub fn parents_of(&self, alert: &Alert) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let probe = alert.label(names::PROBE);
        if let Some(a) = self.ancestors.get(probe) {
            out.extend(a.iter().map(String::as_str));
        }
        let key = (
            alert.label(names::SERVICE).to_string(),
            alert.label(names::SLO).to_string(),
        );
        if let Some(p) = self.slo_probe.get(&key)
            && let Some(a) = self.ancestors.get(p)
        {
            out.extend(a.iter().map(String::as_str));
        }
        out
    }

    /// True when no probe depends on another.
    pub fn is_empty(&self) -> bool {
        self.ancestors.is_empty()
    }
}

/// The inhibition rules in force.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    deps: Dependencies,
}

/// Who inhibits whom at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inhibition {
    /// target → the firing alerts muting it (sorted, unique).
    by: BTreeMap<Fingerprint, Vec<Fingerprint>>,
    /// source → the alerts it mutes (sorted, unique): the reverse of `by`, for counts.
    mutes: BTreeMap<Fingerprint, Vec<Fingerprint>>,
}

impl Inhibition {
    /// The alerts muting this one (empty when it is not inhibited).
    pub fn inhibited_by(&self, fp: Fingerprint) -> &[Fingerprint] {
        self.by.get(&fp).map_or(&[], Vec::as_slice)
    }

    /// Whether this alert is inhibited.
    pub fn is_inhibited(&self, fp: Fingerprint) -> bool {
        self.by.contains_key(&fp)
    }

    /// How many alerts a source currently inhibits.
    pub fn count(&self, source: Fingerprint) -> usize {
        self.mutes.get(&source).map_or(0, Vec::len)
    }

    /// How many distinct alerts are inhibited by at least one of `sources` (the
    /// `Notification.inhibited` figure of a notification whose firing alerts are `sources`).
    pub fn count_any(&self, sources: &BTreeSet<Fingerprint>) -> usize {
        let mut targets: BTreeSet<Fingerprint> = BTreeSet::new();
        for s in sources {
            if let Some(t) = self.mutes.get(s) {
                targets.extend(t.iter().copied());
            }
        }
        targets.len()
    }
}

impl Inhibitor {
    /// The configured rules, preceded by the default page-over-ticket rule when `defaults` is
    /// true, plus dependency inhibition from `deps`.
    pub fn new(rules: Vec<InhibitRule>, defaults: bool, deps: Dependencies) -> Inhibitor {
        let mut all = Vec::with_capacity(rules.len() + 1);
        if defaults {
            all.push(InhibitRule::page_over_ticket());
        }
        all.extend(rules);
        Inhibitor { rules: all, deps }
    }

    /// The rules in force (defaults first).
    pub fn rules(&self) -> &[InhibitRule] {
        &self.rules
    }

    /// Evaluates every rule over `alerts` (all alerts the dispatcher holds) at `now`. Only
    /// alerts firing at `now` inhibit; targets may be firing or resolved.
    pub fn evaluate<'a>(
        &self,
        alerts: impl IntoIterator<Item = &'a Alert>,
        now: Timestamp,
    ) -> Inhibition {
        let alerts: Vec<(&Alert, Fingerprint)> =
            alerts.into_iter().map(|a| (a, a.fingerprint())).collect();
        let firing = |a: &Alert| a.ends_at.is_none_or(|e| e > now);
        let mut by: BTreeMap<Fingerprint, BTreeSet<Fingerprint>> = BTreeMap::new();
        for rule in &self.rules {
            // Sources indexed by their `equal` label values, so each target looks up only the
            // sources it could match: linear in alerts, not sources x targets.
            let mut sources: HashMap<Vec<&str>, Vec<(&Alert, Fingerprint)>> = HashMap::new();
            for (a, fp) in &alerts {
                if firing(a) && rule.source_matchers.matches(&a.labels) {
                    let key = rule.equal.iter().map(|n| a.label(n)).collect();
                    sources.entry(key).or_default().push((*a, *fp));
                }
            }
            if sources.is_empty() {
                continue;
            }
            for (t, tfp) in &alerts {
                if !rule.target_matchers.matches(&t.labels) {
                    continue;
                }
                let key: Vec<&str> = rule.equal.iter().map(|n| t.label(n)).collect();
                let Some(candidates) = sources.get(&key) else {
                    continue;
                };
                let two_sided = rule.source_matchers.matches(&t.labels);
                for (s, sfp) in candidates {
                    if two_sided && rule.target_matchers.matches(&s.labels) {
                        continue;
                    }
                    by.entry(*tfp).or_default().insert(*sfp);
                }
            }
        }
        if !self.deps.is_empty() {
            let mut down: BTreeMap<&str, Vec<Fingerprint>> = BTreeMap::new();
            for (a, fp) in &alerts {
                if firing(a) && a.label(names::ALERTNAME) == PROBE_DOWN {
                    down.entry(a.label(names::PROBE)).or_default().push(*fp);
                }
            }
            if !down.is_empty() {
                for (t, tfp) in &alerts {
                    for parent in self.deps.parents_of(t) {
                        for sfp in down.get(parent).into_iter().flatten() {
                            if sfp != tfp {
                                by.entry(*tfp).or_default().insert(*sfp);
                            }
                        }
                    }
                }
            }
        }
        let mut mutes: BTreeMap<Fingerprint, Vec<Fingerprint>> = BTreeMap::new();
        for (target, sources) in &by {
            for s in sources {
                mutes.entry(*s).or_default().push(*target);
            }
        }
        Inhibition {
            by: by
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
            mutes,
        }
    }
}

const RULE_KEYS: &[&str] = &["name", "source_matchers", "target_matchers", "equal"];

/// Decodes `inhibit_rules:` (a list of rules) with file:line:col diagnostics. An empty entry
/// (`- `) is accepted, as Alertmanager accepts it, with a warning: it can inhibit nothing.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<Vec<InhibitRule>> {
    let items = d.list(node, "inhibit_rules")?;
    let before = d.errors();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if matches!(item.kind(), crate::rules::node::Kind::Null) {
            d.warn(
                item.pos(),
                "this inhibition rule is empty: every alert matches both of its sides, so it inhibits nothing; remove it",
            );
            out.push(InhibitRule {
                name: None,
                source_matchers: Matchers::default(),
                target_matchers: Matchers::default(),
                equal: Vec::new(),
            });
            continue;
        }
        let Some(m) = MapReader::new(d, item, "an inhibition rule", RULE_KEYS) else {
            continue;
        };
        let name = m.opt(d, "name", Decoder::string);
        let source_matchers = m
            .req(
                d,
                "source_matchers",
                "['severity=\"page\"']",
                decode_matchers,
            )
            .unwrap_or_default();
        let target_matchers = m
            .req(
                d,
                "target_matchers",
                "['severity=\"ticket\"']",
                decode_matchers,
            )
            .unwrap_or_default();
        let mut equal = Vec::new();
        if let Some(names) = m.opt(d, "equal", Decoder::list) {
            for n in names {
                let Some(s) = d.string(n, "equal") else {
                    continue;
                };
                if !is_label_name(&s) {
                    d.error(
                        n.pos(),
                        format!(
                            "`equal` label name `{s}` is not valid; use letters, digits and `_`"
                        ),
                    );
                } else if equal.contains(&s) {
                    d.error(n.pos(), format!("`equal` lists `{s}` twice; keep one"));
                } else {
                    equal.push(s);
                }
            }
        }
        out.push(InhibitRule {
            name,
            source_matchers,
            target_matchers,
            equal,
        });
    }
    (d.errors() == before).then_some(out)
}

/// Parses a standalone `inhibit_rules` list (for tools and tests; the agent config decodes the
/// same section through [`decode`]).
pub fn parse_rules(
    path: &std::path::Path,
    text: &str,
) -> Result<Vec<InhibitRule>, Vec<crate::rules::diag::Diagnostic>> {
    crate::notify::route::parse_with(path, text, decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn alert(pairs: &[(&str, &str)], ends: Option<i64>) -> Alert {
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: Default::default(),
            starts_at: Timestamp(0),
            ends_at: ends.map(Timestamp::from_secs),
            generator_url: String::new(),
        }
    }

    fn rule(src: &str, tgt: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            name: None,
            source_matchers: Matchers::parse(src).expect("valid"),
            target_matchers: Matchers::parse(tgt).expect("valid"),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn equal_labels_missing_means_empty_and_only_firing_sources_count() {
        let inh = Inhibitor::new(
            vec![rule(
                "alertname=JobDown",
                "alertname=InstanceDown",
                &["job", "zone"],
            )],
            false,
            Dependencies::default(),
        );
        let src = alert(
            &[("alertname", "JobDown"), ("job", "j"), ("zone", "aa")],
            None,
        );
        let aa = alert(
            &[("alertname", "InstanceDown"), ("job", "j"), ("zone", "aa")],
            None,
        );
        let ab = alert(
            &[("alertname", "InstanceDown"), ("job", "j"), ("zone", "ab")],
            None,
        );
        let now = Timestamp::from_secs(10);
        let r = inh.evaluate([&src, &aa, &ab], now);
        assert_eq!(r.inhibited_by(aa.fingerprint()), [src.fingerprint()]);
        assert!(!r.is_inhibited(ab.fingerprint()));
        assert_eq!(r.count(src.fingerprint()), 1);

        // Resolved at now (or before): no longer a source. Resolving later: still one.
        let resolved = alert(
            &[("alertname", "JobDown"), ("job", "j"), ("zone", "aa")],
            Some(10),
        );
        assert!(
            !inh.evaluate([&resolved, &aa], now)
                .is_inhibited(aa.fingerprint())
        );
        let later = alert(
            &[("alertname", "JobDown"), ("job", "j"), ("zone", "aa")],
            Some(11),
        );
        assert!(
            inh.evaluate([&later, &aa], now)
                .is_inhibited(aa.fingerprint())
        );

        // Both lack `job` and `zone`: equal (empty = empty).
        let s2 = alert(&[("alertname", "JobDown")], None);
        let t2 = alert(&[("alertname", "InstanceDown")], None);
        assert!(inh.evaluate([&s2, &t2], now).is_inhibited(t2.fingerprint()));
    }

    #[test]
    fn no_self_inhibition_and_the_empty_rule_inhibits_nothing() {
        let inh = Inhibitor::new(
            vec![rule(
                "severity=~\"page|crit\"",
                "severity=~\"page|warn\"",
                &[],
            )],
            false,
            Dependencies::default(),
        );
        let a = alert(&[("alertname", "A"), ("severity", "page")], None);
        let b = alert(&[("alertname", "B"), ("severity", "page")], None);
        let c = alert(&[("alertname", "C"), ("severity", "crit")], None);
        let r = inh.evaluate([&a, &b], Timestamp(0));
        assert!(!r.is_inhibited(a.fingerprint()) && !r.is_inhibited(b.fingerprint()));
        // A one-sided source still inhibits a two-sided target.
        let r = inh.evaluate([&a, &c], Timestamp(0));
        assert_eq!(r.inhibited_by(a.fingerprint()), [c.fingerprint()]);

        let empty = Inhibitor::new(vec![rule("{}", "{}", &[])], false, Dependencies::default());
        assert_eq!(
            empty.evaluate([&a, &b, &c], Timestamp(0)),
            Inhibition::default()
        );
    }

    #[test]
    fn default_rule_mutes_the_ticket_tier_of_the_same_slo() {
        let inh = Inhibitor::new(Vec::new(), true, Dependencies::default());
        let page = alert(
            &[
                ("alertname", "SloBurnRate"),
                ("severity", "page"),
                ("service", "api"),
                ("slo", "avail"),
            ],
            None,
        );
        let ticket = alert(
            &[
                ("alertname", "SloBurnRate"),
                ("severity", "ticket"),
                ("service", "api"),
                ("slo", "avail"),
            ],
            None,
        );
        let other = alert(
            &[
                ("alertname", "SloBurnRate"),
                ("severity", "ticket"),
                ("service", "api"),
                ("slo", "latency"),
            ],
            None,
        );
        let r = inh.evaluate([&page, &ticket, &other], Timestamp(0));
        assert_eq!(r.inhibited_by(ticket.fingerprint()), [page.fingerprint()]);
        assert!(!r.is_inhibited(other.fingerprint()));
        assert!(!r.is_inhibited(page.fingerprint()));
        let off = Inhibitor::new(Vec::new(), false, Dependencies::default());
        assert!(off.rules().is_empty());
        assert!(
            !off.evaluate([&page, &ticket], Timestamp(0))
                .is_inhibited(ticket.fingerprint())
        );
    }

    #[test]
    fn dependency_inhibition_is_transitive_and_keeps_direct_symptoms() {
        // db ← api ← web (web depends on api, api on db); SLOs measured by each probe.
        let deps = Dependencies::from_parts(
            &[
                ("db", &[]),
                ("api", &["db"]),
                ("web", &["api"]),
                ("cycle-a", &["cycle-b"]),
                ("cycle-b", &["cycle-a"]),
            ],
            &[
                ("shop", "db-avail", "db"),
                ("shop", "api-avail", "api"),
                ("shop", "web-avail", "web"),
            ],
        );
        let inh = Inhibitor::new(Vec::new(), false, deps);
        // Labelled as the alert source labels them: the declaring service is on ProbeDown too.
        let down = |p: &str| {
            alert(
                &[("alertname", PROBE_DOWN), ("probe", p), ("service", "shop")],
                None,
            )
        };
        let slo = |s: &str| {
            alert(
                &[
                    ("alertname", SLO_BURN_RATE),
                    ("service", "shop"),
                    ("slo", s),
                    ("severity", "page"),
                ],
                None,
            )
        };
        let (db, api, web) = (down("db"), down("api"), down("web"));
        let (s_db, s_api, s_web) = (slo("db-avail"), slo("api-avail"), slo("web-avail"));
        let all = [&db, &api, &web, &s_db, &s_api, &s_web];
        let r = inh.evaluate(all, Timestamp(0));
        assert!(!r.is_inhibited(db.fingerprint()));
        assert!(
            !r.is_inhibited(s_db.fingerprint()),
            "a symptom of db itself is kept"
        );
        assert_eq!(r.inhibited_by(api.fingerprint()), [db.fingerprint()]);
        assert_eq!(r.inhibited_by(s_api.fingerprint()), [db.fingerprint()]);
        let mut web_by = vec![db.fingerprint(), api.fingerprint()];
        web_by.sort();
        assert_eq!(r.inhibited_by(web.fingerprint()), web_by.as_slice());
        assert_eq!(r.inhibited_by(s_web.fingerprint()), web_by.as_slice());
        assert_eq!(r.count(db.fingerprint()), 4);
        assert_eq!(r.count(api.fingerprint()), 2);
        assert_eq!(
            r.count_any(&[db.fingerprint(), api.fingerprint()].into()),
            4
        );

        // Only a *firing* ProbeDown inhibits; cycles do not mute a probe by itself.
        let resolved_db = alert(
            &[
                ("alertname", PROBE_DOWN),
                ("probe", "db"),
                ("service", "shop"),
            ],
            Some(0),
        );
        let r = inh.evaluate([&resolved_db, &api], Timestamp(0));
        assert!(!r.is_inhibited(api.fingerprint()));
        let (ca, cb) = (down("cycle-a"), down("cycle-b"));
        let r = inh.evaluate([&ca, &cb], Timestamp(0));
        assert_eq!(r.inhibited_by(ca.fingerprint()), [cb.fingerprint()]);
        assert_eq!(r.inhibited_by(cb.fingerprint()), [ca.fingerprint()]);
    }

    #[test]
    fn probe_alerts_inhibit_by_service() {
        // With `service` on ProbeDown, a user rule can mute a service's SLO alerts while its
        // health probe is down, and only that service's.
        let inh = Inhibitor::new(
            vec![rule(
                &format!(r#"alertname="{PROBE_DOWN}""#),
                &format!(r#"alertname="{SLO_BURN_RATE}""#),
                &["service"],
            )],
            true,
            Dependencies::default(),
        );
        let down = alert(
            &[
                ("alertname", PROBE_DOWN),
                ("probe", "health"),
                ("service", "shop"),
            ],
            None,
        );
        let slo = |svc: &str| {
            alert(
                &[
                    ("alertname", SLO_BURN_RATE),
                    ("service", svc),
                    ("slo", "avail"),
                    ("severity", "page"),
                ],
                None,
            )
        };
        let (shop, cart) = (slo("shop"), slo("cart"));
        let r = inh.evaluate([&down, &shop, &cart], Timestamp(0));
        assert_eq!(r.inhibited_by(shop.fingerprint()), [down.fingerprint()]);
        assert!(!r.is_inhibited(cart.fingerprint()));
        assert!(
            !r.is_inhibited(down.fingerprint()),
            "the default rules leave ProbeDown alone"
        );
    }

    #[test]
    fn decodes_rules_with_positions() {
        let rules = parse_rules(
            Path::new("am.yaml"),
            r#"
- name: cluster
  source_matchers: ['alertname="ClusterDown"']
  target_matchers: ['alertname="InstanceDown"']
  equal: [cluster]
-
"#,
        )
        .expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].equal, ["cluster"]);
        assert_eq!(
            rules[0].source_matchers.to_string(),
            r#"{alertname="ClusterDown"}"#
        );
        assert!(rules[1].source_matchers.is_empty());

        for (text, pos, needle) in [
            (
                "- target_matchers: ['a=b']\n",
                "1:3",
                "missing required key `source_matchers`",
            ),
            (
                "- source_matchers: ['a=~\"(\"']\n  target_matchers: []\n",
                "1:21",
                "invalid regex",
            ),
            (
                "- source_matchers: []\n  target_matchers: []\n  equal: [a, a]\n",
                "3:14",
                "twice",
            ),
            (
                "- source_match: {a: b}\n",
                "1:3",
                "unknown key `source_match`",
            ),
        ] {
            let errs = parse_rules(Path::new("am.yaml"), text).expect_err(text);
            let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert!(
                all.iter()
                    .any(|e| e.starts_with(&format!("am.yaml:{pos}: error")) && e.contains(needle)),
                "{text:?}: {all:?}"
            );
        }
    }
}
