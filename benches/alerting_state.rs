//! Making one alerting state change durable, with 10,000 silences and 50,000 alerts in the
//! state: a silence POST (set the silence, commit it) and a delivery outcome (write the
//! notification log, settle the notification in flight, commit), on the whole-file path of
//! earlier releases (`storage::save` of the whole state: encode, write, fsync, rename, fsync
//! the directory) and on the log path (`agent::journal`: encode the records, append one group
//! commit) in each `alerting.state_durability`: `process` (answered once written, fdatasync
//! in the background: `/log`) and `power` (answered after the fdatasync: `/log_power`).
//!
//! Target (issue 11): under 5 ms p99 for either change. Criterion reports the medians; a plain
//! loop of single operations prints median and p99 of each path, of the log path while a
//! compaction of the whole state runs beside it, and of one bare fdatasync (the floor of any
//! durable commit on the disk at hand), and the CPU part of each change without its write. It
//! also prints the view the alerting task publishes after a change (every firing alert with
//! its silences), and the silence lookup of that view indexed and as the scan of every
//! silence it was before.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use burnwatch::agent::journal::{self, AlertingState, Journal, Record};
use burnwatch::alert::{Alert, Matchers};
use burnwatch::alerter::Alerter;
use burnwatch::notify::Notification;
use burnwatch::notify::config::StateDurability;
use burnwatch::notify::dispatch::Dispatcher;
use burnwatch::notify::nflog::NflogKey;
use burnwatch::notify::silence::{SilenceLimits, SilenceRequest, Silences};
use burnwatch::rules::model::Labels;
use burnwatch::storage;
use burnwatch::time::{Dur, Timestamp};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{dispatcher, rule_set, snapshot};

const SILENCES: usize = 10_000;
const ALERTS: usize = 50_000;

/// Whether this is a measuring run (`cargo bench` passes `--bench`); `cargo test --all-targets`
/// runs the bench once, on a small state and few operations, to check that it works.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Silences and stored alerts of the state: the figures when measuring.
fn sizes() -> (usize, usize) {
    if measuring() {
        (SILENCES, ALERTS)
    } else {
        (100, 1_000)
    }
}

fn request(i: usize) -> SilenceRequest {
    let matchers = match Matchers::parse(&format!("alertname=\"Maintenance{i}\", team=\"core\"")) {
        Ok(m) => m,
        Err(e) => panic!("matchers: {e}"),
    };
    SilenceRequest {
        id: None,
        matchers,
        starts_at: None,
        ends_at: Timestamp(common::T0 + 86_400_000),
        created_by: "bench".to_owned(),
        comment: format!("planned maintenance {i}"),
    }
}

const LIMITS: SilenceLimits = SilenceLimits {
    max_count: 1_000_000,
    max_duration: Dur::from_days(90),
};

/// The alerting task's state at 10,000 SLOs (every one burning), topped up with plain alerts
/// to 50,000 stored alerts, and 10,000 silences; and the notifications of the first flush.
struct World {
    alerter: Alerter,
    dispatcher: Dispatcher,
    silences: Silences,
    notifications: Vec<(usize, Notification)>,
    now: Timestamp,
}

