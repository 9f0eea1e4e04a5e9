//! `burnwatch generate prometheus` against the real promtool (2.42, installed by the test
//! script): every shipped rules file generates rules `promtool check rules` accepts and unit
//! tests `promtool test rules` passes (and fails once a tier is written wrong), and the
//! generated burn-rate alerts fire, in `promtool test rules`, exactly for what burns in a synthetic
//! outage (a plain ratio SLO, a grouped one whose failing route alone alerts, and a histogram
//! latency SLO), and for nothing before it.

use std::path::Path;
use std::process::Command;

fn burnwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_burnwatch"))
}

/// Runs `cmd`, failing the test with its output when it does not exit 0.
fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot start: {e} (is promtool on PATH? run scripts/test.sh)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn every_shipped_rules_file_generates_rules_promtool_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut cmd = burnwatch();
    cmd.args(["generate", "prometheus", "-o"])
        .arg(dir.path())
        .args(["--extra-labels", "env=prod"])
        .arg(&rules);
    run(cmd, "burnwatch generate prometheus -o");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("output dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    assert!(files.len() >= 10, "one file per service: {files:?}");
    let mut check = Command::new("promtool");
    check.args(["check", "rules"]).args(&files);
    let text = run(check, "promtool check rules");
    assert_eq!(
        text.matches("SUCCESS").count(),
        files.len(),
        "every file passes, lint included:\n{text}"
    );
    // The unit tests generated beside them pass: every alert of every SLO fires in promtool
    // where the tiers say, and only there.
    let tests: Vec<_> = std::fs::read_dir(dir.path().join("tests"))
        .expect("tests dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(tests.len() >= 10, "one test file per service: {tests:?}");
    let mut promtool = Command::new("promtool");
    promtool.args(["test", "rules"]).args(&tests);
    let text = run(promtool, "promtool test rules (generated tests)");
    assert_eq!(text.matches("SUCCESS").count(), tests.len(), "{text}");
    // And they bite: a page tier written with a factor more than 1.5 times off fails its phase.
    let storefront = dir.path().join("storefront.rules.yml");
    let rules_text = std::fs::read_to_string(&storefront).expect("storefront rules");
    assert!(rules_text.contains("(14.4 * "), "{rules_text}");
    std::fs::write(&storefront, rules_text.replacen("(14.4 * ", "(30 * ", 1)).expect("write");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(dir.path().join("tests/storefront.test.yml"))
        .output()
        .expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success() && text.contains("FAILED"), "{text}");
    std::fs::write(&storefront, rules_text).expect("restore");

    // And as one file on stdout.
    let mut cmd = burnwatch();
    cmd.args(["generate", "prometheus"]).arg(&rules);
    let all = run(cmd, "burnwatch generate prometheus");
    let file = dir.path().join("all.yml");
    std::fs::write(
        &file,
        all.lines()
            .filter(|l| !l.starts_with("burnwatch: "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("write");
    let mut check = Command::new("promtool");
    check.args(["check", "rules"]).arg(&file);
    run(check, "promtool check rules (one file)");
}

const RULES: &str = r#"version: burnwatch/v1
service: api
slos:
  - name: avail
    objective: 99.9
    indicator:
      ratio:
        bad: 'http_requests_total{job="api",code=~"5.."}'
        total: 'http_requests_total{job="api"}'
  - name: by-route
    objective: 99.9
    group_by: [route]
    indicator:
      ratio:
        bad: 'http_requests_total{job="api",code=~"5.."}'
        total: 'http_requests_total{job="api"}'
  - name: fast
    objective: 99
    indicator:
      latency_threshold:
        threshold: 250ms
        histogram: 'http_request_duration_seconds{job="api"}'
"#;

/// Three hours at one sample a minute: 100 requests a minute on each of two routes, all fast;
/// from minute 61 route /b also fails 50 a minute and half of all requests are slow; at minute 90
/// every SLO burns past both its page and its ticket thresholds (the 99% latency SLO's 1h window
/// only after 20 minutes of it).
const TEST: &str = r#"rule_files: [api.rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{job="api",code="200",route="/a"}'
        values: '0+100x180'
      - series: 'http_requests_total{job="api",code="200",route="/b"}'
        values: '0+100x180'
      - series: 'http_requests_total{job="api",code="500",route="/b"}'
        values: '0+0x60 50+50x119'
      - series: 'http_request_duration_seconds_count{job="api"}'
        values: '0+100x180'
      - series: 'http_request_duration_seconds_bucket{job="api",le="0.25"}'
        values: '0+100x60 6050+50x119'
    alert_rule_test:
      - eval_time: 30m
        alertname: SloBurnRate
        exp_alerts: []
      - eval_time: 90m
        alertname: SloBurnRate
        exp_alerts:
ALERTS"#;

fn expected(slo: &str, severity: &str, route: Option<&str>) -> String {
    let route = route.map_or(String::new(), |r| format!("              route: \"{r}\"\n"));
    format!(
        "          - exp_labels:\n              sloth_id: api-{slo}\n              sloth_service: api\n              sloth_slo: {slo}\n              sloth_severity: {severity}\n{route}            exp_annotations:\n              title: \"({severity}) api {slo} SLO error budget burn rate is too fast.\"\n              summary: \"api {slo} SLO error budget burn rate is over expected.\"\n"
    )
}

#[test]
fn generated_burn_alerts_fire_in_promtool_on_an_outage_and_only_for_what_burns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("api.yaml");
    std::fs::write(&rules, RULES).expect("rules");
    let mut cmd = burnwatch();
    cmd.args(["generate", "prometheus", "-o"])
        .arg(dir.path())
        .arg(&rules);
    run(cmd, "burnwatch generate prometheus");
    let mut alerts = String::new();
    for severity in ["page", "ticket"] {
        alerts.push_str(&expected("avail", severity, None));
        alerts.push_str(&expected("by-route", severity, Some("/b")));
        alerts.push_str(&expected("fast", severity, None));
    }
    let test = dir.path().join("api.test.yml");
    std::fs::write(&test, TEST.replace("ALERTS", &alerts)).expect("test file");
    let mut promtool = Command::new("promtool");
    promtool.args(["test", "rules"]).arg(&test);
    let text = run(promtool, "promtool test rules");
    assert!(text.contains("SUCCESS"), "{text}");
}

/// `generate prometheus` on OpenSLO files (references across files, alert policies as tiers):
/// rules `promtool check rules` accepts, their generated unit tests pass in `promtool test
/// rules`, the policies' notification targets are on the alerts for Alertmanager's routes, and
/// what recording rules cannot express (a Timeslices budget) is said in the file.
#[test]
fn openslo_files_generate_rules_promtool_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let openslo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openslo/prometheus");
    let mut cmd = burnwatch();
    cmd.args(["generate", "prometheus", "-o"])
        .arg(dir.path())
        .arg(&openslo);
    run(cmd, "burnwatch generate prometheus -o (OpenSLO)");
    let shop = dir.path().join("web-shop.rules.yml");
    let availability = dir.path().join("web-availability.rules.yml");
    let mut check = Command::new("promtool");
    check.args(["check", "rules"]).arg(&shop).arg(&availability);
    let text = run(check, "promtool check rules (OpenSLO)");
    assert_eq!(text.matches("SUCCESS").count(), 2, "{text}");
    let rules_text = std::fs::read_to_string(&shop).expect("web-shop rules");
    assert!(
        rules_text.contains("sloth_spec: openslo/v1"),
        "{rules_text}"
    );
    assert!(
        rules_text.contains(
            "notification_target: \"on-call-devops-mail-notification,on-call-devops-slack-notification\""
        ),
        "{rules_text}"
    );
    let skipped = std::fs::read_to_string(&availability).expect("web-availability rules");
    assert!(
        skipped.contains("service-availability-sla: not generated: a timeslice budget"),
        "{skipped}"
    );
    let mut promtool = Command::new("promtool");
    promtool
        .args(["test", "rules"])
        .arg(dir.path().join("tests/web-shop.test.yml"));
    let text = run(promtool, "promtool test rules (OpenSLO)");
    assert!(text.contains("SUCCESS"), "{text}");
}
