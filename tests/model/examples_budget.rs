//! Checks the error-budget comments of the example rules files in `rules/` against exact
//! arithmetic, and the company SLO tables against the figures they are meant to show.
//!
//! The files are read as text, not through the rules decoder, so this test holds even while the
//! decoder changes; `burnwatch check rules/` is tested separately. The comment convention (also in
//! `docs/rules.md` and at the top of every example file):
//!
//! - In the block of comment lines directly above every SLO's `objective:` line there is exactly
//!   one line `# monthly error budget (30d): <budget>`, with `<budget>` = (1 - objective/100) x 30d.
//! - The same block may hold `# error budget in <slice> slices (30d): <n>` (bad slices allowed in
//!   30 days, `<slice>` being the SLO's timeslice) and `# error budget over <period>: <budget>`.
//! - Budgets are written `<D>d<H>h<M>m<S>s`, largest unit first, a part only when it is not zero,
//!   seconds with at most three decimals and no trailing zeros (`1d12h`, `43m12s`, `4m19.2s`).
//!
//! All arithmetic is in integers: objectives in parts per million, durations in milliseconds.
//!
//! The last tests run the same example rules (and the demo's) through the engine from a fresh
//! start, as a new install or a lost `data_dir` does: one failed check must not page or exhaust a
//! budget, and a real outage must still page (see "Fresh starts and coverage" in docs/rules.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const MS_PER_SEC: u64 = 1_000;
const MS_PER_MIN: u64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: u64 = 60 * MS_PER_MIN;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const THIRTY_DAYS: u64 = 30 * MS_PER_DAY;
const PPM: u64 = 1_000_000;

const MONTHLY: &str = "# monthly error budget (30d): ";
const SLICES_PREFIX: &str = "# error budget in ";
const SLICES_SUFFIX: &str = " slices (30d): ";
const OVER_PREFIX: &str = "# error budget over ";

/// A percentage written in decimal (`99.9`, `"99.95%"`) as parts per million, exactly; `None`
/// when it is not a plain decimal or has more precision than a ppm.
fn percent_to_ppm(text: &str) -> Option<u64> {
    let t = text.trim().trim_matches(|c| c == '"' || c == '\'');
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || frac.len() > 4
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: u64 = int.parse().ok()?;
    let mut frac_ppm: u64 = 0;
    for (i, d) in frac.bytes().enumerate() {
        frac_ppm += u64::from(d - b'0') * 10u64.pow(3 - i as u32);
    }
    Some(int.checked_mul(10_000)? + frac_ppm)
}

/// The budget of `period_ms` at an objective of `ppm`: `(1 - ppm/1e6) x period`, in whole
/// milliseconds; `None` if it is not a whole number of milliseconds.
fn budget_ms(ppm: u64, period_ms: u64) -> Option<u64> {
    assert!(
        ppm > 0 && ppm < PPM,
        "objective {ppm} ppm is outside (0, 100%)"
    );
    let num = u128::from(PPM - ppm) * u128::from(period_ms);
    (num % u128::from(PPM) == 0).then(|| (num / u128::from(PPM)) as u64)
}

/// The canonical compact text of a duration: `1d12h`, `43m12s`, `4m19.2s`, `250ms` is `0.25s`.
fn format_compact(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("d", MS_PER_DAY), ("h", MS_PER_HOUR), ("m", MS_PER_MIN)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 {
        let (secs, millis) = (rest / MS_PER_SEC, rest % MS_PER_SEC);
        if millis == 0 {
            out.push_str(&format!("{secs}s"));
        } else {
            let frac = format!("{millis:03}");
            out.push_str(&format!("{secs}.{}s", frac.trim_end_matches('0')));
        }
    }
    out
}

