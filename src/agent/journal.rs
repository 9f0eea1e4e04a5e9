//! The alerting state on disk: a snapshot plus an append-only log of changes, so that the cost
//! of making a change durable follows the change, not the state.
//!
//! **Files** (in `data_dir`):
//! - `alerting.bwcp`, the *snapshot*: the whole [`AlertingState`] in the checkpoint framing of
//!   [`crate::storage`] (magic, version, length, CRC32, postcard), replaced atomically. Its
//!   format is unchanged from the releases that rewrote it after every change, so their state
//!   file loads as a snapshot with an empty log (the migration is nothing to do).
//! - `alerting.bwcp.log`, the *log*: a 28-byte header, then records.
//!
//! | offset | size | header field |
//! |---|---|---|
//! | 0 | 8 | magic `BWALOG1\0` |
//! | 8 | 4 | format version ([`LOG_VERSION`]), little-endian |
//! | 12 | 8 | length of the snapshot the log continues (0: none) |
//! | 20 | 4 | CRC32 of that snapshot file (0: none) |
//! | 24 | 4 | CRC32 of bytes 0..24 |
//!
//! Each record is `length: u32 LE`, `CRC32 of the payload: u32 LE`, then the payload: one
//! [`Record`] in postcard. The writer extends the file with zeros 1 MiB at a time ahead of the
//! records (between group commits, once less than a quarter MiB is left; a compaction writes
//! the new log with its zeros), so that a synced append changes neither the file's size nor
//! its extents and its fdatasync flushes the data alone; the records end at the first zero
//! length. Zeros are written, not `fallocate`d: an allocated but unwritten extent is converted
//! at its first write, a metadata change that would bring back the journal commit. A record sets one keyed item to its new value or removes it
//! (a silence, a notification log entry, a notification in flight, an alert lifecycle, a
//! stored alert, an aggregation group, ...), so replaying a record twice, or replaying one
//! whose effect a snapshot already holds, changes nothing: records are idempotent.
//!
//! **Writing.** One writer thread owns the files. The alerting task hands it encoded records;
//! the writer takes everything queued, writes it with one `write` (group commit) and answers
//! the waiting callers when the records are as durable as `alerting.state_durability` asks
//! ([`StateDurability`]):
//! - `process` (default): once written. The bytes are then in the kernel's page cache, which
//!   outlives the process: SIGKILL, a panic or an abort loses nothing acknowledged. A syncer
//!   thread fdatasyncs the log as soon as it was written to, beside the writer, so a power
//!   loss or kernel crash loses at most the records of the last one or two fdatasyncs of the
//!   disk (milliseconds). A commit no longer waits for the disk (an fdatasync is 4 ms median,
//!   8 ms p99 on the benchmark's disk).
//! - `power`: after one `fdatasync` of the group commit, on the writer: a silence POST is
//!   answered 200 only once its record would survive a power loss.
//!
//! The `Cut` record of a compaction is fdatasynced before the new snapshot replaces the old
//! one in either mode (a power loss must not leave a log that names neither snapshot); with
//! `process`, by the helper that writes the snapshot, so commits do not wait for it. A
//! failed background fdatasync is counted and logged, and asks for a compaction, whose
//! snapshot and new log are written with fsync.
//!
//! A failed write is cut off again (`ftruncate`); the records of a caller that waits for the
//! answer are dropped (the caller undoes its change and reports the failure), other records
//! are kept and written with the next commit. Before every write the
//! writer checks that the log path still names the file it holds open, so a log that was
//! moved or replaced fails loudly instead of collecting changes no restart would read.
//!
//! **Compaction** runs beside the writer when the log grows past [`COMPACT_RATIO`] times the
//! snapshot (at least [`COMPACT_MIN_BYTES`]): the alerting task hands over a copy of its state,
//! noting the log length at that moment (the cut). A helper thread encodes it; the writer
//! appends a `Cut` record (the new snapshot's identity and the cut offset) and syncs it; a
//! helper writes the new snapshot atomically (temporary file, fsync, rename, directory fsync);
//! the writer then replaces the log atomically with a new header naming that snapshot followed
//! by the records written since the cut. Appends continue throughout, except for the short
//! final copy of that tail.
//!
//! **Recovery** = snapshot + replay of the log. The log's header names the snapshot it
//! continues; if that is the snapshot on disk, every record is replayed. Otherwise a crash hit
//! a compaction between the snapshot's rename and the log's replacement: the log then holds a
//! `Cut` record naming the snapshot on disk, and the records after its cut offset are replayed.
//! A log naming neither is refused with a clear error, as is a damaged snapshot: starting
//! without them would re-page everything firing and forget silences. A record that ends early
//! or fails its CRC is what a crash in the middle of a write leaves (it was never
//! acknowledged): it and everything after it are dropped with a warning and cut from the file;
//! the agent starts.
//!
//! **Guarantees** (SIGKILL at any point, either durability; a power loss with `power`): every
//! acknowledged change is restored (a silence
//! answered 200, a notification handed to delivery, since its record is committed before the
//! hand-over); a delivery whose outcome was committed is not sent again; a delivery whose
//! outcome was not committed yet is sent again (at least once). Changes nobody waits for
//! (lifecycle steps of an evaluation, group timers, delivery outcomes) are committed within
//! one group commit of happening, or re-derived at start (group timers restart from the last
//! recorded ones; the notification log deduplicates).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::hash::Hasher;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::alert::{Alert, Fingerprint};
use crate::alerter::{AlertEntry, AlerterState, EventMark, ProbeTracker};
use crate::notify::Notification;
use crate::notify::alertmanager::AlertmanagerSender;
use crate::notify::config::StateDurability;
use crate::notify::dispatch::{Dispatcher, DispatcherState, Group, GroupId};
use crate::notify::nflog::{Entry, Nflog, NflogKey};
use crate::notify::silence::{Silence, Silences};
use crate::rules::model::SloId;
use crate::storage::{self, StorageError};
use crate::time::Dur;

/// Everything the alerting task persists: the snapshot's payload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertingState {
    /// Alert lifecycles, probe thresholds, event marks.
    pub alerter: AlerterState,
    /// Stored alerts, aggregation groups, the notification log.
    pub dispatcher: DispatcherState,
    /// Every silence.
    pub silences: Silences,
    /// The Alertmanager client's resend state.
    pub alertmanager: Option<AlertmanagerSender>,
    /// Notifications handed to delivery and not confirmed yet: (integration index, what).
    pub in_flight: Vec<(usize, Notification)>,
}

/// Unchanged since format version 1.
impl storage::Payload for AlertingState {}

impl AlertingState {
    /// The state of a first start: nothing, silences kept `silence_retention` after their end.
    pub fn empty(silence_retention: Dur) -> AlertingState {
        AlertingState {
            alerter: AlerterState::default(),
            dispatcher: DispatcherState::from_parts(Vec::new(), Vec::new(), Nflog::default()),
            silences: Silences::new(silence_retention),
            alertmanager: None,
            in_flight: Vec::new(),
        }
    }
}

/// One change: one keyed item set to its new value (`Some`) or removed (`None`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Record {
    /// A silence created, changed, expired or dropped.
    Silence {
        /// Its id.
        id: String,
        /// Its new value.
        silence: Option<Silence>,
    },
    /// A confirmed delivery: the notification log entry it wrote.
    Sent {
        /// Group, receiver and integration.
        key: NflogKey,
        /// What the receiver was told, and when.
        entry: Entry,
    },
    /// A notification handed to delivery (`Some`) or settled (`None`); at most one per
    /// integration, group and receiver.
    InFlight {
        /// The integration's index within its receiver.
        integration: usize,
        /// The group key.
        group_key: String,
        /// The receiver.
        receiver: String,
        /// The notification.
        notification: Option<Notification>,
    },
    /// An alert's lifecycle.
    Lifecycle {
        /// The alert.
        fingerprint: Fingerprint,
        /// Its lifecycle.
        entry: Option<AlertEntry>,
    },
    /// A probe's threshold state.
    Probe {
        /// The probe.
        name: String,
        /// Its tracker.
        tracker: Option<ProbeTracker>,
    },
    /// An SLO's newest event count.
    Events {
        /// The SLO.
        slo: SloId,
        /// The mark.
        mark: Option<EventMark>,
    },
    /// An alert stored by the dispatcher.
    Alert {
        /// The alert.
        fingerprint: Fingerprint,
        /// Its stored value.
        alert: Option<Alert>,
    },
    /// An aggregation group with its timers.
    Group {
        /// Route id and group labels.
        id: GroupId,
        /// The group.
        group: Option<Group>,
    },
    /// The Alertmanager client's resend state (small: one entry per firing alert).
    Alertmanager(Option<AlertmanagerSender>),
    /// Written during a compaction, before the new snapshot replaces the old one: the snapshot
    /// `snapshot` holds every record before byte offset `from` of this log.
    Cut {
        /// The new snapshot.
        snapshot: SnapshotId,
        /// The cut offset in this log.
        from: u64,
    },
}