fn world() -> World {
    let rules = rule_set();
    let snap = snapshot();
    let now = snap.at;
    let mut alerter = Alerter::new(&rules, "http://127.0.0.1:9464");
    let set = alerter.evaluate(&snap, now);
    let mut dispatcher = dispatcher(&rules);
    let from_rules = set.alerts.len();
    dispatcher.upsert(set.alerts, now);
    let (silence_count, alert_count) = sizes();
    let extra = (from_rules..alert_count.max(from_rules)).map(|i| {
        let labels: Labels = [
            ("alertname", "ExternalCheck".to_owned()),
            ("service", format!("svc{}", i % 500)),
            ("slo", format!("ext{i}")),
            (
                "instance",
                format!("10.0.{}.{}:9100", i / 250 % 250, i % 250),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Alert {
            labels,
            annotations: Labels::new(),
            starts_at: now,
            ends_at: None,
            generator_url: "http://127.0.0.1:9464/".to_owned(),
        }
    });
    dispatcher.upsert(extra, now);
    let mut silences = Silences::default();
    for i in 0..silence_count {
        if let Err(e) = silences.set_within(request(i), now, &LIMITS, || format!("s-{i:08}")) {
            panic!("silence: {e}");
        }
    }
    let flush = dispatcher.tick(now.add(Dur::from_secs(60)), &silences);
    let notifications = flush
        .notifications
        .into_iter()
        .map(|o| (o.integration, o.notification))
        .collect();
    World {
        alerter,
        dispatcher,
        silences,
        notifications,
        now,
    }
}

impl World {
    fn state(&self) -> AlertingState {
        AlertingState {
            alerter: self.alerter.state().clone(),
            dispatcher: self.dispatcher.state(),
            silences: self.silences.clone(),
            alertmanager: None,
            in_flight: self.notifications.clone(),
        }
    }

    /// A silence POST's state change; its records.
    fn set_silence(&mut self, i: usize) -> Vec<u8> {
        let id = format!("new-{i:08}");
        let r = self
            .silences
            .set_within_dropping(request(SILENCES + i), self.now, &LIMITS, || id.clone());
        let (id, _) = match r {
            Ok(x) => x,
            Err(e) => panic!("silence: {e}"),
        };
        let mut out = Vec::new();
        let silence = self.silences.get(&id).cloned();
        if let Err(e) = journal::encode_record(&Record::Silence { id, silence }, &mut out) {
            panic!("{e}");
        }
        out
    }

    /// A delivery outcome's state change (the notification log written, the notification
    /// settled); its records.
    fn delivered(&mut self, i: usize) -> Vec<u8> {
        let (idx, n) = &self.notifications[i % self.notifications.len()];
        let at = self.now.add(Dur::from_millis(i as u64));
        self.dispatcher.mark_sent(*idx, n, at);
        let key = NflogKey {
            group_key: n.group_key.clone(),
            receiver: n.receiver.clone(),
            integration: *idx,
        };
        let mut out = Vec::new();
        let entry = self.dispatcher.nflog().entry(&key).cloned();
        let records = [
            Record::InFlight {
                integration: *idx,
                group_key: n.group_key.clone(),
                receiver: n.receiver.clone(),
                notification: None,
            },
            Record::Sent {
                key,
                entry: entry.unwrap_or_else(|| panic!("no nflog entry after mark_sent")),
            },
        ];
        for r in &records {
            if let Err(e) = journal::encode_record(r, &mut out) {
                panic!("{e}");
            }
        }
        out
    }
}

fn commit(j: &Journal, bytes: Vec<u8>) {
    match j.commit(bytes, true).blocking_recv() {
        Ok(Ok(())) => {}
        other => panic!("commit: {other:?}"),
    }
}

fn save_whole(path: &Path, w: &World) {
    if let Err(e) = storage::save(path, &w.state()) {
        panic!("save: {e}");
    }
}

/// Median and p99 of `n` single operations, in ms.
fn distribution(n: usize, mut op: impl FnMut(usize)) -> (f64, f64) {
    let mut t: Vec<Duration> = (0..n)
        .map(|i| {
            let s = Instant::now();
            op(i);
            s.elapsed()
        })
        .collect();
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(t[n / 2]), ms(t[(n * 99).div_ceil(100) - 1]))
}

fn bench_state(c: &mut Criterion) {
    let mut w = world();
    let dir = match tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")) {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let whole = dir.path().join("whole.bwcp");
    save_whole(&whole, &w);
    let size = std::fs::metadata(&whole).map(|m| m.len()).unwrap_or(0);
    let open = |name: &str, durability: StateDurability| {
        let path = dir.path().join(name);
        if let Err(e) = storage::save(&path, &w.state()) {
            panic!("save: {e}");
        }
        match Journal::open(&path, Dur::from_hours(120), durability) {
            Ok((j, _)) => j,
            Err(e) => panic!("open: {e}"),
        }
    };
    let j = open("alerting.bwcp", StateDurability::Process);
    let jp = open("alerting-power.bwcp", StateDurability::Power);
    println!(
        "state: {} stored alerts, {} lifecycles, {} silences, {} notifications in flight; \
         whole file {:.1} MB",
        w.dispatcher.persisted().0.len(),
        w.alerter.state().alerts.len(),
        w.silences.iter().count(),
        w.notifications.len(),
        size as f64 / 1e6
    );
    let mut i = 0;
    let mut g = c.benchmark_group("alerting_state");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("silence_post/whole_file", |b| {
        b.iter(|| {
            i += 1;
            black_box(w.set_silence(i));
            save_whole(&whole, &w);
        })
    });
    g.bench_function("silence_post/log", |b| {
        b.iter(|| {
            i += 1;
            let r = w.set_silence(i);
            commit(&j, r);
        })
    });
    g.bench_function("silence_post/log_power", |b| {
        b.iter(|| {
            i += 1;
            let r = w.set_silence(i);
            commit(&jp, r);
        })
    });
    g.bench_function("delivery_outcome/whole_file", |b| {
        b.iter(|| {
            i += 1;
            black_box(w.delivered(i));
            save_whole(&whole, &w);
        })
    });
    g.bench_function("delivery_outcome/log", |b| {
        b.iter(|| {
            i += 1;
            let r = w.delivered(i);
            commit(&j, r);
        })
    });
    g.bench_function("delivery_outcome/log_power", |b| {
        b.iter(|| {
            i += 1;
            let r = w.delivered(i);
            commit(&jp, r);
        })
    });
    g.finish();

    // Single operations: the tail the criterion means hide.
    let base = 1_000_000;
    let report = |name: &str, n: usize, op: &mut dyn FnMut(usize)| {
        let n = if measuring() { n } else { n.min(3) };
        let (median, p99) = distribution(n, op);
        println!("{name:<40} n={n:<5} median {median:8.3} ms   p99 {p99:8.3} ms");
    };
    // The floor of any durable commit on this disk: one fdatasync of a small overwrite in
    // space written ahead, as the log does it.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = match std::fs::File::create(dir.path().join("floor")) {
            Ok(f) => f,
            Err(e) => panic!("floor: {e}"),
        };
        let zeros = vec![0u8; 1 << 20];
        if let Err(e) = f.write_all(&zeros).and_then(|()| f.sync_all()) {
            panic!("floor: {e}");
        }
        report("fdatasync of a 200-byte write (floor)", 2_000, &mut |k| {
            let at = (k as u64 * 200) % ((1 << 20) - 200);
            let r = f
                .seek(SeekFrom::Start(at))
                .and_then(|_| f.write_all(&[7u8; 200]))
                .and_then(|()| f.sync_data());
            if let Err(e) = r {
                panic!("floor: {e}");
            }
        });
    }
    report("silence_post/whole_file", 15, &mut |k| {
        let _ = w.set_silence(base + k);
        save_whole(&whole, &w);
    });
    report("delivery_outcome/whole_file", 15, &mut |k| {
        let _ = w.delivered(base + k);
        save_whole(&whole, &w);
    });
    // The CPU part of each change, without its durable write: what the log path costs on
    // top of the fdatasync floor.
    report("silence_post CPU (set + record)", 2_000, &mut |k| {
        black_box(w.set_silence(4 * base + k));
    });
    report("delivery_outcome CPU (mark + records)", 2_000, &mut |k| {
        black_box(w.delivered(4 * base + k));
    });
    // Each durability: `process` answers once written, `power` after the fdatasync.
    for (path, journal, first) in [("log", &j, 2 * base), ("log_power", &jp, 5 * base)] {
        report(&format!("silence_post/{path}"), 2_000, &mut |k| {
            let r = w.set_silence(first + k);
            commit(journal, r);
        });
        report(&format!("delivery_outcome/{path}"), 2_000, &mut |k| {
            let r = w.delivered(first + k);
            commit(journal, r);
        });
    }
    println!(
        "background fdatasyncs behind the process-durability commits: {}",
        j.stats().background_syncs
    );
    // The view published after a change: every firing alert with the silences that mute it
    // (indexed by label, so not every silence is tested for every alert).
    let now = w.now;
    report("alerts_view (after a change)", 10, &mut |_| {
        black_box(w.dispatcher.alerts_view(now, &w.silences).len());
    });
    // What the view's silence status cost before silences were indexed: every silence tested
    // for every firing alert (measured over 5,000 of the alerts; the whole view is 10x that).
    let firing: Vec<Labels> = w
        .dispatcher
        .persisted()
        .0
        .values()
        .take(5_000)
        .map(|a| a.labels.clone())
        .collect();
    report("silenced_by scan, 5,000 alerts x 10,000", 3, &mut |_| {
        let n: usize = firing
            .iter()
            .map(|l| {
                w.silences
                    .iter()
                    .filter(|s| {
                        s.state(now) == burnwatch::notify::silence::SilenceState::Active
                            && s.matchers.matches(l)
                    })
                    .count()
            })
            .sum();
        black_box(n);
    });
    report("silenced_by indexed, 5,000 alerts", 3, &mut |_| {
        let n: usize = firing
            .iter()
            .map(|l| w.silences.silenced_by(l, now).len())
            .sum();
        black_box(n);
    });
    // A compaction of the whole state runs beside the commits.
    let before = j.stats().compactions;
    j.compact(w.state());
    let mut during = Vec::new();
    let mut k = 0;
    let most = if measuring() { 100_000 } else { 100 };
    while j.stats().compactions == before && k < most {
        let r = w.set_silence(3 * base + k);
        let s = Instant::now();
        commit(&j, r);
        during.push(s.elapsed());
        k += 1;
    }
    during.sort();
    if let (Some(m), Some(p)) = (
        during.get(during.len() / 2),
        during.get((during.len() * 99).div_ceil(100).saturating_sub(1)),
    ) {
        println!(
            "{:<40} n={:<5} median {:8.3} ms   p99 {:8.3} ms   max {:8.3} ms",
            "silence_post/log during compaction",
            during.len(),
            m.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            during.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
    }
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