/// Parses the compact form (`1d12h`, `4m19.2s`, `744h`, `5m`) and YAML durations with `ms`
/// (`250ms`) into milliseconds. Units must appear largest first, each at most once.
fn parse_compact(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_size = u64::MAX;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let number = &t[start..i];
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let size = match &t[ustart..i] {
            "d" => MS_PER_DAY,
            "h" => MS_PER_HOUR,
            "m" => MS_PER_MIN,
            "s" => MS_PER_SEC,
            "ms" => 1,
            _ => return None,
        };
        if size >= last_size || number.is_empty() {
            return None;
        }
        last_size = size;
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        // Only seconds may carry a fraction, and only to the millisecond.
        if !frac.is_empty() && (size != MS_PER_SEC || frac.len() > 3) {
            return None;
        }
        let int: u64 = int.parse().ok()?;
        let frac_ms: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}").parse().ok()?
        };
        total = total.checked_add(int.checked_mul(size)?.checked_add(frac_ms)?)?;
    }
    Some(total)
}

/// `num / den` as an exact decimal with trailing zeros trimmed (`43.2`, `2160`); `None` if the
/// decimal does not end within six places.
fn exact_decimal(num: u64, den: u64) -> Option<String> {
    let int = num / den;
    let mut rem = num % den;
    let mut digits = String::new();
    for _ in 0..6 {
        if rem == 0 {
            break;
        }
        rem *= 10;
        digits.push(char::from(b'0' + (rem / den) as u8));
        rem %= den;
    }
    if rem != 0 {
        return None;
    }
    Some(if digits.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{digits}")
    })
}

/// The value of a `key: value` line, with any trailing ` # comment` removed.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
    let rest = rest.split(" #").next().unwrap_or(rest);
    Some(rest.trim().trim_matches(|c| c == '"' || c == '\''))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// One SLO list item as read from the text.
#[derive(Debug)]
struct SloText {
    file: String,
    service: String,
    name: String,
    /// 1-based line of `objective:`.
    line: usize,
    objective_ppm: u64,
    /// The first key under `indicator:` (`ratio`, `probe`, `latency_threshold`, ...).
    indicator: String,
    percentile: Option<String>,
    threshold_ms: Option<u64>,
    timeslice_ms: Option<u64>,
    /// Budget comment lines found directly above `objective:`.
    budget_comments: Vec<String>,
}