/// Identifies a snapshot file by its length and the CRC32 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotId {
    /// File length (0: no snapshot).
    pub len: u64,
    /// CRC32 of the whole file (0: no snapshot).
    pub crc: u32,
}

impl SnapshotId {
    /// No snapshot (a log started from an empty state).
    pub const NONE: SnapshotId = SnapshotId { len: 0, crc: 0 };

    /// The identity of a snapshot file's bytes.
    pub fn of(bytes: &[u8]) -> SnapshotId {
        SnapshotId {
            len: bytes.len() as u64,
            crc: crc32fast::hash(bytes),
        }
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == SnapshotId::NONE {
            f.write_str("no snapshot")
        } else {
            write!(
                f,
                "the snapshot of {} bytes with CRC32 {:08x}",
                self.len, self.crc
            )
        }
    }
}

/// The log format version this build writes and reads.
pub const LOG_VERSION: u32 = 1;
/// Identifies an alerting log; the NUL keeps text tools from mistaking it for text.
const LOG_MAGIC: [u8; 8] = *b"BWALOG1\0";
/// Bytes before the first record.
pub const HEADER_LEN: usize = 28;
/// Bytes before a record's payload: length and CRC32.
const FRAME_LEN: usize = 8;
/// The largest record accepted when reading: a length beyond it is a torn or damaged record,
/// not an allocation to attempt (the largest real record, the Alertmanager resend state, is
/// far below it).
const MAX_RECORD: usize = 256 << 20;
/// Compaction starts when the log exceeds this many times the snapshot...
pub const COMPACT_RATIO: u64 = 4;
/// ...and at least this many bytes.
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;
/// The log is extended this many bytes of zeros at a time, ahead of the records.
const ALLOCATE_AHEAD: u64 = 1 << 20;
/// Records kept in memory for a retry after failed writes, at most; beyond it they are
/// dropped and a compaction (which writes the whole state) is asked for instead.
const MAX_RETRY_BYTES: usize = 64 << 20;

/// The log next to a snapshot: `<snapshot>.log`.
pub fn log_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

/// Why the alerting state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The snapshot cannot be used.
    #[error("{0}")]
    Snapshot(#[source] StorageError),
    /// The operating system refused a file operation.
    #[error("alerting log {}: {op} failed: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The log's header is not one this build wrote.
    #[error(
        "{} is not a usable burnwatch alerting log: {reason}; refusing to load it; the file is kept for inspection",
        path.display()
    )]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log continues a snapshot that is not the one on disk.
    #[error(
        "the alerting log {} continues {expected}, but the snapshot on disk is {found}: the two \
         files do not belong together (restored from different backups?); refusing to load \
         them; the files are kept for inspection",
        path.display()
    )]
    Orphan {
        /// The log.
        path: PathBuf,
        /// The snapshot the log names.
        expected: SnapshotId,
        /// The snapshot present.
        found: SnapshotId,
    },
    /// An intact record (its CRC matches) does not decode.
    #[error(
        "the alerting log {} holds an intact record at byte {offset} that does not decode: \
         {source}; refusing to load it; the file is kept for inspection",
        path.display()
    )]
    Record {
        /// The log.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What postcard objected to.
        #[source]
        source: postcard::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode an alerting log record: {0}")]
    Encode(#[source] postcard::Error),
}

/// Appends one framed record to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), JournalError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    let mut buf = postcard::to_extend(record, std::mem::take(out)).map_err(JournalError::Encode)?;
    let len = buf.len() - start - FRAME_LEN;
    let crc = crc32fast::hash(&buf[start + FRAME_LEN..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    *out = buf;
    Ok(())
}

/// A log header continuing `base`.
pub fn header(base: SnapshotId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&base.len.to_le_bytes());
    h[20..24].copy_from_slice(&base.crc.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Reads a little-endian field of `N` bytes at `at` (the caller checked the length).
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&bytes[at..at + N]);
    b
}

/// The snapshot a log's header names, or what is wrong with the header.
fn parse_header(bytes: &[u8]) -> Result<SnapshotId, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header (logs are created whole, so \
             this is damage, not a crash)",
            bytes.len()
        ));
    }
    if bytes[..8] != LOG_MAGIC {
        return Err("bad magic".to_owned());
    }
    let stored = u32::from_le_bytes(field(bytes, 24));
    let actual = crc32fast::hash(&bytes[..24]);
    if stored != actual {
        return Err(format!(
            "header checksum mismatch (stored {stored:08x}, computed {actual:08x})"
        ));
    }
    let version = u32::from_le_bytes(field(bytes, 8));
    if version != LOG_VERSION {
        return Err(format!(
            "format version {version}; this build reads version {LOG_VERSION} (written by a \
             newer burnwatch? upgrade)"
        ));
    }
    Ok(SnapshotId {
        len: u64::from_le_bytes(field(bytes, 12)),
        crc: u32::from_le_bytes(field(bytes, 20)),
    })
}

/// The records of a log file, as read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every intact record with its offset in the file.
    pub records: Vec<(u64, Record)>,
    /// The end of the last intact record.
    pub end: u64,
    /// Bytes after `end` that are no intact record (a torn write); 0 when they are only the
    /// zeros the writer allocates ahead.
    pub torn: u64,
}

/// Reads the records of a whole log image (header included): stops at the first record that
/// ends early or fails its CRC (a torn write); an intact record that does not decode is an
/// error.
pub fn scan(path: &Path, bytes: &[u8]) -> Result<Scan, JournalError> {
    let mut at = HEADER_LEN.min(bytes.len());
    let mut out = Scan::default();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < FRAME_LEN {
            break;
        }
        let len = u32::from_le_bytes(field(rest, 0)) as usize;
        let crc = u32::from_le_bytes(field(rest, 4));
        // No record is empty (a record's tag takes a byte): zeros are the space the writer
        // allocated ahead.
        if len == 0 || len > MAX_RECORD || rest.len() - FRAME_LEN < len {
            break;
        }
        let payload = &rest[FRAME_LEN..FRAME_LEN + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let record = postcard::from_bytes(payload).map_err(|source| JournalError::Record {
            path: path.to_path_buf(),
            offset: at as u64,
            source,
        })?;
        out.records.push((at as u64, record));
        at += FRAME_LEN + len;
    }
    out.end = at as u64;
    let rest = &bytes[at..];
    out.torn = if rest.iter().all(|b| *b == 0) {
        0
    } else {
        rest.len() as u64
    };
    Ok(out)
}

/// The state in keyed form, for replaying records onto it.
struct Tables {
    alerter: AlerterState,
    alerts: BTreeMap<Fingerprint, Alert>,
    groups: BTreeMap<GroupId, Group>,
    nflog: Nflog,
    silences: Silences,
    alertmanager: Option<AlertmanagerSender>,
    in_flight: Vec<(usize, Notification)>,
}

impl Tables {
    fn of(state: AlertingState) -> Tables {
        let (alerts, groups, nflog) = state.dispatcher.into_parts();
        Tables {
            alerter: state.alerter,
            alerts: alerts.into_iter().map(|a| (a.fingerprint(), a)).collect(),
            groups: groups.into_iter().map(|g| (g.id(), g)).collect(),
            nflog,
            silences: state.silences,
            alertmanager: state.alertmanager,
            in_flight: state.in_flight,
        }
    }

    fn apply(&mut self, record: Record) {
        fn put<K: Ord, V>(map: &mut BTreeMap<K, V>, k: K, v: Option<V>) {
            match v {
                Some(v) => {
                    map.insert(k, v);
                }
                None => {
                    map.remove(&k);
                }
            }
        }
        match record {
            Record::Silence { id, silence } => self.silences.put(&id, silence),
            Record::Sent { key, entry } => self.nflog.put(key, entry),
            Record::InFlight {
                integration,
                group_key,
                receiver,
                notification,
            } => {
                self.in_flight.retain(|(i, n)| {
                    !(*i == integration && n.group_key == group_key && n.receiver == receiver)
                });
                if let Some(n) = notification {
                    self.in_flight.push((integration, n));
                }
            }
            Record::Lifecycle { fingerprint, entry } => {
                put(&mut self.alerter.alerts, fingerprint, entry)
            }
            Record::Probe { name, tracker } => put(&mut self.alerter.probes, name, tracker),
            Record::Events { slo, mark } => put(&mut self.alerter.events, slo, mark),
            Record::Alert { fingerprint, alert } => put(&mut self.alerts, fingerprint, alert),
            Record::Group { id, group } => put(&mut self.groups, id, group),
            Record::Alertmanager(a) => self.alertmanager = a,
            Record::Cut { .. } => {}
        }
    }

