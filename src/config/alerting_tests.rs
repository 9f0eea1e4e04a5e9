//! Tests of the `alerting:` section (decoded by [`crate::notify::config`]) through the whole
//! agent config file, as `run` and `check --config` read it. They live with the config, which
//! embeds the section, so `notify` never imports `config`.

use std::path::Path;

use super::parse;

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("burnwatch.yaml"), text.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../docs/alerting.md");
    let start = doc
        .find("```yaml\nalerting:")
        .expect("example in docs/alerting.md")
        + 8;
    let len = doc[start..].find("```").expect("closing fence");
    let text = format!("rules: [r]\n{}", &doc[start..start + len]);
    let cfg = parse(Path::new("burnwatch.yaml"), text.as_bytes()).expect("valid example");
    let a = &cfg.alerting;
    assert_eq!(a.receivers.len(), 3);
    assert_eq!(a.receivers[0].email.len(), 1);
    assert_eq!(a.receivers[0].pagerduty.len(), 1);
    assert_eq!(a.route.routes.len(), 2);
    assert_eq!(a.inhibit_rules.len(), 1);
    assert!(a.alertmanager.is_some());
    assert_eq!(
        a.external_url.as_deref(),
        Some("https://burnwatch.example.com")
    );
}

#[test]
fn absent_section_sends_nowhere() {
    let cfg = parse(Path::new("b.yaml"), b"rules: [r]\n").expect("valid");
    assert_eq!(cfg.alerting.route.receiver, crate::notify::config::NOWHERE);
    assert_eq!(cfg.alerting.receivers.len(), 1);
    assert_eq!(cfg.external_url(), "http://127.0.0.1:9464");
}

#[test]
fn unknown_receivers_and_missing_parts_are_errors_with_positions() {
    let e = errors(
        "rules: [r]\nalerting:\n  route:\n    receiver: oncall\n    routes:\n      - receiver: pager\n  receivers:\n    - name: oncall\n      webhook: [{url: 'http://127.0.0.1:9/h'}]\n",
    );
    assert_eq!(
        e,
        vec![
            "burnwatch.yaml:4:5: error: the route sends to receiver `pager`, which is not defined; add it under `alerting.receivers` or fix the name"
        ],
        "{e:#?}"
    );
    let e = errors("rules: [r]\nalerting:\n  receivers: []\n  colour: red\n");
    assert!(
        e.iter().any(
            |l| l.contains("burnwatch.yaml:3:3:") && l.contains("missing required key `route`")
        ),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("burnwatch.yaml:4:3: error: unknown key `colour`")),
        "{e:#?}"
    );
}

#[test]
fn alertmanager_alone_lets_alertmanager_route() {
    let cfg = parse(
        Path::new("b.yaml"),
        b"rules: [r]\nalerting:\n  alertmanager:\n    urls: [http://127.0.0.1:9093, http://127.0.0.1:9094]\n",
    )
    .expect("valid: Alertmanager routes");
    assert_eq!(cfg.alerting.route.receiver, crate::notify::config::NOWHERE);
    assert_eq!(cfg.alerting.receivers.len(), 1);
    assert_eq!(
        cfg.alerting.alertmanager.as_ref().map(|a| a.urls.len()),
        Some(2)
    );
    // A route without receivers (or the reverse) is still an error, with or without it.
    let e = errors(
        "rules: [r]\nalerting:\n  route: {receiver: oncall}\n  alertmanager: {urls: [http://127.0.0.1:9093]}\n",
    );
    assert!(
        e.iter()
            .any(|l| l.contains("missing required key `receivers`")),
        "{e:#?}"
    );
}

#[test]
fn state_durability_is_process_unless_power_is_asked_for() {
    use crate::notify::config::StateDurability;
    let am = "alerting:\n  alertmanager: {urls: [http://127.0.0.1:9093]}\n";
    let cfg = parse(Path::new("b.yaml"), format!("rules: [r]\n{am}").as_bytes()).expect("valid");
    assert_eq!(cfg.alerting.state_durability, StateDurability::Process);
    for (v, want) in [
        ("process", StateDurability::Process),
        ("power", StateDurability::Power),
    ] {
        let text = format!("rules: [r]\n{am}  state_durability: {v}\n");
        let cfg = parse(Path::new("b.yaml"), text.as_bytes()).expect("valid");
        assert_eq!(cfg.alerting.state_durability, want);
    }
    let e = errors(&format!("rules: [r]\n{am}  state_durability: powr\n"));
    assert!(
        e.iter()
            .any(|l| l.starts_with("burnwatch.yaml:4:21: error:")
                && l.contains("did you mean `power`?")),
        "{e:#?}"
    );
}