/// Reads every SLO of one rules file. Panics with the file and line on anything it cannot read.
fn read_slos(path: &Path) -> (Vec<SloText>, usize) {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let budget_like = lines
        .iter()
        .filter(|l| {
            let t = l.trim();
            t.starts_with(MONTHLY.trim_end())
                || t.starts_with(SLICES_PREFIX)
                || t.starts_with(OVER_PREFIX)
        })
        .count();

    let mut slos = Vec::new();
    let mut service = String::new();
    let mut in_slos = false;
    let mut item_start: Option<usize> = None;
    // (service, first line, end line exclusive) of every item of a `slos:` list.
    let mut items: Vec<(String, usize, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() || is_comment(line) {
            continue;
        }
        if *line == "---" || indent(line) == 0 {
            if let Some(s) = item_start.take() {
                items.push((service.clone(), s, i));
            }
            in_slos = line.starts_with("slos:");
            if let Some(v) = value_of(line, "service") {
                service = v.to_owned();
            }
            continue;
        }
        if in_slos && indent(line) == 2 && line.trim_start().starts_with("- ") {
            // A new `- ` item at the list's indent ends the previous one.
            let previous = item_start.replace(i);
            if let Some(s) = previous {
                items.push((service.clone(), s, i));
            }
        }
    }
    if let Some(s) = item_start {
        items.push((service.clone(), s, lines.len()));
    }

    for (service, start, end) in items {
        let item = &lines[start..end];
        let field = |key: &str| item.iter().find_map(|l| value_of(l, key));
        let name = item[0]
            .trim_start()
            .strip_prefix("- ")
            .and_then(|l| value_of(l, "name"))
            .unwrap_or_else(|| panic!("{file}:{}: SLO item must start with `- name:`", start + 1))
            .to_owned();
        let obj_idx = item
            .iter()
            .position(|l| !is_comment(l) && value_of(l, "objective").is_some())
            .unwrap_or_else(|| panic!("{file}: {service}/{name} has no `objective:` line"));
        let objective_text = value_of(item[obj_idx], "objective").unwrap_or_default();
        let objective_ppm = percent_to_ppm(objective_text).unwrap_or_else(|| {
            panic!(
                "{file}:{}: objective `{objective_text}` is not an exact decimal percentage",
                start + obj_idx + 1
            )
        });
        let mut budget_comments = Vec::new();
        let mut k = obj_idx;
        while k > 0 && is_comment(item[k - 1]) {
            k -= 1;
            let t = item[k].trim();
            if t.starts_with(MONTHLY.trim_end())
                || t.starts_with(SLICES_PREFIX)
                || t.starts_with(OVER_PREFIX)
            {
                budget_comments.push(t.to_owned());
            }
        }
        let indicator_idx = item
            .iter()
            .position(|l| l.trim() == "indicator:")
            .unwrap_or_else(|| panic!("{file}: {service}/{name} has no `indicator:` block"));
        let indicator = item[indicator_idx + 1..]
            .iter()
            .find(|l| !is_comment(l) && !l.trim().is_empty())
            .and_then(|l| l.trim().split(':').next())
            .unwrap_or_default()
            .to_owned();
        let threshold_ms = field("threshold").map(|t| {
            parse_compact(t).unwrap_or_else(|| panic!("{file}: {service}/{name}: threshold {t}"))
        });
        let timeslice_ms = field("timeslice").map(|t| {
            parse_compact(t).unwrap_or_else(|| panic!("{file}: {service}/{name}: timeslice {t}"))
        });
        slos.push(SloText {
            file: file.clone(),
            service,
            name,
            line: start + obj_idx + 1,
            objective_ppm,
            indicator,
            percentile: field("percentile").map(str::to_owned),
            threshold_ms,
            timeslice_ms,
            budget_comments,
        });
    }
    (slos, budget_like)
}

fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Checks the budget comments of one SLO; returns how many comment lines it verified.
fn check_budget_comments(slo: &SloText) -> usize {
    let at = format!("{}:{} ({}/{})", slo.file, slo.line, slo.service, slo.name);
    let monthly: Vec<&String> = slo
        .budget_comments
        .iter()
        .filter(|c| c.starts_with(MONTHLY))
        .collect();
    assert_eq!(
        monthly.len(),
        1,
        "{at}: needs exactly one `{MONTHLY}<budget>` line directly above `objective:`"
    );
    for comment in &slo.budget_comments {
        if let Some(written) = comment.strip_prefix(MONTHLY) {
            let ms = budget_ms(slo.objective_ppm, THIRTY_DAYS)
                .unwrap_or_else(|| panic!("{at}: 30d budget is not whole milliseconds"));
            assert_eq!(
                parse_compact(written),
                Some(ms),
                "{at}: `{comment}` should be {}",
                format_compact(ms)
            );
            assert_eq!(written, format_compact(ms), "{at}: not in canonical form");
        } else if let Some(rest) = comment.strip_prefix(SLICES_PREFIX) {
            let (slice, count) = rest
                .split_once(SLICES_SUFFIX)
                .unwrap_or_else(|| panic!("{at}: malformed `{comment}`"));
            let slice_ms =
                parse_compact(slice).unwrap_or_else(|| panic!("{at}: bad slice `{slice}`"));
            // The slice named must be the SLO's own: explicit, or the 1m default of
            // latency_percentile.
            let own = slo
                .timeslice_ms
                .or_else(|| (slo.indicator == "latency_percentile").then_some(MS_PER_MIN));
            assert_eq!(
                Some(slice_ms),
                own,
                "{at}: `{comment}` names another slice length"
            );
            let ms = budget_ms(slo.objective_ppm, THIRTY_DAYS)
                .unwrap_or_else(|| panic!("{at}: 30d budget is not whole milliseconds"));
            let expected = exact_decimal(ms, slice_ms)
                .unwrap_or_else(|| panic!("{at}: slice budget is not a finite decimal"));
            assert_eq!(count, expected, "{at}: `{comment}`");
        } else if let Some(rest) = comment.strip_prefix(OVER_PREFIX) {
            let (period, written) = rest
                .split_once(": ")
                .unwrap_or_else(|| panic!("{at}: malformed `{comment}`"));
            let period_ms =
                parse_compact(period).unwrap_or_else(|| panic!("{at}: bad period `{period}`"));
            let ms = budget_ms(slo.objective_ppm, period_ms)
                .unwrap_or_else(|| panic!("{at}: budget over {period} is not whole milliseconds"));
            assert_eq!(written, format_compact(ms), "{at}: `{comment}`");
        } else {
            panic!("{at}: unknown budget comment `{comment}`");
        }
    }
    slo.budget_comments.len()
}

