//! Sloth's `prometheus/v1` documents and `PrometheusServiceLevel` resources (the same spec with
//! camelCase keys) read as they are, into the same model as `burnwatch/v1` (see "Coming from
//! Sloth / OpenSLO" in docs/rules.md).
//!
//! Every field is honoured or reported: the service, its labels, each SLO's name, description,
//! objective, labels and events SLI (its queries translated to selectors by
//! [`crate::rules::promql`], `sum by (...)` becoming `group_by`), and the alerting block's labels
//! and `disable` (page alerts are the page tiers, ticket alerts the ticket tiers), annotations
//! (added to the alerts' own) and the alert name (which `burnwatch generate prometheus` gives the
//! rules it writes). What burnwatch does otherwise (Sloth's Go plugins) is a warning naming it;
//! what it cannot evaluate (a raw ratio query, an SLI plugin) is an error at its line, as the
//! agent could not count it. A query shape that does not translate becomes a query indicator,
//! read from the agent's Prometheus source, with a warning saying so. A Sloth SLO's
//! window is Sloth's default period, 30 days, with the same four burn-rate tiers Sloth writes.

use crate::rules::file::FileRules;
use crate::rules::model::{
    Alerting, BudgetingMethod, DEFAULT_MAX_INSTANCES, Grouping, Indicator, Labels, NoDataPolicy,
    Service, Slo, SloId, Spec, Window, default_tiers,
};
use crate::rules::node::{Kind, Node};
use crate::rules::promql;
use crate::schema::{Decoder, MapReader};
use crate::time::Dur;

/// The `version` of Sloth's plain spec.
pub const VERSION: &str = Spec::SlothPrometheus.as_str();

/// The `apiVersion` and `kind` of Sloth's Kubernetes resource, whose `spec` is the plain spec
/// with camelCase keys (`errorQuery`, `pageAlert`, ...).
pub const K8S_API_VERSION: &str = Spec::SlothKubernetes.as_str();
/// See [`K8S_API_VERSION`].
pub const K8S_KIND: &str = "PrometheusServiceLevel";

/// Which of Sloth's two spellings a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// `prometheus/v1`: snake_case keys.
    Plain,
    /// `sloth.slok.dev/v1` `PrometheusServiceLevel`: camelCase keys.
    Kubernetes,
}

