//! End-to-end tests of `burnwatch check`: the built binary on fixture files, including hostile
//! inputs, each bounded by a timeout so a hang fails the test instead of blocking it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_burnwatch");
const LIMIT: Duration = Duration::from_secs(10);

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

/// Runs the binary from the fixtures directory (so paths print relative), killing it after
/// LIMIT.
fn run(args: &[&str]) -> Out {
    run_in(&fixtures(), args)
}

/// The agent config fixtures (outside `fixtures/check`, which is checked as one rules tree).
fn config_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check-config")
}

/// Runs the binary from `dir`, killing it after LIMIT.
fn run_in(dir: &Path, args: &[&str]) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("BURNWATCH_TEST_UNSET_ROUTING_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn burnwatch");
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).expect("read stdout");
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        se.read_to_string(&mut s).expect("read stderr");
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("burnwatch {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: t1.join().expect("stdout thread"),
        stderr: t2.join().expect("stderr thread"),
    }
}

#[test]
fn good_file_set_prints_summaries() {
    let o = run(&["check", "good"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        o.stdout,
        "good/checkout.yaml: OK: service checkout, 3 SLOs, 1 probe, 1 scrape target\n\
         good/platform.yml: OK: service database, 1 SLO, 1 probe, 0 scrape targets; \
         service search, 1 SLO, 0 probes, 0 scrape targets\n"
    );
    assert_eq!(o.stderr, "");
}

#[test]
fn a_good_file_alone_misses_its_cross_file_probe() {
    // checkout.yaml depends on db-health, which platform.yml declares.
    let o = run(&["check", "good/checkout.yaml"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stdout,
        "good/checkout.yaml:16:18: error: unknown probe `db-health`; declare it under `probes:` or use one of `checkout-health`\n"
    );
}

#[test]
fn every_error_is_reported_in_one_run() {
    let o = run(&["check", "bad/many-errors.yaml"]);
    assert_eq!(o.code, 1);
    let want = [
        "3:10: error: label name `__team` is not valid",
        "7:12: error: `url` `ftp://shop.internal/health` is not an http(s) URL",
        "8:28: error: status `700` is not valid",
        "10:14: error: `timeout` 10s is not shorter than `interval` 5s",
        "12:5: error: an SLO is missing required key `objective`; add `objective: 99.9`",
        "13:5: error: unknown key `objectve` in an SLO; did you mean `objective`?",
        "14:13: error: `window`: unknown unit `M` in `1M`",
        "17:16: error: `good`: PromQL functions are not allowed here",
        "18:47: error: `total`: expected `,` or `}` after a matcher, found the end of the selector",
        "19:11: error: SLO `availability` is declared twice in service `shop` (first at line 12)",
        "20:16: error: objective 100% leaves no error budget",
        "22:5: error: `time_zone` only applies to calendar windows",
        "24:14: error: unknown probe `shop-helth`; did you mean `shop-health`?",
        "27:13: error: `method: occurrences` does not work with `latency_percentile`",
        "32:20: error: `histogram` names `http_request_duration_seconds_bucket`",
        "36:16: error: unknown time zone `Mars/Olympus`",
        "38:16: error: timeslice 7m does not divide one hour evenly",
        "43:28: error: tier `page_fast` has short window 2h not shorter than its long window 1h",
        "44:17: error: custom tier `weekly` needs `budget_consumed`",
    ];
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), want.len(), "{}", o.stdout);
    for (line, w) in lines.iter().zip(want) {
        let w = format!("bad/many-errors.yaml:{w}");
        assert!(line.starts_with(&w), "expected {w:?}, got {line:?}");
    }
    assert_eq!(
        o.stderr,
        "burnwatch: 19 error(s), 0 warning(s) in 1 file(s)\n"
    );
}