#[test]
fn budget_comments_match_objectives() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for needed in [
        "checkout.yaml",
        "company-growth.yaml",
        "company-mvp.yaml",
        "company-scale.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == needed),
            "rules/{needed} is missing"
        );
    }
    let mut total_slos = 0;
    for path in &files {
        let (slos, budget_like) = read_slos(path);
        assert!(!slos.is_empty(), "{}: no SLOs found", path.display());
        let checked: usize = slos.iter().map(check_budget_comments).sum();
        // A budget comment that is not directly above an `objective:` belongs to no SLO.
        assert_eq!(
            checked,
            budget_like,
            "{}: some budget comments are not directly above an `objective:` line",
            path.display()
        );
        // Every `objective:` line of the file was read as part of an SLO item.
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let objective_lines = text
            .lines()
            .filter(|l| !is_comment(l) && value_of(l, "objective").is_some())
            .count();
        assert_eq!(slos.len(), objective_lines, "{}: SLOs read", path.display());
        total_slos += slos.len();
    }
    // 7 + 8 + 8 company SLOs and 5 checkout SLOs.
    assert!(total_slos >= 28, "only {total_slos} SLOs read from rules/");
}

/// (file, [(service, objective, p95 threshold in ms or none)])
type Table = [(
    &'static str,
    &'static [(&'static str, &'static str, Option<u64>)],
)];

const COMPANY: &Table = &[
    (
        "company-mvp.yaml",
        &[
            ("mvp-web", "95", Some(2_000)),
            ("mvp-api", "95", Some(500)),
            ("mvp-db", "99", Some(100)),
            ("mvp-jobs", "90", None),
        ],
    ),
    (
        "company-growth.yaml",
        &[
            ("growth-web", "99", Some(1_000)),
            ("growth-api", "99", Some(300)),
            ("growth-db", "99.5", Some(50)),
            ("growth-inference", "98", Some(2_000)),
        ],
    ),
    (
        "company-scale.yaml",
        &[
            ("scale-web", "99.9", Some(500)),
            ("scale-api", "99.9", Some(200)),
            ("scale-db-cluster", "99.95", Some(20)),
            ("scale-inference", "99.5", Some(1_000)),
        ],
    ),
];