    fn into_state(self) -> AlertingState {
        AlertingState {
            alerter: self.alerter,
            dispatcher: DispatcherState::from_parts(
                self.alerts.into_values().collect(),
                self.groups.into_values().collect(),
                self.nflog,
            ),
            silences: self.silences,
            alertmanager: self.alertmanager,
            in_flight: self.in_flight,
        }
    }
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// Snapshot + log; `None` only when neither holds anything (a first start).
    pub state: Option<AlertingState>,
    /// Records replayed.
    pub replayed: usize,
    /// Bytes of a torn last write, dropped.
    pub torn: u64,
    /// The snapshot on disk.
    snapshot: SnapshotId,
    /// The log file's bytes, when there is one.
    log: Option<Vec<u8>>,
    /// Where the records to keep start (after the header, or at a cut).
    from: u64,
    /// Where the intact records end.
    end: u64,
    /// Whether the log names another snapshot (a compaction was interrupted).
    rebase: bool,
}

/// Reads the snapshot and replays its log, without changing either file. A missing snapshot
/// with no log is a first start (`state: None`); a first start's state keeps silences
/// `silence_retention` after their end.
pub fn recover(snapshot: &Path, silence_retention: Dur) -> Result<Recovered, JournalError> {
    let (base, id) = match fs::read(snapshot) {
        Ok(bytes) => {
            let state = storage::decode::<AlertingState>(&bytes)
                .map_err(|e| JournalError::Snapshot(e.at(snapshot)))?;
            (Some(state), SnapshotId::of(&bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, SnapshotId::NONE),
        Err(source) => {
            return Err(JournalError::Snapshot(StorageError::Io {
                path: snapshot.to_path_buf(),
                op: "reading",
                source,
            }));
        }
    };
    let path = log_path(snapshot);
    let log = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Recovered {
                state: base,
                replayed: 0,
                torn: 0,
                snapshot: id,
                log: None,
                from: HEADER_LEN as u64,
                end: HEADER_LEN as u64,
                rebase: false,
            });
        }
        Err(source) => {
            return Err(JournalError::Io {
                path,
                op: "reading",
                source,
            });
        }
    };
    let named = parse_header(&log).map_err(|reason| JournalError::Header {
        path: path.clone(),
        reason,
    })?;
    let scan = scan(&path, &log)?;
    let from = if named == id {
        HEADER_LEN as u64
    } else {
        scan.records
            .iter()
            .find_map(|(_, r)| match r {
                Record::Cut { snapshot, from } if *snapshot == id => Some(*from),
                _ => None,
            })
            .ok_or(JournalError::Orphan {
                path: path.clone(),
                expected: named,
                found: id,
            })?
    };
    let had_base = base.is_some();
    let mut tables = Tables::of(base.unwrap_or_else(|| AlertingState::empty(silence_retention)));
    let mut replayed = 0;
    for (_, r) in scan.records.into_iter().filter(|(at, _)| *at >= from) {
        if !matches!(r, Record::Cut { .. }) {
            replayed += 1;
        }
        tables.apply(r);
    }
    Ok(Recovered {
        state: (had_base || replayed > 0).then(|| tables.into_state()),
        replayed,
        torn: scan.torn,
        snapshot: id,
        log: Some(log),
        from,
        end: scan.end,
        rebase: named != id,
    })
}

/// Counters the writer keeps, for the alerting view and the benches.
#[derive(Debug, Default)]
struct Shared {
    log_bytes: AtomicU64,
    wants_compaction: AtomicBool,
    failures: AtomicU64,
    syncs: AtomicU64,
    background_syncs: AtomicU64,
    compactions: AtomicU64,
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Current log length in bytes.
    pub log_bytes: u64,
    /// Failed writes (commits, compactions).
    pub failures: u64,
    /// Successful group commits (one write each, and with `power` durability one fdatasync).
    pub syncs: u64,
    /// Background fdatasyncs completed (`process` durability).
    pub background_syncs: u64,
    /// Compactions completed.
    pub compactions: u64,
}

/// An answer to a commit: `Err` carries the reason, for the caller's error message.
pub type Ack = oneshot::Receiver<Result<(), String>>;

enum Msg {
    Append {
        bytes: Vec<u8>,
        durable: bool,
        ack: Option<AckTx>,
    },
    Compact(Box<AlertingState>),
    Encoded {
        cut: u64,
        bytes: Result<Vec<u8>, String>,
    },
    Saved {
        id: SnapshotId,
        cut: u64,
        len: u64,
        result: Result<(), String>,
    },
    Close {
        state: Box<AlertingState>,
        done: mpsc::Sender<Result<(), String>>,
    },
    /// The handle was dropped without a close: write what is queued and stop.
    Stop,
}

/// The handle to the writer thread.
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Recovers the state (see [`recover`]), repairs the log (drops a torn tail, finishes an
    /// interrupted compaction, creates the log of a first start or of a snapshot written by an
    /// older burnwatch) and starts the writer, which acknowledges commits as `durability` says
    /// (and with `process` the syncer beside it).
    pub fn open(
        snapshot: &Path,
        silence_retention: Dur,
        durability: StateDurability,
    ) -> Result<(Journal, Option<AlertingState>), JournalError> {
        let rec = recover(snapshot, silence_retention)?;
        let path = log_path(snapshot);
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |source| JournalError::Io { path, op, source }
        };
        if rec.torn > 0 {
            tracing::warn!(
                file = %path.display(),
                offset = rec.end,
                bytes = rec.torn,
                "the alerting log ends in a torn write (a crash in the middle of a write that \
                 was never acknowledged); dropping it"
            );
        }
        match &rec.log {
            None => {
                storage::save_bytes(&path, &header(rec.snapshot)).map_err(JournalError::Snapshot)?
            }
            Some(log) if rec.rebase => {
                let mut new = header(rec.snapshot).to_vec();
                new.extend_from_slice(&log[rec.from as usize..rec.end as usize]);
                storage::save_bytes(&path, &new).map_err(JournalError::Snapshot)?;
            }
            Some(_) if rec.torn > 0 => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err("opening to cut the torn write"))?;
                f.set_len(rec.end)
                    .map_err(io_err("cutting the torn write"))?;
                f.sync_all().map_err(io_err("syncing the cut"))?;
            }
            Some(_) => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("opening"))?;
        let allocated = file.metadata().map_err(io_err("reading the length"))?.len();
        // Records end before the zeros allocated ahead (a new or rebased log has none).
        let good = match &rec.log {
            Some(_) if !rec.rebase => rec.end.min(allocated),
            _ => allocated,
        };
        let snapshot_len = rec.snapshot.len;
        let shared = Arc::new(Shared {
            log_bytes: AtomicU64::new(good),
            ..Shared::default()
        });
        let syncer = match durability {
            StateDurability::Power => None,
            StateDurability::Process => {
                let clone = file.try_clone().map_err(io_err("opening for the syncer"))?;
                Some(Syncer::start(clone, shared.clone()).map_err(io_err("starting the syncer"))?)
            }
        };
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            syncer,
            log: path.clone(),
            snapshot: snapshot.to_path_buf(),
            identity: identity_of(&file),
            file,
            good,
            allocated,
            cut_tail: false,
            retry: Vec::new(),
            shared: shared.clone(),
            tx: tx.clone(),
            compacting: false,
            threshold: threshold(snapshot_len),
            cut_record: None,
        };
        writer.check_threshold();
        let thread = std::thread::Builder::new()
            .name("alerting-journal".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(io_err("starting the writer thread"))?;
        Ok((
            Journal {
                tx,
                shared,
                thread: Some(thread),
            },
            rec.state,
        ))
    }

    /// Queues records; they are written with the next group commit and kept for a retry when
    /// a write fails. Nobody waits.
    pub fn append(&self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.send(Msg::Append {
                bytes,
                durable: false,
                ack: None,
            });
        }
    }

    /// Queues records and answers once they are durable. With `undo_on_failure`, a failed
    /// write drops them (the caller undoes the change); otherwise they are kept for a retry and
    /// the failure is reported all the same.
    pub fn commit(&self, bytes: Vec<u8>, undo_on_failure: bool) -> Ack {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Append {
            bytes,
            durable: undo_on_failure,
            ack: Some(tx),
        });
        rx
    }

    /// Whether the log has grown enough to be compacted ([`Journal::compact`]).
    pub fn wants_compaction(&self) -> bool {
        self.shared.wants_compaction.load(Ordering::Relaxed)
    }

    /// Starts a compaction into `state`, which must hold every change whose records were
    /// handed over before this call. Ignored while one runs.
    pub fn compact(&self, state: AlertingState) {
        self.shared.wants_compaction.store(false, Ordering::Relaxed);
        self.send(Msg::Compact(Box::new(state)));
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            log_bytes: self.shared.log_bytes.load(Ordering::Relaxed),
            failures: self.shared.failures.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            background_syncs: self.shared.background_syncs.load(Ordering::Relaxed),
            compactions: self.shared.compactions.load(Ordering::Relaxed),
        }
    }

    /// Commits what is queued, writes `state` as the snapshot with an empty log (so the next
    /// start reads one file), and stops the writer. Blocks.
    pub fn close(mut self, state: AlertingState) -> Result<(), String> {
        let (done, wait) = mpsc::channel();
        self.send(Msg::Close {
            state: Box::new(state),
            done,
        });
        let r = wait
            .recv()
            .unwrap_or_else(|_| Err("the alerting journal's writer is gone".to_owned()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        r
    }

    fn send(&self, m: Msg) {
        if self.thread.is_none() {
            return;
        }
        // The writer only stops on close (or a panic): answer instead of hanging.
        if let Err(mpsc::SendError(Msg::Append { ack: Some(a), .. })) = self.tx.send(m) {
            let _ = a.send(Err("the alerting journal's writer is gone".to_owned()));
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Msg::Stop);
            let _ = t.join();
        }
    }
}

