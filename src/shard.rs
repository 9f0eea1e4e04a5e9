//! Sharding: which part of a rule set one agent of `shard.total` evaluates (`shard:` in the
//! agent config). Pure: a rule set in, the shard's rule set out.
//!
//! The unit is the service, kept whole with everything its SLOs and probes read: services are
//! joined into groups by their references (an SLO on another service's probe, a probe that
//! `depends_on` another service's probe, a selector that can match series of another service's
//! scrape target), and each group goes to the shard `fnv1a64(first service name) % total`. So
//! every SLO is evaluated by exactly one agent, each probe and target is checked by the agent
//! whose SLOs and alerts read it, and an agent's numbers for its SLOs equal those one agent
//! with the whole rule set computes. The hash is stable: the same rule set and `total` assign
//! the same way on every agent and after restarts, with no coordination.
//!
//! A selector can match a target's series only if each of its matchers on a label the target
//! attaches (`job`, `instance` and the target's `labels`, which override the page's) accepts
//! the target's value; with an equality matcher on `job` that is one target. A selector without
//! one may read any target, which joins its service with every service that declares targets:
//! correct, but it puts them on one shard, so [`Selection::warnings`] says so.

use std::collections::{BTreeSet, HashMap};

use crate::rules::model::RuleSet;
use crate::scrape::TargetIndex;
use crate::slo::fingerprint::fnv1a64;

/// One agent's place among `total`: `index` in `0..total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This agent's index, from 0.
    pub index: u32,
    /// How many agents share the rule set; at least 1.
    pub total: u32,
}

/// The part of a rule set one shard evaluates.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The shard's services, SLOs, probes and scrape targets.
    pub rules: RuleSet,
    /// Services of the whole set, and of this shard.
    pub services: (usize, usize),
    /// Notes for the log: references that forced services onto one shard.
    pub warnings: Vec<String>,
}

/// Union-find over service names.
struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index (the first name in order) becomes the root: the group's key.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