#[test]
fn company_tables_hold_the_agreed_objectives() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for (file, table) in COMPANY {
        let (slos, _) = read_slos(&dir.join(file));
        let mut by_service: BTreeMap<&str, Vec<&SloText>> = BTreeMap::new();
        for slo in &slos {
            by_service
                .entry(slo.service.as_str())
                .or_default()
                .push(slo);
        }
        let found: Vec<&str> = by_service.keys().copied().collect();
        let mut wanted: Vec<&str> = table.iter().map(|(s, _, _)| *s).collect();
        wanted.sort_unstable();
        assert_eq!(found, wanted, "{file}: services");

        for (service, objective, p95_ms) in table.iter() {
            let want_ppm = percent_to_ppm(objective).expect("table objective is a decimal");
            let service_slos = &by_service[service];
            let availability: Vec<_> = service_slos
                .iter()
                .filter(|s| s.indicator == "ratio" || s.indicator == "probe")
                .collect();
            assert_eq!(
                availability.len(),
                1,
                "{file}: {service}: one availability SLO"
            );
            assert_eq!(
                availability[0].objective_ppm, want_ppm,
                "{file}: {service}: availability objective"
            );
            let latency: Vec<_> = service_slos
                .iter()
                .filter(|s| s.indicator == "latency_percentile")
                .collect();
            match p95_ms {
                Some(ms) => {
                    assert_eq!(latency.len(), 1, "{file}: {service}: one latency SLO");
                    let l = latency[0];
                    assert_eq!(
                        l.objective_ppm, want_ppm,
                        "{file}: {service}: latency objective"
                    );
                    assert_eq!(
                        l.percentile.as_deref(),
                        Some("95"),
                        "{file}: {service}: p95"
                    );
                    assert_eq!(l.threshold_ms, Some(*ms), "{file}: {service}: threshold");
                }
                None => assert!(latency.is_empty(), "{file}: {service}: no latency SLO"),
            }
            assert_eq!(
                service_slos.len(),
                1 + usize::from(p95_ms.is_some()),
                "{file}: {service}: no SLOs beyond availability and latency"
            );
        }
    }
}

#[test]
fn well_known_budgets() {
    for (objective, text, ms) in [
        ("99.9", "43m12s", 2_592_000),
        ("99", "7h12m", 25_920_000),
        ("95", "1d12h", 129_600_000),
        ("99.95", "21m36s", 1_296_000),
        ("90", "3d", 259_200_000),
        ("99.5", "3h36m", 12_960_000),
        ("98", "14h24m", 51_840_000),
        ("99.99", "4m19.2s", 259_200),
        ("99.999", "25.92s", 25_920),
    ] {
        let ppm = percent_to_ppm(objective).expect("decimal objective");
        let budget = budget_ms(ppm, THIRTY_DAYS).expect("whole milliseconds");
        assert_eq!(budget, ms, "{objective}%");
        assert_eq!(format_compact(budget), text, "{objective}%");
        assert_eq!(parse_compact(text), Some(ms), "{text}");
    }
    // Calendar months in Europe/Berlin at 99.9%: 31 days, March (23h day), October (25h day).
    let ppm = percent_to_ppm("99.9%").expect("decimal objective");
    for (hours, text) in [
        (744, "44m38.4s"),
        (743, "44m34.8s"),
        (745, "44m42s"),
        (672, "40m19.2s"),
    ] {
        let budget = budget_ms(ppm, hours * MS_PER_HOUR).expect("whole milliseconds");
        assert_eq!(format_compact(budget), text, "{hours}h");
    }
}

#[test]
fn helpers_are_exact() {
    assert_eq!(percent_to_ppm("99.9"), Some(999_000));
    assert_eq!(percent_to_ppm("\"99.95%\""), Some(999_500));
    assert_eq!(percent_to_ppm("95"), Some(950_000));
    assert_eq!(percent_to_ppm("99.12345"), None);
    assert_eq!(percent_to_ppm("0.999e2"), None);
    assert_eq!(exact_decimal(2_592_000, 60_000), Some("43.2".to_owned()));
    assert_eq!(exact_decimal(129_600_000, 60_000), Some("2160".to_owned()));
    assert_eq!(exact_decimal(1, 3), None);
    assert_eq!(parse_compact("1d12h"), Some(129_600_000));
    assert_eq!(parse_compact("250ms"), Some(250));
    assert_eq!(parse_compact("12h1d"), None);
    assert_eq!(parse_compact("1.5m"), None);
    assert_eq!(format_compact(250), "0.25s");
    assert_eq!(format_compact(MS_PER_DAY + 1), "1d0.001s");
}

// ---- Fresh starts through the engine ----