/// One error line for `file`, at `pos`, containing `needle`.
fn single_error(file: &str, pos: &str, needle: &str) {
    let o = run(&["check", file]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", o.stdout);
    assert!(
        lines[0].starts_with(&format!("{file}:{pos}: error: ")) && lines[0].contains(needle),
        "{}",
        lines[0]
    );
}

#[test]
fn duplicate_key() {
    single_error("bad/duplicate-key.yaml", "3:1", "duplicate key `service`");
}

#[test]
fn alias_bomb() {
    single_error(
        "bad/bomb.yaml",
        "5:8",
        "YAML refused (alias replay limit exceeded",
    );
}

#[test]
fn binary_file() {
    single_error("bad/binary.yaml", "2:10", "file is not UTF-8 text");
}

#[test]
fn empty_file() {
    single_error("bad/empty.yaml", "1:1", "the file holds no rules");
}

#[test]
fn month_written_as_1m_upper() {
    let o = run(&["check", "bad/window-1M.yaml"]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.starts_with(
        "bad/window-1M.yaml:6:13: error: `window`: unknown unit `M` in `1M`; units are ms, s, m (minutes), h, d, w; `M` would be months: for a calendar month write `window: month`, for a rolling window write days such as `30d`\n"
    ), "{}", o.stdout);
}

#[test]
fn one_minute_window_warns_and_strict_fails() {
    let expected = "window-1m.yaml: OK: service minutes, 1 SLO, 1 probe, 0 scrape targets\n\
        window-1m.yaml:8:16: warning: objective 0.999 means 0.999%; if you meant a ratio, write 99.9\n\
        window-1m.yaml:9:13: warning: window 1m is one minute; for a calendar month write `window: month`, for 30 days `30d`\n";
    let o = run(&["check", "window-1m.yaml"]);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout, expected);
    let o = run(&["check", "--strict", "window-1m.yaml"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, expected);
    assert!(o.stderr.contains("--strict: warnings fail"), "{}", o.stderr);
}

#[test]
fn hostile_generated_inputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deep = dir.path().join("deep.yaml");
    std::fs::write(&deep, "[".repeat(100_000)).expect("write");
    let deep_map = dir.path().join("deep-map.yaml");
    std::fs::write(&deep_map, "{a: ".repeat(100_000)).expect("write");
    let big = dir.path().join("big.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    std::fs::write(&big, line.repeat(20 * 1024 * 1024 / line.len() + 1)).expect("write");
    for (path, needle) in [
        (&deep, "YAML refused"),
        (&deep_map, "YAML refused"),
        (&big, "over the 8 MiB limit for a rules file"),
    ] {
        let p = path.to_str().expect("utf-8 temp path");
        let o = run(&["check", p]);
        assert_eq!(o.code, 1, "{p}: {}{}", o.stdout, o.stderr);
        let lines: Vec<&str> = o.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{}", o.stdout);
        assert!(
            lines[0].starts_with(&format!("{p}:")) && lines[0].contains(needle),
            "{}",
            lines[0]
        );
    }
}

#[test]
fn whole_fixture_tree_reports_all_files() {
    let o = run(&["check", "."]);
    assert_eq!(o.code, 1);
    // Every bad file is reported, and good files still get their OK line.
    for f in [
        "./bad/binary.yaml:",
        "./bad/bomb.yaml:",
        "./bad/duplicate-key.yaml:",
        "./bad/empty.yaml:",
        "./bad/many-errors.yaml:",
        "./bad/window-1M.yaml:",
        "./good/platform.yml: OK:",
        "./window-1m.yaml: OK:",
    ] {
        assert!(o.stdout.contains(f), "missing {f} in {}", o.stdout);
    }
}

#[test]
fn usage_errors_exit_2() {
    let o = run(&["check", "does-not-exist.yaml"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("does-not-exist.yaml: no such file or directory")
    );
    let o = run(&["check"]);
    assert_eq!(o.code, 2);
    let o = run(&["--version"]);
    assert_eq!(o.code, 0);
    assert_eq!(
        o.stdout,
        format!("burnwatch {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The shipped examples are what users copy: they must pass the strictest check, as one file
/// set (names are unique across files), with a summary line per file.
#[test]
fn shipped_examples_pass_strict_check() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let out = run(&["check", "--strict", rules.to_str().expect("utf-8 path")]);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let files: Vec<_> = std::fs::read_dir(&rules)
        .expect("rules/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .collect();
    assert!(
        files.len() >= 4,
        "expected the four example files, found {}",
        files.len()
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains(": OK: service "))
            .count(),
        files.len()
    );
    assert!(!out.stdout.contains("warning"), "{}", out.stdout);
}

/// A service or SLO label named like a label burnwatch sets itself (`tier`, `window`, ...) is
/// dropped from the exports: `check` warns at the label, naming it, and only `--strict` fails.
#[test]
fn reserved_label_names_warn_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("shop.yaml");
    std::fs::write(
        &file,
        "version: burnwatch/v1\nservice: shop\nlabels: {team: payments, tier: gold}\nslos:\n  - name: up\n    objective: 99\n    labels:\n      window: weekly\n      owner: ann\n    indicator:\n      ratio: {bad: 'errors_total', total: 'requests_total'}\n",
    )
    .expect("write rules");
    let path = file.to_str().expect("utf-8 path");
    let o = run(&["check", path]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", o.stdout);
    assert!(
        lines[0].starts_with(&format!("{path}: OK: service shop, 1 SLO")),
        "{}",
        o.stdout
    );
    assert!(
        lines[1].starts_with(&format!(
            "{path}:3:26: warning: label `tier` is set by burnwatch itself on exported series"
        )) && lines[1].contains("rename it"),
        "{}",
        o.stdout
    );
    assert!(
        lines[2].starts_with(&format!(
            "{path}:8:7: warning: label `window` is set by burnwatch"
        )),
        "{}",
        o.stdout
    );
    assert_eq!(o.stderr, "");

    let o = run(&["check", "--strict", path]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("0 error(s), 2 warning(s)"),
        "{}",
        o.stderr
    );
}

/// `check --config` checks an agent config and what it names; a good one prints one line per
/// good file, its warnings (never the secret they are about), and exits 0 unless `--strict`.
#[test]
fn good_agent_config_passes_with_its_warnings() {
    let o = run_in(&config_fixtures(), &["check", "--config", "good.yaml"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        o.stdout,
        "good.yaml: OK: agent config\n\
         good.yaml:16:26: warning: `auth_password` is written in the config; prefer \
         `auth_password: {env: VAR}` or `auth_password: {file: /path}` so the secret stays out \
         of the file\n\
         rules/shop.yaml: OK: service shop, 1 SLO, 1 probe, 0 scrape targets\n"
    );
    assert_eq!(o.stderr, "");
    let o = run_in(
        &config_fixtures(),
        &["check", "--strict", "-c", "good.yaml"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("0 error(s), 1 warning(s) in 2 file(s) (--strict: warnings fail)"),
        "{}",
        o.stderr
    );
    assert!(!format!("{}{}", o.stdout, o.stderr).contains("inline-s3cret"));
}

/// The diagnostic lines of `bad.yaml`: everything `run` refuses at start, each at its line,
/// every bad integration of a receiver (a build stops at the first).
const BAD_CONFIG: [&str; 6] = [
    "bad.yaml:11:24: error: receiver pager: pagerduty[0] routing_key: the environment variable `BURNWATCH_TEST_UNSET_ROUTING_KEY` is not set (or not UTF-8)",
    "bad.yaml:12:24: error: receiver pager: pagerduty[1] routing_key: secret file /nonexistent/burnwatch-test/routing-key: No such file or directory (os error 2)",
    "bad.yaml:17:20: error: receiver pager email[0]: email ca_file `/nonexistent/burnwatch-test/smtp-ca.pem`: No such file or directory (os error 2)",
    "bad.yaml:21:16: error: receiver hook: webhook[1] url: secret file /nonexistent/burnwatch-test/hook-url: No such file or directory (os error 2)",
    "bad.yaml:24:14: error: alertmanager ca_file `bad.yaml`: no PEM certificate in the file",
    "rules-ca/shop.yaml:8:16: error: probe `shop-health`: CA file /nonexistent/burnwatch-test/probe-ca.pem: No such file or directory (os error 2); give a readable PEM file of CA certificates",
];

/// Unresolvable secrets, missing or unparseable CA files (receivers, Alertmanager, probes):
/// `check --config` reports every one at its line, as `run` would at start.
#[test]
fn agent_config_check_reports_what_run_refuses() {
    let o = run_in(&config_fixtures(), &["check", "--config", "bad.yaml"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines, BAD_CONFIG, "{}", o.stdout);
    assert_eq!(
        o.stderr,
        "burnwatch: 6 error(s), 0 warning(s) in 2 file(s)\n"
    );
}

/// A probe's missing `ca_file` used to pass `check` and stop `run`.
#[test]
fn rules_check_refuses_a_missing_probe_ca_file() {
    let o = run_in(&config_fixtures(), &["check", "rules-ca"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stdout, format!("{}\n", BAD_CONFIG[5]));
}

/// `run` gives the same errors as `check --config`, each once, and starts nothing.
#[test]
fn run_refuses_with_the_same_diagnostics_as_check() {
    let o = run_in(&config_fixtures(), &["run", "--config", "bad.yaml"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let mut want: Vec<String> = BAD_CONFIG.iter().map(|l| l.to_string()).collect();
    want.push(
        "burnwatch: cannot start: 6 error(s) in bad.yaml or the files it names \
         (`burnwatch check --config bad.yaml` reports the same)"
            .to_owned(),
    );
    let got: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(got, want, "{}", o.stderr);
}

/// An error whose message already ends with its cause is printed with the cause once (it was
/// printed twice: "Not a directory (os error 20): Not a directory (os error 20)").
#[test]
fn start_errors_name_their_cause_once() {
    let o = run_in(
        &config_fixtures(),
        &["run", "--config", "datadir-under-file.yaml"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let last = o.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "burnwatch: cannot create the data directory datadir-under-file.yaml/state: Not a \
         directory (os error 20)",
        "{}",
        o.stderr
    );
}

/// An API left open to other hosts on purpose (`api.allow_unauthenticated`) is a warning of
/// `check --config` (failing `--strict`), in the same words `run` gives before it starts; it
/// used to be logged by `run` only.
#[test]
fn an_open_api_warns_in_check_as_in_run() {
    const WARNING: &str = "open-api.yaml:8:26: warning: the API on 0.0.0.0:0 has no token \
        (api.allow_unauthenticated): anyone who can reach it can silence every alert; set api.token";
    let o = run_in(&config_fixtures(), &["check", "--config", "open-api.yaml"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        o.stdout,
        format!(
            "open-api.yaml: OK: agent config\n{WARNING}\n\
             rules/shop.yaml: OK: service shop, 1 SLO, 1 probe, 0 scrape targets\n"
        )
    );
    let o = run_in(
        &config_fixtures(),
        &["check", "--strict", "--config", "open-api.yaml"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("0 error(s), 1 warning(s) in 2 file(s) (--strict: warnings fail)"),
        "{}",
        o.stderr
    );
    let o = run_in(&config_fixtures(), &["run", "--config", "open-api.yaml"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.first().copied(), Some(WARNING), "{}", o.stderr);
    assert_eq!(
        lines.iter().filter(|l| l.contains("has no token")).count(),
        1,
        "{}",
        o.stderr
    );
}

#[test]
fn agent_config_usage_errors_exit_2() {
    let o = run_in(&config_fixtures(), &["check", "--config", "missing.yaml"]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("missing.yaml: no such file"),
        "{}",
        o.stderr
    );
    let o = run_in(
        &config_fixtures(),
        &["check", "--config", "good.yaml", "rules"],
    );
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
}

/// The shipped agent config, next to the shipped example rules as it expects them
/// (`rules/*.yaml`), passes the strictest `check --config`.
#[test]
fn shipped_agent_config_passes_strict_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        root.join("deploy/burnwatch.yaml"),
        dir.path().join("burnwatch.yaml"),
    )
    .expect("copy the config");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    for e in std::fs::read_dir(root.join("rules")).expect("rules/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let name = p.file_name().expect("file name");
            std::fs::copy(&p, dir.path().join("rules").join(name)).expect("copy rules");
        }
    }
    let o = run_in(
        dir.path(),
        &["check", "--strict", "--config", "burnwatch.yaml"],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with("burnwatch.yaml: OK: agent config\n"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("warning"), "{}", o.stdout);
}

/// `burnwatch convert -o DIR` on Sloth's examples writes `burnwatch/v1` files that `check`
/// accepts as the same SLOs, with the Sloth fields it ignores noted; `check` reads the Sloth
/// files themselves too.
#[test]
fn convert_writes_files_check_accepts() {
    let sloth = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sloth");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().to_str().expect("utf-8 path");
    let sloth_path = sloth.to_str().expect("utf-8 path");
    let files = [
        format!("{sloth_path}/getting-started.yml"),
        format!("{sloth_path}/kubernetes-apiserver.yml"),
    ];
    let o = run(&["convert", "-o", out, &files[0], &files[1]]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let checked = run(&["check", out]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked
            .stdout
            .contains("getting-started.yaml: OK: service myservice, 1 SLO"),
        "{}",
        checked.stdout
    );
    assert!(
        checked
            .stdout
            .contains("kubernetes-apiserver.yaml: OK: service k8s-apiserver, 2 SLOs"),
        "{}",
        checked.stdout
    );
    let text =
        std::fs::read_to_string(out_dir.path().join("getting-started.yaml")).expect("written");
    // The alert name and annotations come along as burnwatch/v1 fields.
    assert!(
        text.contains("alert_name: \"MyServiceHighErrorRate\"")
            && text.contains(
                "annotations: {summary: \"High error rate on 'myservice' requests responses\"}"
            ),
        "{text}"
    );
    let sloth_checked = run(&["check", &files[0]]);
    assert_eq!(sloth_checked.code, 0, "{}", sloth_checked.stderr);
}

/// A Sloth SLO whose queries do not translate is a `query` SLO: `check` passes with a warning
/// at the query and says per service how many were translated and how many need a query
/// source; `check --config` and `run` refuse it, naming the SLO, while the config has no
/// `sources.prometheus` entry, and accept it once the config has one.
#[test]
fn query_slos_need_a_source_in_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sloth.yml"),
        "version: prometheus/v1\nservice: api\nslos:\n  - name: ok\n    objective: 99\n    sli:\n      events:\n        error_query: sum(rate(x{code=\"500\"}[{{.window}}]))\n        total_query: sum(rate(x[{{.window}}]))\n  - name: ratio-of-rates\n    objective: 99\n    sli:\n      events:\n        error_query: sum(rate(x{code=\"500\"}[{{.window}}])) * 2\n        total_query: sum(rate(x[{{.window}}]))\n",
    )
    .expect("rules");
    let o = run_in(dir.path(), &["check", "sloth.yml"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains(
            "sloth.yml: OK: service api, 2 SLOs (1 translated to selectors, 1 needs a query source)"
        ),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("sloth.yml:14:22: warning: needs a query source"),
        "{}",
        o.stdout
    );
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(&cfg, "rules: [sloth.yml]\ndata_dir: data\n").expect("config");
    for args in [
        &["check", "--config", "burnwatch.yaml"][..],
        &["run", "--config", "burnwatch.yaml"][..],
    ] {
        let o = run_in(dir.path(), args);
        assert_eq!(o.code, 1, "{args:?}: {}{}", o.stdout, o.stderr);
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(
            all.contains("SLO api/ratio-of-rates: it needs a query source"),
            "{args:?}: {all}"
        );
    }
    std::fs::write(
        &cfg,
        "rules: [sloth.yml]\ndata_dir: data\nsources:\n  prometheus:\n    - {name: prom, url: 'http://127.0.0.1:1'}\n",
    )
    .expect("config");
    let o = run_in(dir.path(), &["check", "--config", "burnwatch.yaml"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

/// `burnwatch check` on OpenSLO files: per service OK lines where the SLOs are, the other objects
/// counted, every reported field printed; `convert -o DIR` writes `burnwatch/v1` that `check`
/// accepts; OpenSLO's own published example is refused at the field with the reason.
#[test]
fn openslo_files_check_convert_and_check_again() {
    let openslo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openslo");
    let o = run_in(&openslo, &["check", "prometheus"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    for line in [
        "prometheus/slos.yaml: OK: service web-shop, 1 SLO (1 translated to selectors), 0 probes, 0 scrape targets; service web-availability, 2 SLOs (2 translated to selectors), 0 probes, 0 scrape targets",
        "prometheus/alerting.yaml: OK: 5 other OpenSLO objects (SLIs, alert policies, ...)",
        "prometheus/web-shop.yaml: OK: 3 other OpenSLO objects (SLIs, alert policies, ...)",
        "prometheus/web-shop.yaml:22:5: warning: ignored: `connectionDetails`",
        "prometheus/alerting.yaml:9:3: warning: ignored: `alertWhenResolved`",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().to_str().expect("utf-8 path");
    let c = run_in(&openslo, &["convert", "-o", out, "prometheus"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    let checked = run(&["check", "--strict", out]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked.stdout.contains(
            "slos.yaml: OK: service web-shop, 1 SLO, 0 probes, 0 scrape targets; service web-availability, 2 SLOs"
        ),
        "{}",
        checked.stdout
    );
    let text = std::fs::read_to_string(out_dir.path().join("slos.yaml")).expect("written");
    // What the object files said burnwatch does otherwise is noted with the SLOs naming them.
    assert!(
        text.contains("# prometheus/web-shop.yaml:22:5: warning: ignored: `connectionDetails`"),
        "{text}"
    );
    assert!(
        text.contains("fast-burn: {long: 1h, short: 5m, burn_rate: 14, severity: \"page\", for: 2m, labels: {notification_target:"),
        "{text}"
    );
    // The published example: its placeholder source and its `1m` calendar window, at their lines.
    let p = run_in(&openslo, &["check", "timeslices-slo.yaml"]);
    assert_eq!(p.code, 1, "{}{}", p.stdout, p.stderr);
    assert!(
        p.stdout
            .contains("timeslices-slo.yaml:18:13: error: this SLI needs a query source")
            && p.stdout.contains(
                "timeslices-slo.yaml:27:17: warning: calendar `duration: 1m` is one minute"
            ),
        "{}",
        p.stdout
    );
}