/// The services, SLOs, probes and targets of `rules` that `shard` evaluates. With `total` 1
/// that is everything.
pub fn select(rules: &RuleSet, shard: Shard) -> Selection {
    let names: BTreeSet<&str> = rules
        .services
        .iter()
        .map(|s| s.name.as_str())
        .chain(rules.probes.iter().map(|p| p.service.as_str()))
        .chain(rules.scrapes.iter().map(|t| t.service.as_str()))
        .collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut groups = Groups {
        parent: (0..names.len()).collect(),
    };
    let probe_service: HashMap<&str, usize> = rules
        .probes
        .iter()
        .map(|p| (p.name.as_str(), index[p.service.as_str()]))
        .collect();
    for p in &rules.probes {
        for dep in &p.depends_on {
            if let Some(&s) = probe_service.get(dep.as_str()) {
                groups.join(index[p.service.as_str()], s);
            }
        }
    }
    let targets = TargetIndex::new(&rules.scrapes);
    let target_service: Vec<usize> = rules
        .scrapes
        .iter()
        .map(|t| index[t.service.as_str()])
        .collect();
    let mut warnings = Vec::new();
    for svc in &rules.services {
        let me = index[svc.name.as_str()];
        for slo in &svc.slos {
            if let Some(s) = slo.indicator.probe().and_then(|p| probe_service.get(p)) {
                groups.join(me, *s);
            }
            let mut widest = 0usize;
            for sel in slo.indicator.selectors() {
                let (read, by_job) = targets.read_by(sel);
                for &t in &read {
                    groups.join(me, target_service[t]);
                }
                if !by_job {
                    widest = widest.max(read.len());
                }
            }
            if widest > 1 && shard.total > 1 {
                warnings.push(format!(
                    "sharding: SLO {}/{} has a selector without `job=\"...\"` that may read \
                     {widest} scrape targets; their services are kept on one shard",
                    svc.name, slo.id.slo
                ));
            }
        }
    }
    let total = shard.total.max(1);
    let names: Vec<&str> = names.into_iter().collect();
    let mine: BTreeSet<&str> = (0..names.len())
        .filter(|&i| {
            let root = groups.find(i);
            fnv1a64(names[root].as_bytes()) % u64::from(total) == u64::from(shard.index)
        })
        .map(|i| names[i])
        .collect();
    let rules_out = RuleSet {
        services: rules
            .services
            .iter()
            .filter(|s| mine.contains(s.name.as_str()))
            .cloned()
            .collect(),
        probes: rules
            .probes
            .iter()
            .filter(|p| mine.contains(p.service.as_str()))
            .cloned()
            .collect(),
        scrapes: rules
            .scrapes
            .iter()
            .filter(|t| mine.contains(t.service.as_str()))
            .cloned()
            .collect(),
    };
    let distinct = |rs: &RuleSet| {
        rs.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    };
    Selection {
        services: (distinct(rules), distinct(&rules_out)),
        rules: rules_out,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;
    use std::collections::BTreeMap;

    fn service(name: &str, extra: &str) -> String {
        format!(
            "version: burnwatch/v1\nservice: {name}\nprobes:\n  - name: {name}-health\n    \
             http: {{url: \"http://{name}.test/healthz\"}}\nscrape:\n  - name: {name}\n    \
             url: http://{name}.test/metrics\nslos:\n  - name: availability\n    objective: 99\n    \
             indicator:\n      ratio:\n        bad: 'requests_total{{job=\"{name}\",code=~\"5..\"}}'\n        \
             total: 'requests_total{{job=\"{name}\"}}'\n  - name: up\n    objective: 99\n    \
             indicator: {{probe: {name}-health}}\n{extra}"
        )
    }

    fn set(docs: &[String]) -> RuleSet {
        load_str("rules.yaml", &docs.join("---\n")).expect("rules load")
    }

    fn owners(rules: &RuleSet, total: u32) -> BTreeMap<String, Vec<u32>> {
        let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for index in 0..total {
            for s in select(rules, Shard { index, total }).rules.services {
                out.entry(s.name).or_default().push(index);
            }
        }
        out
    }

    #[test]
    fn every_service_goes_to_exactly_one_shard_with_its_probes_and_targets() {
        let docs: Vec<String> = (0..40)
            .map(|i| service(&format!("svc{i:02}"), ""))
            .collect();
        let rules = set(&docs);
        let owners = owners(&rules, 3);
        assert_eq!(owners.len(), 40);
        assert!(owners.values().all(|v| v.len() == 1), "{owners:?}");
        let mut per_shard = [0usize; 3];
        for index in 0..3 {
            let sel = select(&rules, Shard { index, total: 3 });
            per_shard[index as usize] = sel.services.1;
            assert!(sel.warnings.is_empty(), "{:?}", sel.warnings);
            for s in &sel.rules.services {
                assert!(sel.rules.probes.iter().any(|p| p.service == s.name));
                assert!(sel.rules.scrapes.iter().any(|t| t.service == s.name));
            }
            assert_eq!(sel.rules.probes.len(), sel.services.1);
            assert_eq!(sel.rules.scrapes.len(), sel.services.1);
        }
        assert_eq!(per_shard.iter().sum::<usize>(), 40);
        // The hash spreads them: no shard is empty or holds most of them.
        assert!(
            per_shard.iter().all(|&n| (5..=25).contains(&n)),
            "{per_shard:?}"
        );
        // One shard is everything.
        let all = select(&rules, Shard { index: 0, total: 1 });
        assert_eq!(all.services, (40, 40));
        assert_eq!(all.rules.slos().count(), 80);
    }

    #[test]
    fn references_across_services_keep_them_together() {
        // svc01's SLO reads svc00's probe; svc03's probe depends on svc02's; svc05's selector
        // reads svc04's target by job.
        let cross = |probe: &str| {
            format!("  - name: cross\n    objective: 99\n    indicator: {{probe: {probe}}}\n")
        };
        let mut docs: Vec<String> = (0..12)
            .map(|i| service(&format!("svc{i:02}"), ""))
            .collect();
        docs[1] = service("svc01", &cross("svc00-health"));
        docs[3] = docs[3].replace(
            "url: \"http://svc03.test/healthz\"}",
            "url: \"http://svc03.test/healthz\"}\n    depends_on: [svc02-health]",
        );
        docs[5] = service(
            "svc05",
            "  - name: upstream\n    objective: 99\n    indicator:\n      ratio:\n        \
             bad: 'requests_total{job=\"svc04\",code=~\"5..\"}'\n        \
             total: 'requests_total{job=\"svc04\"}'\n",
        );
        let rules = set(&docs);
        for total in [2, 3, 5, 7] {
            let o = owners(&rules, total);
            assert!(o.values().all(|v| v.len() == 1));
            assert_eq!(o["svc00"], o["svc01"], "total {total}");
            assert_eq!(o["svc02"], o["svc03"], "total {total}");
            assert_eq!(o["svc04"], o["svc05"], "total {total}");
        }
    }

    #[test]
    fn a_selector_that_may_read_every_target_is_warned_about() {
        let mut docs: Vec<String> = (0..6).map(|i| service(&format!("svc{i:02}"), "")).collect();
        docs.push(service(
            "global",
            "  - name: everything\n    objective: 99\n    indicator:\n      ratio:\n        \
             bad: 'requests_total{code=~\"5..\"}'\n        total: 'requests_total'\n",
        ));
        let rules = set(&docs);
        let o = owners(&rules, 3);
        let shard = o["global"].clone();
        assert!(o.values().all(|v| *v == shard), "all on one shard: {o:?}");
        let sel = select(
            &rules,
            Shard {
                index: shard[0],
                total: 3,
            },
        );
        assert_eq!(sel.warnings.len(), 1, "{:?}", sel.warnings);
        assert!(
            sel.warnings[0].contains("global/everything"),
            "{:?}",
            sel.warnings
        );
        // A selector whose other matchers exclude targets by their labels reads only those.
        let mut docs: Vec<String> = (0..6).map(|i| service(&format!("svc{i:02}"), "")).collect();
        docs.push(service(
            "narrow",
            "  - name: one\n    objective: 99\n    indicator:\n      ratio:\n        \
             bad: 'requests_total{instance=\"svc03.test:80\",code=~\"5..\"}'\n        \
             total: 'requests_total{instance=\"svc03.test:80\"}'\n",
        ));
        let o = owners(&set(&docs), 3);
        assert_eq!(o["narrow"], o["svc03"]);
    }
}