/// The file length to allocate for a log whose records end at `end`: the next
/// [`ALLOCATE_AHEAD`] boundary that leaves at least a quarter of a chunk of zeros after them.
fn allocation_for(end: u64) -> u64 {
    (end + ALLOCATE_AHEAD / 4).div_ceil(ALLOCATE_AHEAD) * ALLOCATE_AHEAD
}

/// Log length at which to compact after a snapshot of `snapshot_len` bytes.
fn threshold(snapshot_len: u64) -> u64 {
    snapshot_len
        .saturating_mul(COMPACT_RATIO)
        .max(COMPACT_MIN_BYTES)
}

/// The file's identity (device, inode), to notice the log path being moved or replaced.
#[cfg(unix)]
fn identity_of(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity_of(_file: &File) -> Option<(u64, u64)> {
    None
}

#[cfg(unix)]
fn identity_at(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity_at(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Where a commit's answer goes.
type AckTx = oneshot::Sender<Result<(), String>>;

/// A close request: the final state and where to answer.
type Closing = (Box<AlertingState>, mpsc::Sender<Result<(), String>>);

/// Records gathered from the queue for one group commit.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Each caller's bytes, whether a failure drops them, and where its answer goes.
    parts: Vec<(Range<usize>, bool, Option<AckTx>)>,
}

struct Writer {
    /// With `process` durability: the thread that fdatasyncs what was written. `None` with
    /// `power`, where each group commit syncs on this thread.
    syncer: Option<Syncer>,
    log: PathBuf,
    snapshot: PathBuf,
    file: File,
    identity: Option<(u64, u64)>,
    /// Length of the intact log.
    good: u64,
    /// Length of the file: the records, then zeros written ahead ([`ALLOCATE_AHEAD`]).
    allocated: u64,
    /// Whether bytes of a failed write may lie beyond `good`.
    cut_tail: bool,
    /// Records of failed writes that nobody undid, written before the next ones.
    retry: Vec<u8>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    compacting: bool,
    threshold: u64,
    /// Where the running compaction's `Cut` record lies (not copied into the next log).
    cut_record: Option<Range<u64>>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        self.serve(rx);
        // What was written is synced before the thread ends (a close has synced it already).
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
    }

    fn serve(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut closing: Option<Closing> = None;
        let mut stop = false;
        while let Ok(first) = rx.recv() {
            let mut batch = Batch::default();
            let mut next = Some(first);
            while let Some(m) = next {
                match m {
                    Msg::Append {
                        bytes,
                        durable,
                        ack,
                    } => {
                        let start = batch.bytes.len();
                        batch.bytes.extend_from_slice(&bytes);
                        batch.parts.push((start..batch.bytes.len(), durable, ack));
                    }
                    Msg::Close { state, done } => closing = Some((state, done)),
                    Msg::Stop => stop = true,
                    other => {
                        // Control messages act on the log as of the records before them.
                        self.write(std::mem::take(&mut batch), false);
                        self.control(other);
                    }
                }
                next = rx.try_recv().ok();
            }
            self.write(batch, false);
            if stop {
                return;
            }
            self.extend_ahead();
            if !self.compacting
                && let Some((state, done)) = closing.take()
            {
                let r = self.compact_now(*state);
                if let Some(s) = self.syncer.take() {
                    s.stop();
                }
                let _ = done.send(r);
                return;
            }
        }
    }

    /// One group commit: every queued record in one write, then one fdatasync here (`power`
    /// durability, or `sync`) or in the syncer (`process`), then the answers.
    fn write(&mut self, batch: Batch, sync: bool) -> bool {
        if batch.parts.is_empty() && self.retry.is_empty() {
            return true;
        }
        let mut buf = std::mem::take(&mut self.retry);
        let base = buf.len();
        buf.extend_from_slice(&batch.bytes);
        let inline = sync || self.syncer.is_none();
        match self.append(&buf, inline) {
            Ok(()) => {
                if !inline && let Some(s) = &self.syncer {
                    s.written();
                }
                for (_, _, ack) in batch.parts {
                    if let Some(a) = ack {
                        let _ = a.send(Ok(()));
                    }
                }
                self.check_threshold();
                true
            }
            Err(e) => {
                let e = e.to_string();
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "alerting state changes not written");
                let mut keep = buf[..base].to_vec();
                for (range, durable, ack) in batch.parts {
                    if !durable {
                        keep.extend_from_slice(&buf[range.start + base..range.end + base]);
                    }
                    if let Some(a) = ack {
                        let _ = a.send(Err(e.clone()));
                    }
                }
                if keep.len() > MAX_RETRY_BYTES {
                    // A snapshot of the whole state makes them unnecessary.
                    tracing::error!(
                        bytes = keep.len(),
                        "too many alerting state changes wait for a retry; dropping them and \
                         asking for a snapshot of the whole state instead"
                    );
                    keep.clear();
                    self.shared.wants_compaction.store(true, Ordering::Relaxed);
                }
                self.retry = keep;
                false
            }
        }
    }

    /// Writes `buf` after the intact records, and with `sync` fdatasyncs it.
    fn append(&mut self, buf: &[u8], sync: bool) -> Result<(), JournalError> {
        let io_err = |op: &'static str| {
            let path = self.log.clone();
            move |source| JournalError::Io { path, op, source }
        };
        if self.identity.is_some() && identity_at(&self.log) != self.identity {
            return Err(JournalError::Io {
                path: self.log.clone(),
                op: "checking the log is still in place",
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "the file was moved, removed or replaced while the agent runs",
                ),
            });
        }
        if self.cut_tail {
            self.file
                .set_len(self.good)
                .map_err(io_err("cutting a failed write"))?;
            self.allocated = self.good;
            self.cut_tail = false;
        }
        let end = self.good + buf.len() as u64;
        // Appends into space written ahead change no file size or extent, so their fdatasync
        // flushes data only, without a file-system journal commit (which is what queues behind
        // every other writer of the disk); the space is extended a block of zeros at a time.
        let ahead = (end > self.allocated).then(|| {
            let to = allocation_for(end);
            (self.allocated, to)
        });
        let r = (|| -> io::Result<()> {
            if let Some((from, to)) = ahead {
                self.file.seek(SeekFrom::Start(from))?;
                self.file.write_all(&vec![0u8; (to - from) as usize])?;
            }
            self.file.seek(SeekFrom::Start(self.good))?;
            self.file.write_all(buf)?;
            if sync {
                self.file.sync_data()?;
            }
            Ok(())
        })();
        if let (Ok(()), Some((_, to))) = (&r, ahead) {
            self.allocated = to;
        }
        if let Err(source) = r {
            self.cut_tail = true;
            return Err(JournalError::Io {
                path: self.log.clone(),
                op: "appending",
                source,
            });
        }
        self.good += buf.len() as u64;
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.shared.log_bytes.store(self.good, Ordering::Relaxed);
        Ok(())
    }

    /// Extends the zeros ahead of the records while nobody waits (between group commits)
    /// once less than a quarter chunk is left, so that a commit rarely extends the file
    /// itself: an extension changes the file's size, and its fdatasync then waits for a
    /// file-system journal commit. A failure only leaves the extension to the next append.
    fn extend_ahead(&mut self) {
        if self.cut_tail || self.allocated - self.good.min(self.allocated) >= ALLOCATE_AHEAD / 4 {
            return;
        }
        let to = allocation_for(self.good);
        let from = self.allocated.max(self.good);
        let inline = self.syncer.is_none();
        let r = (|| -> io::Result<()> {
            self.file.seek(SeekFrom::Start(from))?;
            self.file.write_all(&vec![0u8; (to - from) as usize])?;
            if inline {
                self.file.sync_data()?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                self.allocated = to;
                if let Some(s) = &self.syncer {
                    s.written();
                }
            }
            Err(e) => tracing::debug!(
                error = %e,
                "alerting log: extending the space ahead failed; the next append extends it"
            ),
        }
    }

    fn check_threshold(&mut self) {
        if !self.compacting && self.good > self.threshold {
            self.shared.wants_compaction.store(true, Ordering::Relaxed);
        }
    }

    /// A compaction step gone wrong: counted, logged, retried once the log grows further.
    fn compaction_failed(&mut self, e: &str) {
        self.compacting = false;
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
        self.threshold = self.good.saturating_add(COMPACT_MIN_BYTES);
        tracing::error!(error = %e, "alerting state compaction failed; the log keeps growing until the next attempt");
    }

    fn control(&mut self, m: Msg) {
        match m {
            Msg::Compact(state) => {
                if self.compacting {
                    return;
                }
                self.compacting = true;
                let cut = self.good;
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new()
                    .name("alerting-compact".to_owned())
                    .spawn(move || {
                        let bytes = storage::encode(&*state).map_err(|e| e.to_string());
                        drop(state);
                        let _ = tx.send(Msg::Encoded { cut, bytes });
                    });
                if let Err(e) = spawned {
                    self.compaction_failed(&e.to_string());
                }
            }
            Msg::Encoded { cut, bytes } => {
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => return self.compaction_failed(&e),
                };
                let id = SnapshotId::of(&bytes);
                // The new snapshot may replace the old one only once a power loss cannot take
                // the record naming it, in either durability. With `process` the helper syncs
                // the log (its own handle) before writing the snapshot, off the writer.
                let log = match &self.syncer {
                    Some(_) => self.file.try_clone().ok(),
                    None => None,
                };
                if let Err(e) = self.mark_cut(id, cut, log.is_none()) {
                    return self.compaction_failed(&e);
                }
                let tx = self.tx.clone();
                let path = self.snapshot.clone();
                let log_path = self.log.clone();
                let spawned = std::thread::Builder::new()
                    .name("alerting-snapshot".to_owned())
                    .spawn(move || {
                        let synced = match log {
                            Some(f) => f.sync_data().map_err(|e| {
                                format!(
                                    "alerting log {}: syncing the cut record failed: {e}",
                                    log_path.display()
                                )
                            }),
                            None => Ok(()),
                        };
                        let result = synced.and_then(|()| {
                            storage::save_bytes(&path, &bytes).map_err(|e| e.to_string())
                        });
                        let len = bytes.len() as u64;
                        let _ = tx.send(Msg::Saved {
                            id,
                            cut,
                            len,
                            result,
                        });
                    });
                if let Err(e) = spawned {
                    self.compaction_failed(&e.to_string());
                }
            }
            Msg::Saved {
                id,
                cut,
                len,
                result,
            } => {
                let r = result.and_then(|()| self.switch(id, cut, len, true));
                match r {
                    Ok(()) => self.compacting = false,
                    Err(e) => self.compaction_failed(&e),
                }
            }
            Msg::Append { .. } | Msg::Close { .. } | Msg::Stop => {}
        }
    }

    /// Appends and syncs the `Cut` record naming snapshot `id`, before that snapshot may
    /// replace the old one.
    ///
    /// With `sync` it is fdatasynced here; otherwise the caller syncs the log before the
    /// snapshot's rename (the helper thread that writes the snapshot does, so commits do not
    /// wait behind that fdatasync).
    fn mark_cut(&mut self, id: SnapshotId, cut: u64, sync: bool) -> Result<(), String> {
        let mut bytes = Vec::new();
        encode_record(
            &Record::Cut {
                snapshot: id,
                from: cut,
            },
            &mut bytes,
        )
        .map_err(|e| e.to_string())?;
        let at = self.good + self.retry.len() as u64;
        let len = bytes.len() as u64;
        let ok = self.write(
            Batch {
                parts: vec![(0..bytes.len(), true, None)],
                bytes,
            },
            sync,
        );
        if ok {
            self.cut_record = Some(at..at + len);
            Ok(())
        } else {
            Err("the cut record was not written".to_owned())
        }
    }

    /// Replaces the log by one continuing snapshot `id`: its header, then the records written
    /// since the cut.
    ///
    /// With `ahead`, the new log is written with zeros after the records up to the next
    /// [`ALLOCATE_AHEAD`] boundary past a quarter chunk of room, so the commits that follow
    /// write in place as before the switch (the final compaction at close leaves none).
    fn switch(
        &mut self,
        id: SnapshotId,
        cut: u64,
        snapshot_len: u64,
        ahead: bool,
    ) -> Result<(), String> {
        let io_err =
            |op: &str, e: io::Error| format!("alerting log {}: {op}: {e}", self.log.display());
        let tail_len = self.good.saturating_sub(cut) as usize;
        let mut new = Vec::with_capacity(HEADER_LEN + tail_len);
        new.extend_from_slice(&header(id));
        let start = new.len();
        new.resize(start + tail_len, 0);
        self.file
            .seek(SeekFrom::Start(cut))
            .and_then(|_| self.file.read_exact(&mut new[start..]))
            .map_err(|e| io_err("reading the records since the cut", e))?;
        // The cut record only matters to the old log.
        if let Some(r) = self.cut_record.take()
            && r.start >= cut
            && r.end <= self.good
        {
            let (a, b) = (
                (r.start - cut) as usize + start,
                (r.end - cut) as usize + start,
            );
            new.drain(a..b);
        }
        let records = new.len() as u64;
        if ahead {
            new.resize(allocation_for(records) as usize, 0);
        }
        storage::save_bytes(&self.log, &new).map_err(|e| e.to_string())?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.log)
            .map_err(|e| io_err("reopening", e))?;
        self.identity = identity_of(&file);
        if let Some(s) = &self.syncer {
            // The new log was synced whole; the syncer follows it from here.
            match file.try_clone() {
                Ok(c) => s.follow(c),
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "alerting log: the syncer cannot follow the new log; every commit \
                         waits for its fdatasync from now on"
                    );
                    if let Some(s) = self.syncer.take() {
                        s.stop();
                    }
                }
            }
        }
        self.file = file;
        self.good = records;
        self.allocated = new.len() as u64;
        self.cut_tail = false;
        self.threshold = threshold(snapshot_len);
        self.shared.log_bytes.store(self.good, Ordering::Relaxed);
        self.shared.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            snapshot_bytes = snapshot_len,
            log_bytes = self.good,
            "alerting state compacted"
        );
        Ok(())
    }

    /// The whole compaction on this thread (at shutdown).
    fn compact_now(&mut self, state: AlertingState) -> Result<(), String> {
        if !self.retry.is_empty() && !self.write(Batch::default(), false) {
            // The snapshot holds those changes anyway.
            self.retry.clear();
        }
        let cut = self.good;
        let bytes = storage::encode(&state).map_err(|e| e.to_string())?;
        let id = SnapshotId::of(&bytes);
        self.mark_cut(id, cut, true)?;
        storage::save_bytes(&self.snapshot, &bytes).map_err(|e| e.to_string())?;
        self.switch(id, cut, bytes.len() as u64, false)
    }
}