impl Flavor {
    /// A key as this flavour spells it (written in snake_case).
    fn key(self, snake: &'static str) -> &'static str {
        match (self, snake) {
            (Flavor::Plain, k) => k,
            (Flavor::Kubernetes, "slo_plugins") => "sloPlugins",
            (Flavor::Kubernetes, "error_query") => "errorQuery",
            (Flavor::Kubernetes, "total_query") => "totalQuery",
            (Flavor::Kubernetes, "error_ratio_query") => "errorRatioQuery",
            (Flavor::Kubernetes, "page_alert") => "pageAlert",
            (Flavor::Kubernetes, "ticket_alert") => "ticketAlert",
            (Flavor::Kubernetes, k) => k,
        }
    }

    fn keys<const N: usize>(self, snake: [&'static str; N]) -> [&'static str; N] {
        snake.map(|k| self.key(k))
    }
}

impl Decoder<'_, FileRules> {
    /// One `version: prometheus/v1` document: a service and its SLOs.
    pub(crate) fn sloth_document(&mut self, doc: &Node) {
        self.sloth_service(doc, Flavor::Plain, "a Sloth prometheus/v1 document");
    }

    /// One `PrometheusServiceLevel` resource: its `spec`, read as a `prometheus/v1` document.
    pub(crate) fn sloth_k8s_document(&mut self, doc: &Node) {
        let Some(m) = MapReader::new(
            self,
            doc,
            "a Sloth PrometheusServiceLevel",
            &["apiVersion", "kind", "metadata", "spec"],
        ) else {
            return;
        };
        if let Some(pos) = m.key_pos("metadata") {
            self.warn(
                pos,
                "ignored: `metadata` (the Kubernetes object's name, namespace and labels; the service is `spec.service`, its labels `spec.labels`)",
            );
        }
        if let Some(spec) = m.req(self, "spec", "{service: ..., slos: [...]}", |_, n, _| {
            Some(n)
        }) {
            self.sloth_service(spec, Flavor::Kubernetes, "a PrometheusServiceLevel spec");
        }
    }

    fn sloth_service(&mut self, doc: &Node, flavor: Flavor, what: &'static str) {
        let keys = match flavor {
            Flavor::Plain => &["version", "service", "labels", "slo_plugins", "slos"][..],
            Flavor::Kubernetes => &["service", "labels", "sloPlugins", "slos"][..],
        };
        let before = self.errors();
        let Some(m) = MapReader::new(self, doc, what, keys) else {
            return;
        };
        let name = m.req(self, "service", "myservice", Decoder::name);
        if let (Some(name), Some(n)) = (&name, m.get("service")) {
            self.declare_service(name, n.pos());
        }
        let labels = m.opt(self, "labels", Decoder::labels).unwrap_or_default();
        let plugins = flavor.key("slo_plugins");
        if let Some(pos) = m.key_pos(plugins) {
            self.warn(
                pos,
                format!("ignored: `{plugins}` (Sloth's SLO plugins are Go code that writes Prometheus rules; burnwatch evaluates the SLOs itself)"),
            );
        }
        let service = name.clone().unwrap_or_default();
        let mut slos = Vec::new();
        if let Some(items) = m.req(self, "slos", "[...]", Decoder::list) {
            for item in items {
                if let Some(slo) = self.sloth_slo(item, &service, &labels, flavor) {
                    slos.push(slo);
                }
            }
        }
        if self.errors() > before {
            return;
        }
        let Some(name) = name else { return };
        self.add_service(
            Service {
                file: self.file.to_path_buf(),
                name,
                labels,
                owner: None,
                runbook: None,
                dashboard: None,
                slos,
                spec: match flavor {
                    Flavor::Plain => Spec::SlothPrometheus,
                    Flavor::Kubernetes => Spec::SlothKubernetes,
                },
            },
            Vec::new(),
            Vec::new(),
        );
    }

    fn sloth_slo(
        &mut self,
        node: &Node,
        service: &str,
        svc_labels: &Labels,
        flavor: Flavor,
    ) -> Option<Slo> {
        const KEYS: &[&str] = &[
            "name",
            "description",
            "objective",
            "plugins",
            "labels",
            "sli",
            "alerting",
        ];
        let before = self.errors();
        let m = MapReader::new(self, node, "a Sloth SLO", KEYS)?;
        let name = m.req(self, "name", "requests-availability", Decoder::name);
        let description = m.opt(self, "description", Decoder::scalar);
        let objective = m.req(self, "objective", "99.9", |d, n, k| d.objective(n, k));
        if let Some(pos) = m.key_pos("plugins") {
            self.warn(
                pos,
                "ignored: `plugins` (Sloth's SLO plugins are Go code that writes Prometheus rules)",
            );
        }
        let mut labels = svc_labels.clone();
        if let Some(own) = m.opt(self, "labels", Decoder::labels) {
            labels.extend(own);
        }
        let sli = m.req(
            self,
            "sli",
            "{events: {error_query: ..., total_query: ...}}",
            |d, n, _| d.sloth_sli(n, flavor),
        );
        let window = Window::Rolling(Dur::from_days(30));
        let mut tiers = default_tiers(&window);
        let mut alert_name = None;
        if let Some(n) = m.get("alerting") {
            alert_name = self.sloth_alerting(n, &mut tiers, flavor);
        }
        if self.errors() > before {
            return None;
        }
        let (indicator, by) = sli?;
        let group = if by.is_empty() {
            None
        } else {
            Some(Grouping::Template {
                by,
                max_instances: DEFAULT_MAX_INSTANCES,
            })
        };
        Some(Slo {
            id: SloId {
                service: service.to_owned(),
                slo: name?,
            },
            description,
            labels,
            objective: objective?,
            window,
            method: BudgetingMethod::Occurrences,
            indicator,
            alerting: Alerting {
                tiers,
                alert_name,
                ..Alerting::default()
            },
            no_data: NoDataPolicy::Ignore,
            group,
        })
    }

    /// `sli:` with exactly one of `events`, `raw`, `plugin`; the indicator and its `group_by`.
    fn sloth_sli(&mut self, n: &Node, flavor: Flavor) -> Option<(Indicator, Vec<String>)> {
        let m = MapReader::new(self, n, "a Sloth SLI", &["events", "raw", "plugin"])?;
        if let Some(pos) = m.key_pos("raw") {
            self.error(
                pos,
                "a `raw` SLI is an error ratio computed by Prometheus, which burnwatch cannot count from scrapes; write it as `events` (an error query over a total query)",
            );
            return None;
        }
        if let Some(pos) = m.key_pos("plugin") {
            self.error(
                pos,
                "an SLI `plugin` is Go code Sloth runs to write a query; write the query it produces as `events` (an error query over a total query)",
            );
            return None;
        }
        let events = m.req(
            self,
            "events",
            "{error_query: ..., total_query: ...}",
            |_, n, _| Some(n),
        )?;
        let [error_key, total_key] = flavor.keys(["error_query", "total_query"]);
        let e = MapReader::new(self, events, "Sloth events", &[error_key, total_key])?;
        let example = "sum(rate(...[{{.window}}]))";
        let error = e.req(self, error_key, example, Decoder::string);
        let total = e.req(self, total_key, example, Decoder::string);
        let (error, total) = (error?, total?);
        let (found, untranslated) = promql::events_or_query(error, total);
        if let Some(why) = untranslated {
            // Not an error: the agent reads such an SLO from its Prometheus source, which
            // evaluates the queries as they are (docs/sources.md).
            let pos = e.get(error_key).map_or(e.pos, Node::pos);
            self.warn(pos, why.needs_a_source());
        }
        Some(found)
    }

    /// `alerting:`: labels and annotations onto every tier, `page_alert` / `ticket_alert`
    /// labels and annotations onto the page / ticket tiers (over the shared ones, as Sloth
    /// merges them), `disable` drops them. Returns the alert `name`, which generated rules carry.
    fn sloth_alerting(
        &mut self,
        n: &Node,
        tiers: &mut Vec<crate::rules::model::BurnTier>,
        flavor: Flavor,
    ) -> Option<String> {
        let keys = flavor.keys([
            "name",
            "labels",
            "annotations",
            "page_alert",
            "ticket_alert",
        ]);
        let m = MapReader::new(self, n, "Sloth alerting", &keys)?;
        let name = m.opt(self, "name", Decoder::alert_name);
        let annotations = m
            .opt(self, "annotations", Decoder::annotations)
            .unwrap_or_default();
        for t in tiers.iter_mut() {
            t.annotations
                .extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let labels = m.opt(self, "labels", Decoder::labels).unwrap_or_default();
        for t in tiers.iter_mut() {
            t.labels
                .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // Which tiers Sloth's page and ticket alerts are, before any severity is renamed.
        let mut kind: Vec<String> = tiers.iter().map(|t| t.severity.clone()).collect();
        for (key, severity) in [
            (flavor.key("page_alert"), "page"),
            (flavor.key("ticket_alert"), "ticket"),
        ] {
            let Some(a) = m.get(key) else { continue };
            if matches!(a.kind(), Kind::Null) {
                continue;
            }
            let Some(am) = MapReader::new(
                self,
                a,
                "a Sloth alert",
                &["disable", "labels", "annotations"],
            ) else {
                continue;
            };
            if am.opt(self, "disable", Decoder::bool) == Some(true) {
                let mut k = kind.iter();
                tiers.retain(|_| k.next().is_none_or(|s| s != severity));
                kind.retain(|s| s != severity);
                continue;
            }
            let own_annotations = am
                .opt(self, "annotations", Decoder::annotations)
                .unwrap_or_default();
            let mut own = am.opt(self, "labels", Decoder::labels).unwrap_or_default();
            // Sloth users route on a `severity` label of their own (`critical`, `pageteam`):
            // in burnwatch that is the tiers' severity, which alerts carry as `severity`.
            let routed = own.remove("severity");
            for (t, _) in tiers.iter_mut().zip(&kind).filter(|(_, k)| *k == severity) {
                t.labels
                    .extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                t.annotations
                    .extend(own_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(s) = &routed {
                    t.severity.clone_from(s);
                }
            }
        }
        name
    }
}