use burnwatch::rules::model::{
    Alerting, Indicator, LatencySource, NoDataPolicy, Objective, RuleSet, Slo, SloId, default_tiers,
};
use burnwatch::slo::{Engine, SloIdx, SloReport};
use burnwatch::time::Timestamp;

/// 2024-06-03T00:00:00Z, the moment of a fresh start.
const START: i64 = 1_717_372_800_000;

fn shipped_rules() -> RuleSet {
    let report = burnwatch::rules::check_paths(&example_files());
    report
        .rules
        .unwrap_or_else(|| panic!("the example rules do not load: {:?}", report.diagnostics))
}

/// The probe an SLO is measured by, if any.
fn probe_of(slo: &Slo) -> Option<&str> {
    match &slo.indicator {
        Indicator::ProbeAvailability { probe } => Some(probe),
        Indicator::LatencyThreshold {
            source: LatencySource::Probe { probe },
            ..
        }
        | Indicator::LatencyPercentile {
            source: LatencySource::Probe { probe },
            ..
        } => Some(probe),
        _ => None,
    }
}

/// One check of `probe` for an SLO: failed checks are bad (a timeout for latency SLOs).
fn record_check(e: &mut Engine, i: SloIdx, slo: &Slo, at: Timestamp, ok: bool) {
    match &slo.indicator {
        Indicator::ProbeAvailability { .. } => e.record(i, at, ok).expect("valid"),
        _ => e
            .record_latency(i, at, if ok { 0.01 } else { 30.0 })
            .expect("valid"),
    }
}

/// Any firing condition or spent budget in a report: what would page or say "exhausted".
fn alarms(r: &SloReport) -> Vec<String> {
    let mut out: Vec<String> = r
        .tiers
        .iter()
        .filter(|t| t.condition)
        .map(|t| format!("{} {} (long {:.1}x)", r.id, t.name, t.long_burn))
        .collect();
    if r.budget.remaining <= 0.0 {
        out.push(format!(
            "{} budget exhausted ({})",
            r.id, r.budget.remaining
        ));
    }
    out
}

/// Every probe-measured SLO of the shipped rules, plus the SLO an operator would add on the
/// shipped DNS probe (`scale-web-dns`, every 30 s) at 99.9 % with the default tiers, on a fresh
/// start whose first check fails and the next ones pass: evaluated every 5 s for two hours,
/// nothing pages and no budget reads as spent. Before any check, `no_data: bad` pages nothing.
#[test]
fn fresh_start_one_failed_check_does_not_page() {
    let rules = shipped_rules();
    let mut slos: Vec<Slo> = rules.slos().cloned().collect();
    let dns = rules
        .probes
        .iter()
        .find(|p| p.name == "scale-web-dns")
        .expect("the shipped DNS probe");
    let mut on_dns = slos
        .iter()
        .find(|s| matches!(s.indicator, Indicator::ProbeAvailability { .. }))
        .expect("a probe SLO")
        .clone();
    on_dns.id = SloId {
        service: dns.service.clone(),
        slo: "dns".into(),
    };
    on_dns.indicator = Indicator::ProbeAvailability {
        probe: dns.name.clone(),
    };
    on_dns.objective = Objective::from_percent(99.9).expect("valid");
    on_dns.no_data = NoDataPolicy::Ignore;
    on_dns.alerting = Alerting {
        tiers: default_tiers(&on_dns.window),
        ..Alerting::default()
    };
    slos.push(on_dns);
    let mut e = Engine::new();
    let idx: Vec<SloIdx> = slos.iter().map(|s| e.add_slo(s)).collect();
    // Before any collection (the first scrape and checks are seconds away).
    let snap = e.evaluate(Timestamp(START));
    let early: Vec<String> = snap.slos.iter().flat_map(alarms).collect();
    assert!(early.is_empty(), "before any collection: {early:?}");

    let probed: Vec<(usize, i64)> = slos
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let name = probe_of(s)?;
            let p = rules.probes.iter().find(|p| p.name == name)?;
            Some((i, p.interval.millis() as i64))
        })
        .collect();
    assert!(probed.len() >= 4, "{probed:?}");
    let mut checked = 0;
    for step in 1..=(2 * 3600 / 5) {
        let now = START + step * 5_000;
        for &(i, every) in &probed {
            // Checks at START + 1 s + k x interval; the first one fails.
            let first = START + 1_000;
            if now >= first && (now - first) % every < 5_000 {
                let k = (now - first) / every;
                let at = Timestamp(first + k * every);
                record_check(&mut e, idx[i], &slos[i], at, k != 0);
                checked += 1;
            }
        }
        let snap = e.evaluate(Timestamp(now));
        for &(i, _) in &probed {
            let a = alarms(&snap.slos[i]);
            assert!(a.is_empty(), "at +{} s: {a:?}", step * 5);
        }
    }
    assert!(checked > 1000);
}