/// The background fdatasync of `process` durability: a thread that syncs the log whenever the
/// writer has written to it since the last sync, so that a power loss loses at most what was
/// written during the last one or two fdatasyncs. It holds its own handle of the log (the same
/// file; an fdatasync through any handle flushes the file) and is told when a compaction
/// replaces the log.
struct Syncer {
    shared: Arc<SyncShared>,
    thread: std::thread::JoinHandle<()>,
}

struct SyncShared {
    state: Mutex<SyncState>,
    wake: Condvar,
}

struct SyncState {
    /// The log being written.
    file: Arc<File>,
    /// Writes handed over so far (a count)...
    written: u64,
    /// ...and how many of them the last completed fdatasync covered.
    synced: u64,
    stop: bool,
}

impl SyncShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        // The state is two counters and a handle, consistent at every step: a panic elsewhere
        // leaves nothing half-done to guard against.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Syncer {
    fn start(file: File, stats: Arc<Shared>) -> io::Result<Syncer> {
        let shared = Arc::new(SyncShared {
            state: Mutex::new(SyncState {
                file: Arc::new(file),
                written: 0,
                synced: 0,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("alerting-sync".to_owned())
            .spawn(move || Syncer::run(&inner, &stats))?;
        Ok(Syncer { shared, thread })
    }

    fn run(shared: &SyncShared, stats: &Shared) {
        let mut g = shared.lock();
        loop {
            while g.written == g.synced && !g.stop {
                g = shared.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.written == g.synced {
                return;
            }
            let (upto, file) = (g.written, g.file.clone());
            drop(g);
            let r = file.sync_data();
            g = shared.lock();
            g.synced = upto;
            match r {
                Ok(()) => {
                    stats.background_syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // Acknowledged records may now be lost to a power loss (after a failed
                    // fdatasync the kernel may drop the dirty pages): a compaction writes the
                    // whole state again, with fsync.
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    stats.wants_compaction.store(true, Ordering::Relaxed);
                    tracing::error!(
                        error = %e,
                        "alerting log: the background fdatasync failed; changes acknowledged \
                         since the last one survive a crash of the agent but maybe not a power \
                         loss; asking for a snapshot of the whole state"
                    );
                }
            }
        }
    }

    /// The writer wrote to the log: sync it.
    fn written(&self) {
        self.shared.lock().written += 1;
        self.shared.wake.notify_one();
    }

    /// The log was replaced (and synced whole): sync `file` from now on.
    fn follow(&self, file: File) {
        self.shared.lock().file = Arc::new(file);
    }

    /// Syncs what was written, then ends the thread.
    fn stop(self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        let _ = self.thread.join();
    }
}

/// A digest of a value's encoding: what [`Differ`] remembers instead of a copy.
fn digest<V: Serialize>(v: &V, buf: &mut Vec<u8>) -> Result<u64, JournalError> {
    buf.clear();
    let b = postcard::to_extend(v, std::mem::take(buf)).map_err(JournalError::Encode)?;
    let mut h = std::hash::DefaultHasher::new();
    h.write(&b);
    *buf = b;
    Ok(h.finish())
}

/// Records every change of `live` against the digests in `seen` (both sorted by key) and
/// updates `seen`; returns how many records it wrote.
fn diff_table<K: Ord + Clone, V: Serialize + Clone>(
    seen: &mut BTreeMap<K, u64>,
    live: &BTreeMap<K, V>,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    record: impl Fn(K, Option<V>) -> Record,
) -> Result<usize, JournalError> {
    let mut changed: Vec<(K, Option<u64>)> = Vec::new();
    let mut old = seen.iter().peekable();
    for (k, v) in live {
        while let Some((ok, _)) = old.next_if(|(ok, _)| *ok < k) {
            encode_record(&record(ok.clone(), None), out)?;
            changed.push((ok.clone(), None));
        }
        let h = digest(v, buf)?;
        match old.next_if(|(ok, _)| *ok == k) {
            Some((_, oh)) if *oh == h => {}
            _ => {
                encode_record(&record(k.clone(), Some(v.clone())), out)?;
                changed.push((k.clone(), Some(h)));
            }
        }
    }
    for (ok, _) in old {
        encode_record(&record(ok.clone(), None), out)?;
        changed.push((ok.clone(), None));
    }
    let n = changed.len();
    for (k, h) in changed {
        match h {
            Some(h) => {
                seen.insert(k, h);
            }
            None => {
                seen.remove(&k);
            }
        }
    }
    Ok(n)
}

/// Finds what an evaluation changed in the alert lifecycles, probe trackers, event marks,
/// stored alerts, groups and Alertmanager state, by comparing digests of each item's encoding
/// with the last recorded ones: the records follow the change, the memory is one digest per
/// item.
#[derive(Debug, Default)]
pub struct Differ {
    lifecycles: BTreeMap<Fingerprint, u64>,
    probes: BTreeMap<String, u64>,
    events: BTreeMap<SloId, u64>,
    alerts: BTreeMap<Fingerprint, u64>,
    groups: BTreeMap<GroupId, u64>,
    alertmanager: Option<u64>,
    buf: Vec<u8>,
}

impl Differ {
    /// Appends a record for every item that changed since the last call (the first call
    /// records everything not seen yet) to `out`; returns how many.
    pub fn diff(
        &mut self,
        alerter: &AlerterState,
        dispatcher: &Dispatcher,
        alertmanager: Option<&AlertmanagerSender>,
        out: &mut Vec<u8>,
    ) -> Result<usize, JournalError> {
        let buf = &mut self.buf;
        let mut n = diff_table(
            &mut self.lifecycles,
            &alerter.alerts,
            buf,
            out,
            |fingerprint, entry| Record::Lifecycle { fingerprint, entry },
        )?;
        n += diff_table(
            &mut self.probes,
            &alerter.probes,
            buf,
            out,
            |name, tracker| Record::Probe { name, tracker },
        )?;
        n += diff_table(&mut self.events, &alerter.events, buf, out, |slo, mark| {
            Record::Events { slo, mark }
        })?;
        let (alerts, groups) = dispatcher.persisted();
        n += diff_table(&mut self.alerts, alerts, buf, out, |fingerprint, alert| {
            Record::Alert { fingerprint, alert }
        })?;
        n += diff_table(&mut self.groups, groups, buf, out, |id, group| {
            Record::Group { id, group }
        })?;
        let am = alertmanager.map(|a| digest(a, buf)).transpose()?;
        if am != self.alertmanager {
            encode_record(&Record::Alertmanager(alertmanager.cloned()), out)?;
            self.alertmanager = am;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Matchers;
    use crate::time::Timestamp;

    fn silence(id: &str, end: i64) -> Silence {
        Silence {
            id: id.to_owned(),
            matchers: Matchers::parse(&format!("alertname=\"{id}\"")).expect("matchers"),
            starts_at: Timestamp(1_000),
            ends_at: Timestamp(end),
            created_by: "test".to_owned(),
            comment: "journal".to_owned(),
            updated_at: Timestamp(1_000),
        }
    }

    fn records(rs: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rs {
            encode_record(r, &mut out).expect("encode");
        }
        out
    }

    fn put(id: &str, end: i64) -> Record {
        Record::Silence {
            id: id.to_owned(),
            silence: Some(silence(id, end)),
        }
    }

    fn sent(group: &str) -> Record {
        Record::Sent {
            key: NflogKey {
                group_key: group.to_owned(),
                receiver: "hook".to_owned(),
                integration: 0,
            },
            entry: Entry {
                firing: [Fingerprint(7)].into_iter().collect(),
                resolved: Default::default(),
                at: Timestamp(5_000),
                expires_at: Timestamp(9_000_000_000_000),
            },
        }
    }

    const RET: Dur = Dur::from_hours(1);

    fn ids(s: &AlertingState) -> Vec<String> {
        s.silences.iter().map(|s| s.id.clone()).collect()
    }

    fn open(dir: &Path) -> (Journal, Option<AlertingState>) {
        Journal::open(&dir.join("alerting.bwcp"), RET, StateDurability::Process).expect("open")
    }

    fn commit(j: &Journal, rs: &[Record]) {
        j.commit(records(rs), true)
            .blocking_recv()
            .expect("answer")
            .expect("durable");
    }

    #[test]
    fn committed_records_survive_a_restart_and_replay_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let (j, state) = open(dir.path());
        assert!(state.is_none(), "a first start");
        commit(&j, &[put("a", 10_000), put("b", 10_000)]);
        commit(
            &j,
            &[
                Record::Silence {
                    id: "a".into(),
                    silence: None,
                },
                put("b", 20_000),
                sent("g1"),
            ],
        );
        // Without close: as after SIGKILL.
        drop(j);
        let (_j, state) = open(dir.path());
        let state = state.expect("replayed");
        assert_eq!(ids(&state), ["b"]);
        assert_eq!(
            state.silences.get("b").expect("b").ends_at,
            Timestamp(20_000)
        );
        let (_, _, nflog) = state.dispatcher.into_parts();
        assert_eq!(nflog.iter().count(), 1);
    }

    #[test]
    fn a_state_file_of_the_previous_format_loads_as_a_snapshot() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let mut old = AlertingState::empty(RET);
        old.silences.put("x", Some(silence("x", 50_000)));
        // What releases before the log wrote after every change.
        storage::save(&path, &old).expect("save");
        let (j, state) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(state.as_ref(), Some(&old));
        commit(&j, &[put("y", 60_000)]);
        drop(j);
        let (_j, state) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(ids(&state.expect("state")), ["x", "y"]);
    }

    /// A state file written by the release before the log (`burnwatch run` on three failing
    /// probes with a webhook receiver, two silences POSTed, stopped with SIGTERM).
    const WHOLE_FILE: &[u8] = include_bytes!("../../tests/fixtures/alerting-state-whole-file.bwcp");

    #[test]
    fn a_state_file_written_by_the_previous_release_loads_and_takes_records() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        fs::write(&path, WHOLE_FILE).expect("fixture");
        let (j, state) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        let state = state.expect("the old state");
        let comments: Vec<&str> = state.silences.iter().map(|s| s.comment.as_str()).collect();
        assert_eq!(comments.len(), 2, "{comments:?}");
        assert!(comments.contains(&"Maintenance1") && comments.contains(&"Maintenance2"));
        let probe_downs = state
            .alerter
            .alerts
            .values()
            .filter(|e| e.labels.get("alertname").map(String::as_str) == Some("ProbeDown"))
            .count();
        assert_eq!(probe_downs, 3);
        let (_, _, nflog) = state.dispatcher.clone().into_parts();
        assert_eq!(nflog.iter().count(), 3, "one delivery per probe group");
        // The snapshot is untouched; changes go to the new log.
        commit(&j, &[put("after-upgrade", i64::MAX)]);
        drop(j);
        assert_eq!(fs::read(&path).expect("snapshot"), WHOLE_FILE);
        let (_j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        let back = back.expect("state");
        assert_eq!(back.silences.iter().count(), 3);
        assert_eq!(back.alerter, state.alerter);
    }

    #[test]
    fn every_torn_last_record_is_dropped_with_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let (j, _) = open(dir.path());
        commit(&j, &[put("a", 10_000), put("b", 10_000)]);
        drop(j);
        let log = log_path(&dir.path().join("alerting.bwcp"));
        let written = fs::read(&log).expect("log");
        let end = scan(&log, &written).expect("scan").end as usize;
        assert!(
            written.len() > end && written[end..].iter().all(|b| *b == 0),
            "space is written ahead as zeros"
        );
        let good = written[..end].to_vec();
        let last = records(&[put("c", 10_000)]);
        for cut in 0..last.len() {
            // The crash left part of the next record in the space written ahead, or after
            // the records of a file without such space.
            for mut torn in [written.clone(), good.clone()] {
                if torn.len() < end + cut {
                    torn.resize(end + cut, 0);
                }
                torn[end..end + cut].copy_from_slice(&last[..cut]);
                fs::write(&log, &torn).expect("write");
                let (j, state) = open(dir.path());
                assert_eq!(ids(&state.expect("state")), ["a", "b"], "cut at {cut}");
                drop(j);
                let after = fs::read(&log).expect("log");
                assert_eq!(after[..end], good[..], "the records are kept");
                assert!(
                    after[end..].iter().all(|b| *b == 0),
                    "the torn bytes are cut"
                );
            }
        }
        // A complete record whose payload was not all written (stale bytes) fails its CRC.
        let mut flipped = good.clone();
        let mut c = last.clone();
        let n = c.len();
        c[n - 1] ^= 0x55;
        flipped.extend_from_slice(&c);
        fs::write(&log, &flipped).expect("write");
        let (_j, state) = open(dir.path());
        assert_eq!(ids(&state.expect("state")), ["a", "b"]);
    }

    /// A silence whose record is about `bytes` long.
    fn bulky(id: &str, bytes: usize) -> Record {
        let mut s = silence(id, 10_000);
        s.comment = "x".repeat(bytes);
        Record::Silence {
            id: id.to_owned(),
            silence: Some(s),
        }
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).expect("metadata").len()
    }

    #[test]
    fn a_zero_tail_is_the_end_of_the_log_not_damage() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let log = log_path(&path);
        let (j, _) = open(dir.path());
        commit(&j, &[put("a", 10_000), put("b", 10_000)]);
        drop(j);
        // The records, then the zeros written ahead: the file is longer than its records.
        let written = fs::read(&log).expect("log");
        let found = scan(&log, &written).expect("scan");
        assert_eq!(found.records.len(), 2);
        assert_eq!(found.torn, 0, "zeros ahead are no torn write");
        assert_eq!(
            written.len() as u64 % ALLOCATE_AHEAD,
            0,
            "allocated in chunks"
        );
        assert!(written.len() as u64 >= found.end + ALLOCATE_AHEAD / 4);
        assert!(written[found.end as usize..].iter().all(|b| *b == 0));
        let rec = recover(&path, RET).expect("recover");
        assert_eq!((rec.replayed, rec.torn), (2, 0));
        // Opening keeps the space (nothing to cut), and commits write into it in place.
        let (j, state) = open(dir.path());
        assert_eq!(ids(&state.expect("state")), ["a", "b"]);
        assert_eq!(file_len(&log), written.len() as u64, "the zeros are kept");
        commit(&j, &[put("c", 10_000)]);
        drop(j);
        assert_eq!(file_len(&log), written.len() as u64, "written in place");
        let (_j, state) = open(dir.path());
        assert_eq!(ids(&state.expect("state")), ["a", "b", "c"]);
        // A log of the earlier layout (no zeros after the records) reads the same.
        let mut bare = fs::read(&log).expect("log");
        let end = scan(&log, &bare).expect("scan").end as usize;
        bare.truncate(end);
        fs::write(&log, &bare).expect("write");
        let rec = recover(&path, RET).expect("recover");
        assert_eq!((rec.replayed, rec.torn), (3, 0));
        // A frame whose length reached the disk but whose payload did not (zeros after it) is
        // a torn write, dropped; so is a frame cut off by the end of the file.
        let mut torn = bare.clone();
        torn.extend_from_slice(&[9, 0, 0, 0]);
        torn.resize(end + 4096, 0);
        fs::write(&log, &torn).expect("write");
        let rec = recover(&path, RET).expect("recover");
        assert_eq!(rec.replayed, 3);
        assert_eq!(rec.torn, 4096, "the frame and what follows it");
    }

    #[test]
    fn space_is_extended_between_commits_and_after_a_compaction() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let log = log_path(&path);
        let (j, _) = open(dir.path());
        // 700 KB: the append itself allocates the first MiB, with room left.
        commit(&j, &[bulky("a", 700_000)]);
        assert_eq!(file_len(&log), ALLOCATE_AHEAD);
        // 100 KB more fit, leaving less than a quarter MiB: the writer extends after the
        // commit, before it takes the next one.
        commit(&j, &[bulky("b", 100_000)]);
        commit(&j, &[put("c", 10_000)]);
        assert_eq!(file_len(&log), 2 * ALLOCATE_AHEAD);
        assert_eq!(j.stats().log_bytes, {
            let bytes = fs::read(&log).expect("log");
            scan(&log, &bytes).expect("scan").end
        });
        // A compaction writes the new log with its zeros ahead.
        let mut state = AlertingState::empty(RET);
        for r in [bulky("a", 700_000), bulky("b", 100_000), put("c", 10_000)] {
            if let Record::Silence { id, silence } = r {
                state.silences.put(&id, silence);
            }
        }
        j.compact(state.clone());
        for _ in 0..1000 {
            if j.stats().compactions == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(j.stats().compactions, 1);
        assert_eq!(j.stats().log_bytes, HEADER_LEN as u64);
        assert_eq!(file_len(&log), ALLOCATE_AHEAD, "zeros ahead of the new log");
        commit(&j, &[put("d", 10_000)]);
        assert_eq!(file_len(&log), ALLOCATE_AHEAD, "written in place");
        // Killed here (no close): the snapshot and the new log with its zeros.
        drop(j);
        let rec = recover(&path, RET).expect("recover");
        assert_eq!((rec.replayed, rec.torn), (1, 0));
        assert_eq!(ids(&rec.state.expect("state")), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_damaged_snapshot_or_a_foreign_log_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        storage::save(&path, &AlertingState::empty(RET)).expect("save");
        let mut bytes = fs::read(&path).expect("read");
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        fs::write(&path, &bytes).expect("write");
        let err = Journal::open(&path, RET, StateDurability::Process)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("corrupt checkpoint"), "{err}");
        // A log naming another snapshot, without a cut naming this one.
        storage::save(&path, &AlertingState::empty(RET)).expect("save");
        let mut other = header(SnapshotId { len: 99, crc: 1 }).to_vec();
        other.extend(records(&[put("a", 10_000)]));
        fs::write(log_path(&path), &other).expect("write");
        let err = Journal::open(&path, RET, StateDurability::Process)
            .err()
            .expect("refused");
        assert!(matches!(err, JournalError::Orphan { .. }), "{err}");
        assert!(err.to_string().contains("do not belong together"), "{err}");
        fs::write(log_path(&path), b"not a log at all, not a log at all").expect("write");
        let err = Journal::open(&path, RET, StateDurability::Process)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("bad magic"), "{err}");
    }

    #[test]
    fn compaction_writes_a_snapshot_and_keeps_records_written_meanwhile() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let (j, _) = open(dir.path());
        let mut state = AlertingState::empty(RET);
        for i in 0..50 {
            let id = format!("s{i}");
            state.silences.put(&id, Some(silence(&id, 10_000)));
            commit(&j, &[put(&id, 10_000)]);
        }
        j.compact(state.clone());
        // Written after the cut: must follow the snapshot.
        commit(&j, &[put("late", 30_000)]);
        state.silences.put("late", Some(silence("late", 30_000)));
        for _ in 0..1000 {
            if j.stats().compactions == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(j.stats().compactions, 1);
        drop(j);
        let snap: AlertingState = storage::load(&path).expect("load").expect("snapshot");
        assert_eq!(snap.silences.iter().count(), 50);
        let (j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(back.as_ref(), Some(&state));
        // Close leaves the whole state in the snapshot and an empty log.
        j.close(state.clone()).expect("close");
        assert_eq!(
            fs::read(log_path(&path)).expect("log").len(),
            HEADER_LEN,
            "an empty log after close"
        );
        let snap: AlertingState = storage::load(&path).expect("load").expect("snapshot");
        assert_eq!(snap, state);
    }

    #[test]
    fn a_crash_between_the_new_snapshot_and_the_new_log_replays_from_the_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let (j, _) = open(dir.path());
        commit(&j, &[put("a", 10_000)]);
        drop(j);
        // By hand, the steps of a compaction up to the snapshot's rename, with a record
        // written after the cut.
        let mut snap = AlertingState::empty(RET);
        snap.silences.put("a", Some(silence("a", 10_000)));
        let bytes = storage::encode(&snap).expect("encode");
        let id = SnapshotId::of(&bytes);
        let log = log_path(&path);
        let mut l = fs::read(&log).expect("log");
        l.truncate(scan(&log, &l).expect("scan").end as usize);
        let cut = l.len() as u64;
        l.extend(records(&[
            put("b", 10_000),
            Record::Cut {
                snapshot: id,
                from: cut,
            },
        ]));
        fs::write(&log, &l).expect("write");
        storage::save_bytes(&path, &bytes).expect("snapshot");
        let (j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(ids(&back.expect("state")), ["a", "b"]);
        drop(j);
        // The log was rebased on the snapshot: it names it and holds only "b" (and the cut).
        let l = fs::read(&log).expect("log");
        assert_eq!(parse_header(&l).expect("header"), id);
        let (_j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(ids(&back.expect("state")), ["a", "b"]);
    }

    #[test]
    fn a_moved_log_fails_the_commit_and_nothing_is_lost_once_it_is_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let (j, _) = open(dir.path());
        let log = log_path(&path);
        let away = dir.path().join("away");
        fs::rename(&log, &away).expect("move");
        fs::create_dir(&log).expect("block");
        // Not undone by the caller: kept for a retry.
        j.append(records(&[put("kept", 10_000)]));
        let r = j
            .commit(records(&[put("undone", 10_000)]), true)
            .blocking_recv()
            .expect("answer");
        assert!(r.is_err(), "{r:?}");
        assert!(j.stats().failures >= 1);
        fs::remove_dir(&log).expect("unblock");
        fs::rename(&away, &log).expect("back");
        commit(&j, &[put("after", 10_000)]);
        drop(j);
        let (_j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(ids(&back.expect("state")), ["after", "kept"]);
    }

    #[test]
    fn each_durability_acknowledges_only_records_a_restart_reads() {
        for mode in [StateDurability::Process, StateDurability::Power] {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("alerting.bwcp");
            let (j, _) = Journal::open(&path, RET, mode).expect("open");
            for i in 0..20 {
                commit(&j, &[put(&format!("s{i:02}"), 10_000)]);
                // What a start after SIGKILL at this moment reads: the file as the kernel
                // holds it, the agent still running.
                let rec = recover(&path, RET).expect("recover");
                assert_eq!(
                    rec.state.expect("state").silences.iter().count(),
                    i + 1,
                    "{mode:?}: commit {i} was answered before its record was written"
                );
            }
            match mode {
                StateDurability::Process => {
                    // The syncer follows the writes (bounded wait, no timing asserted).
                    let mut waited = 0;
                    while j.stats().background_syncs == 0 {
                        assert!(waited < 3_000, "no background fdatasync after 20 commits");
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        waited += 1;
                    }
                }
                StateDurability::Power => assert_eq!(j.stats().background_syncs, 0),
            }
            assert_eq!(j.stats().failures, 0);
            drop(j);
            let (_j, back) = Journal::open(&path, RET, mode).expect("open");
            assert_eq!(back.expect("state").silences.iter().count(), 20, "{mode:?}");
        }
    }

    #[test]
    fn compaction_and_close_work_in_process_durability() {
        // The syncer follows the log a compaction writes; close syncs and stops it.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alerting.bwcp");
        let (j, _) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        let mut state = AlertingState::empty(RET);
        for i in 0..50 {
            let id = format!("c{i:02}");
            commit(&j, &[put(&id, 10_000)]);
            state.silences.put(&id, Some(silence(&id, 10_000)));
        }
        j.compact(state.clone());
        let mut waited = 0;
        while j.stats().compactions == 0 {
            assert!(waited < 3_000, "the compaction did not finish");
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        for i in 50..60 {
            let id = format!("c{i:02}");
            commit(&j, &[put(&id, 10_000)]);
            state.silences.put(&id, Some(silence(&id, 10_000)));
        }
        assert_eq!(j.stats().failures, 0);
        let rec = recover(&path, RET).expect("recover");
        assert_eq!(rec.state.as_ref(), Some(&state));
        j.close(state.clone()).expect("close");
        let (_j, back) = Journal::open(&path, RET, StateDurability::Process).expect("open");
        assert_eq!(back, Some(state));
    }

    #[test]
    fn records_from_many_callers_share_group_commits() {
        let dir = tempfile::tempdir().expect("tmp");
        let (j, _) = open(dir.path());
        let acks: Vec<Ack> = (0..200)
            .map(|i| j.commit(records(&[put(&format!("s{i}"), 10_000)]), true))
            .collect();
        for a in acks {
            a.blocking_recv().expect("answer").expect("durable");
        }
        let syncs = j.stats().syncs;
        assert!(
            syncs < 200,
            "200 commits queued together took {syncs} syncs"
        );
        drop(j);
        let (_j, back) = open(dir.path());
        assert_eq!(back.expect("state").silences.iter().count(), 200);
    }

    #[test]
    fn the_differ_records_only_what_changed() {
        let mut d = Differ::default();
        let mut alerter = AlerterState::default();
        alerter.events.insert(
            SloId {
                service: "shop".into(),
                slo: "a".into(),
            },
            EventMark {
                count: 1,
                since: Timestamp(1),
            },
        );
        let route = crate::notify::route::parse_route(
            Path::new("am.yml"),
            "receiver: r\ngroup_by: [alertname]\n",
        )
        .expect("route");
        let dispatcher = Dispatcher::new(
            route,
            crate::notify::inhibit::Inhibitor::new(
                Vec::new(),
                false,
                crate::notify::inhibit::Dependencies::default(),
            ),
            [("r".to_owned(), vec![true])].into_iter().collect(),
        )
        .expect("dispatcher");
        let mut out = Vec::new();
        assert_eq!(
            d.diff(&alerter, &dispatcher, None, &mut out).expect("diff"),
            1
        );
        out.clear();
        assert_eq!(
            d.diff(&alerter, &dispatcher, None, &mut out).expect("diff"),
            0
        );
        assert!(out.is_empty());
        let slo = SloId {
            service: "shop".into(),
            slo: "b".into(),
        };
        alerter.events.insert(
            slo.clone(),
            EventMark {
                count: 2,
                since: Timestamp(2),
            },
        );
        alerter.events.remove(&SloId {
            service: "shop".into(),
            slo: "a".into(),
        });
        assert_eq!(
            d.diff(&alerter, &dispatcher, None, &mut out).expect("diff"),
            2
        );
        let scan = {
            let mut img = header(SnapshotId::NONE).to_vec();
            img.extend_from_slice(&out);
            scan(Path::new("x"), &img).expect("scan")
        };
        let mut t = Tables::of(AlertingState::empty(RET));
        t.alerter.events.insert(
            SloId {
                service: "shop".into(),
                slo: "a".into(),
            },
            EventMark {
                count: 1,
                since: Timestamp(1),
            },
        );
        for (_, r) in scan.records {
            t.apply(r);
        }
        assert_eq!(t.alerter.events, alerter.events);
    }
}