/// The demo's rules and traffic (a health check and a scrape every 5 s, 50 requests per second,
/// evaluation every 5 s; from +60 s half the requests fail and every health check fails): the
/// 3d/6h ticket tier does not fire in the whole 4-minute outage (the old engine fired it 10 s
/// in), while page_fast, 2 % of the 30-day budget within 1 h, pages once that much is spent:
/// health 11 failed checks in, at +110 s; availability (99.9 %, 50 requests a second, so a 1 h
/// budget of 180 bad requests x 14.4 = 2592) once 25 x 105 s = 2625 requests have failed, at
/// +165 s; latency (99 %, 25920 slow requests) not in the outage.
#[test]
fn demo_outage_pages_but_does_not_ticket_at_once() {
    let rules = burnwatch::rules::load_str(
        "demo.yaml",
        &burnwatch::synthetic::rules_yaml("http://demo"),
    )
    .expect("demo rules");
    let mut e = Engine::from_rules(&rules);
    let id = |slo: &str| {
        e.index_of(&SloId {
            service: "demo-shop".into(),
            slo: slo.into(),
        })
        .expect("demo SLO")
    };
    let (availability, latency, health) = (id("availability"), id("latency"), id("health"));
    let outage = START + 60_000;
    let mut page_fast_at = None;
    let mut availability_page_at = None;
    for step in 0..=(300 / 5) {
        let now = START + step * 5_000;
        let down = now >= outage;
        e.record(health, Timestamp(now), !down).expect("valid");
        if step > 0 {
            // 250 requests since the last scrape; half fail (and are slow) in the outage.
            let good = if down { 125 } else { 250 };
            e.record_counts(availability, Timestamp(now), good, 250)
                .expect("valid");
            e.record_counts(latency, Timestamp(now), good, 250)
                .expect("valid");
        }
        let snap = e.evaluate(Timestamp(now));
        for r in &snap.slos {
            for t in &r.tiers {
                assert!(
                    !(t.name == "ticket_slow" && t.condition),
                    "{} ticket_slow at +{} s: long {:.2}x",
                    r.id,
                    step * 5,
                    t.long_burn
                );
            }
        }
        let fires = |i: SloIdx, tier: &str| {
            snap.slos[i.0 as usize]
                .tiers
                .iter()
                .any(|t| t.name == tier && t.condition)
        };
        if fires(availability, "page_fast") && availability_page_at.is_none() {
            availability_page_at = Some(now - START);
        }
        assert!(
            !fires(latency, "page_fast"),
            "latency pages at +{} s",
            step * 5
        );
        let h = &snap.slos[health.0 as usize];
        let fast = h
            .tiers
            .iter()
            .find(|t| t.name == "page_fast")
            .expect("tier");
        if fast.condition && page_fast_at.is_none() {
            page_fast_at = Some(now - START);
        }
        assert!(
            h.budget.remaining > 0.9,
            "+{} s: {}",
            step * 5,
            h.budget.remaining
        );
    }
    assert_eq!(page_fast_at, Some(110_000));
    assert_eq!(availability_page_at, Some(165_000));
}
