//! Checkpoint files: the on-disk framing of engine state, and saving it so a crash never
//! leaves a half-written file in place of a good one.
//!
//! A checkpoint holds the error budget spent so far. Losing it silently would reset every
//! budget to full and hide an outage, so this module refuses, loudly, to turn a damaged, foreign
//! or newer file into "no state": [`load`] yields `Ok(None)` only when the file does not exist.
//! A file that cannot be read stays where it is, for a person to inspect.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `BWCHKPT\0` |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) |
//! | 12 | 8 | payload length in bytes |
//! | 20 | 4 | CRC32 (IEEE, `crc32fast`) of the payload |
//! | 24 | len | payload, encoded with `postcard` |
//!
//! The header is not covered by the CRC, but every header field is checked on its own: a damaged
//! magic, version, length or CRC field is reported as such, never accepted.
//!
//! [`save`] streams: the payload is serialized through a small buffer into the temporary file
//! after a placeholder header, its length and CRC are counted on the way, and the header is
//! written last, before the fsync and the rename. So saving holds no image of the file in
//! memory (an engine checkpoint is about 5 KB per SLO, 500 MB at 100,000 SLOs), and the bytes
//! on disk are exactly [`encode`]'s: files written either way load either way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The only format version this build writes, and the newest it reads. Older versions are read
/// through [`Payload::decode_older`]:
/// - 1: the first format;
/// - 2: engine state records each SLO's first collection (`SloState::first`).
pub const FORMAT_VERSION: u32 = 2;

/// A value stored in a checkpoint file. postcard is not self-describing, so a payload whose
/// layout changed in a format version says how to read the older layouts; one whose layout never
/// changed keeps the default, which reads every version as the current layout.
pub trait Payload: Serialize + DeserializeOwned {
    /// Decodes `body`, written with format `version` (`1 <= version < FORMAT_VERSION`), returning
    /// the value and the bytes left over.
    fn decode_older(version: u32, body: &[u8]) -> Result<(Self, &[u8]), postcard::Error> {
        let _ = version;
        postcard::take_from_bytes(body)
    }
}

/// Identifies a burnwatch checkpoint; the NUL keeps text tools from mistaking it for text.
const MAGIC: [u8; 8] = *b"BWCHKPT\0";

/// Bytes before the payload: magic, version, length, CRC.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// The buffer [`save`] serializes through: big enough that the file sees few writes, small
/// enough to be nothing next to the state it writes.
const WRITE_BUFFER: usize = 64 * 1024;

/// Why a checkpoint could not be written or read.
///
/// `path` is `None` for [`encode`] and [`decode`], which work on memory, and the file for
/// [`save`] and [`load`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused a file operation.
    #[error("checkpoint {}: {op} failed: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What was being done, e.g. "writing the temporary file".
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the checkpoint magic.
    #[error(
        "{} is not a burnwatch checkpoint (bad magic); refusing to load it; the file is kept for inspection",
        shown(path)
    )]
    NotACheckpoint {
        /// The file, when reading one.
        path: Option<PathBuf>,
    },
    /// The file was written by a newer burnwatch with a format this build cannot read.
    #[error(
        "checkpoint {} has format version {found}, written by a newer burnwatch (this build reads up to {supported}); upgrade or move the file away: refusing to start with an empty budget",
        shown(path)
    )]
    NewerVersion {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// The version in the file.
        found: u32,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
    /// The version field is 0, which no burnwatch ever wrote: the header is damaged.
    #[error(
        "corrupt checkpoint {}: format version {found} was never written by any burnwatch; refusing to load; the file is kept for inspection",
        shown(path)
    )]
    UnknownVersion {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// The version in the file.
        found: u32,
    },
    /// The file ends before its header or its declared payload does.
    #[error(
        "corrupt checkpoint {}: truncated, {expected} bytes expected but {found} present; refusing to load; the file is kept for inspection",
        shown(path)
    )]
    Truncated {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// Bytes the header (or the magic alone) calls for.
        expected: u64,
        /// Bytes actually present.
        found: u64,
    },
    /// The file goes on after the declared payload: the length field or the file is damaged.
    #[error(
        "corrupt checkpoint {}: {extra} bytes after the declared payload; refusing to load; the file is kept for inspection",
        shown(path)
    )]
    TrailingData {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// Bytes beyond header + declared length.
        extra: u64,
    },
    /// The payload does not match the CRC32 in the header.
    #[error(
        "corrupt checkpoint {}: checksum mismatch (header says {expected:08x}, payload has {actual:08x}); refusing to load; the file is kept for inspection",
        shown(path)
    )]
    Checksum {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// The CRC32 stored in the header.
        expected: u32,
        /// The CRC32 of the payload as read.
        actual: u32,
    },
    /// The payload is intact (its CRC matches) but is not a value of the expected type.
    #[error(
        "checkpoint {} is intact but its payload does not decode as the expected state: {source}; refusing to load; the file is kept for inspection",
        shown(path)
    )]
    Decode {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// What postcard objected to.
        #[source]
        source: postcard::Error,
    },
    /// The payload decoded but left bytes unread: it was written for a different type.
    #[error(
        "checkpoint {} is intact but {unused} payload bytes were left after decoding the expected state; refusing to load; the file is kept for inspection",
        shown(path)
    )]
    UnusedPayload {
        /// The file, when reading one.
        path: Option<PathBuf>,
        /// Payload bytes not consumed.
        unused: u64,
    },
    /// The state could not be serialized (a serde implementation reported an error).
    #[error("cannot encode checkpoint state: {source}")]
    Encode {
        /// What postcard objected to.
        #[source]
        source: postcard::Error,
    },
}

/// How an optional path reads in an error message.
fn shown(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "(in memory)".to_owned(),
    }
}

impl StorageError {
    /// Attaches `path` to an error produced by [`decode`], which knows no path.
    pub(crate) fn at(mut self, file: &Path) -> Self {
        match &mut self {
            StorageError::NotACheckpoint { path }
            | StorageError::NewerVersion { path, .. }
            | StorageError::UnknownVersion { path, .. }
            | StorageError::Truncated { path, .. }
            | StorageError::TrailingData { path, .. }
            | StorageError::Checksum { path, .. }
            | StorageError::Decode { path, .. }
            | StorageError::UnusedPayload { path, .. } => *path = Some(file.to_path_buf()),
            StorageError::Io { .. } | StorageError::Encode { .. } => {}
        }
        self
    }
}

/// The header of a checkpoint whose payload is `len` bytes with CRC32 `crc`.
fn header(len: u64, crc: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&len.to_le_bytes());
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Frames `payload` as a complete checkpoint file image.
pub fn encode<T: Serialize + ?Sized>(payload: &T) -> Result<Vec<u8>, StorageError> {
    // The body is serialized after a placeholder header, then the header is filled in: one
    // buffer, not a body and its copy (a checkpoint is megabytes).
    let mut out = postcard::to_extend(payload, vec![0u8; HEADER_LEN])
        .map_err(|source| StorageError::Encode { source })?;
    let body = &out[HEADER_LEN..];
    let h = header(body.len() as u64, crc32fast::hash(body));
    out[..HEADER_LEN].copy_from_slice(&h);
    Ok(out)
}

/// Reads a `N`-byte little-endian field at `at`; the caller has checked the length.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut buf = [0u8; N];
    buf.copy_from_slice(&bytes[at..at + N]);
    buf
}

/// Checks a complete checkpoint file image and decodes its payload.
///
/// Checks run in file order, so the first damaged field is the one reported.
pub fn decode<T: Payload>(bytes: &[u8]) -> Result<T, StorageError> {
    let have = bytes.len() as u64;
    let truncated = |expected: u64| StorageError::Truncated {
        path: None,
        expected,
        found: have,
    };
    // A short file that agrees with the magic so far was cut off; one that disagrees is foreign.
    let magic_part = bytes.len().min(MAGIC.len());
    if bytes[..magic_part] != MAGIC[..magic_part] {
        return Err(StorageError::NotACheckpoint { path: None });
    }
    if bytes.len() < 12 {
        return Err(truncated(HEADER_LEN as u64));
    }
    let version = u32::from_le_bytes(field(bytes, 8));
    if version > FORMAT_VERSION {
        return Err(StorageError::NewerVersion {
            path: None,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(StorageError::UnknownVersion {
            path: None,
            found: version,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN as u64));
    }
    let declared = u64::from_le_bytes(field(bytes, 12));
    let expected_crc = u32::from_le_bytes(field(bytes, 20));
    let body = &bytes[HEADER_LEN..];
    let body_len = body.len() as u64;
    if body_len < declared {
        return Err(truncated((HEADER_LEN as u64).saturating_add(declared)));
    }
    if body_len > declared {
        return Err(StorageError::TrailingData {
            path: None,
            extra: body_len - declared,
        });
    }
    let actual_crc = crc32fast::hash(body);
    if actual_crc != expected_crc {
        return Err(StorageError::Checksum {
            path: None,
            expected: expected_crc,
            actual: actual_crc,
        });
    }
    let decoded = if version == FORMAT_VERSION {
        postcard::take_from_bytes(body)
    } else {
        T::decode_older(version, body)
    };
    let (value, rest) = decoded.map_err(|source| StorageError::Decode { path: None, source })?;
    if !rest.is_empty() {
        return Err(StorageError::UnusedPayload {
            path: None,
            unused: rest.len() as u64,
        });
    }
    Ok(value)
}

/// The temporary file [`save`] writes before renaming it over `path`.
///
/// Fixed per target so that a file left behind by a crash is truncated and reused by the next
/// save instead of piling up; hidden so that it is not mistaken for a checkpoint.
fn temp_path(path: &Path) -> Result<PathBuf, StorageError> {
    let name = path.file_name().ok_or_else(|| StorageError::Io {
        path: path.to_path_buf(),
        op: "choosing a temporary file name",
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// The directory holding `path` (the current directory for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `payload` to `path` atomically: readers and a crash at any point see either the
/// previous checkpoint or the new one, never a mixture.
///
/// The bytes go to a temporary file in the same directory (so the rename cannot cross file
/// systems), which is fsynced, renamed over `path`, and then the directory is fsynced so the
/// rename itself survives a power loss. A temporary file left by an earlier crash is overwritten.
///
/// The payload is serialized straight into the temporary file (see the module's notes), so the
/// memory this takes does not grow with the payload. A serialization error leaves `path` as it
/// was and removes the temporary file.
pub fn save<T: Serialize + ?Sized>(path: &Path, payload: &T) -> Result<(), StorageError> {
    replace_with(path, |file, tmp| {
        file.write_all(&[0u8; HEADER_LEN])
            .map_err(io_err(tmp, "writing the temporary file"))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, Framed::new(file));
        if let Err(source) = postcard::to_io(payload, &mut out) {
            // postcard reports a failed write as a full buffer: the writer kept the real error.
            return Err(match out.get_mut().error.take() {
                Some(e) => io_err(tmp, "writing the temporary file")(e),
                None => StorageError::Encode { source },
            });
        }
        let framed = out
            .into_inner()
            .map_err(|e| io_err(tmp, "writing the temporary file")(e.into_error()))?;
        let (len, crc) = (framed.len, framed.crc.finalize());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header(len, crc)))
            .map_err(io_err(tmp, "writing the header of the temporary file"))
    })
}

/// The payload's way to the temporary file: counts its bytes and their CRC as they pass, and
/// keeps the first write error, which postcard would otherwise turn into "buffer full".
struct Framed<'a> {
    file: &'a mut File,
    len: u64,
    crc: crc32fast::Hasher,
    error: Option<io::Error>,
}

impl Framed<'_> {
    fn new(file: &mut File) -> Framed<'_> {
        Framed {
            file,
            len: 0,
            crc: crc32fast::Hasher::new(),
            error: None,
        }
    }
}

impl Write for Framed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.write(buf) {
            Ok(n) => {
                self.crc.update(&buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An error constructor for operation `op` on file `p`.
fn io_err(p: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let p = p.to_path_buf();
    move |source| StorageError::Io {
        path: p,
        op,
        source,
    }
}

/// Replaces `path` atomically with what `write` puts into a new temporary file (named as its
/// second argument): the temporary file is fsynced, renamed over `path`, and the directory is
/// fsynced. On any error `path` is left as it was and the temporary file is removed.
fn replace_with(
    path: &Path,
    write: impl FnOnce(&mut File, &Path) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let tmp = temp_path(path)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp, "creating the temporary file"))?;
        write(&mut file, &tmp)?;
        file.sync_all()
            .map_err(io_err(&tmp, "syncing the temporary file"))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path, "renaming the temporary file over"))
    })();
    if let Err(e) = written {
        // Best effort: the error that matters is the one already in hand, and a leftover
        // temporary file is harmless (it is ignored by load and reused by the next save).
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

/// Replaces `path` atomically with `bytes`, exactly as [`save`] does: an [`encode`]d image
/// whose identity the caller needs before it is written (the alerting snapshot), or any other
/// file whose writer needs the same crash safety.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    replace_with(path, |file, tmp| {
        file.write_all(bytes)
            .map_err(io_err(tmp, "writing the temporary file"))
    })
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let err = |op: &'static str| {
        let path = dir.to_path_buf();
        move |source| StorageError::Io { path, op, source }
    };
    File::open(dir)
        .map_err(err("opening the directory to sync it"))?
        .sync_all()
        .map_err(err("syncing the directory"))
}

/// Makes a rename in `dir` durable (other platforms cannot open a directory; rename is
/// already as durable as they allow).
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<(), StorageError> {
    Ok(())
}

/// Reads and checks the checkpoint at `path`.
///
/// `Ok(None)` means only that no file exists there (a first start). Every other problem is an
/// error naming the file, which is left untouched for inspection.
pub fn load<T: Payload>(path: &Path) -> Result<Option<T>, StorageError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                path: path.to_path_buf(),
                op: "reading",
                source,
            });
        }
    };
    decode(&bytes).map(Some).map_err(|e| e.at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use sketches_ddsketch::{Config, DDSketch};

    /// A stand-in for engine state: counters, text, nesting and a real sketch.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct State {
        generation: u64,
        name: String,
        buckets: Vec<(i64, u32, u32)>,
        sketch: Option<Vec<u8>>,
    }

    impl Payload for State {}
    impl Payload for u8 {}
    impl Payload for Vec<u32> {}
    impl Payload for Vec<(i64, u32, String)> {}

    fn state(generation: u64) -> State {
        State {
            generation,
            name: format!("checkout-availability-{generation}"),
            buckets: (0..50)
                .map(|i| {
                    (
                        1_700_000_000_000 + i * 60_000,
                        (i as u32) * 7,
                        (i as u32) * 8,
                    )
                })
                .collect(),
            sketch: None,
        }
    }

    fn tmpdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory for the test")
    }

    #[test]
    fn header_layout_is_exact() {
        let bytes = encode(&42u32).unwrap();
        let body = postcard::to_stdvec(&42u32).unwrap();
        assert_eq!(&bytes[..8], b"BWCHKPT\0");
        assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes());
        assert_eq!(bytes[12..20], (body.len() as u64).to_le_bytes());
        assert_eq!(bytes[20..24], crc32fast::hash(&body).to_le_bytes());
        assert_eq!(&bytes[24..], &body[..]);
        assert_eq!(bytes.len(), 24 + body.len());
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        let mut s = state(7);
        let mut sk = DDSketch::new(Config::defaults());
        for v in [0.012, 0.020, 0.250, 1.5] {
            sk.add(v);
        }
        s.sketch = Some(postcard::to_stdvec(&sk).unwrap());
        save(&path, &s).unwrap();
        let back: State = load(&path).unwrap().expect("the file was just saved");
        assert_eq!(back, s);
        let sk2: DDSketch = postcard::from_bytes(back.sketch.as_deref().unwrap()).unwrap();
        assert_eq!(sk2.count(), 4);
        assert_eq!(sk2.max(), Some(1.5));
        // Saving again replaces the content.
        save(&path, &state(8)).unwrap();
        assert_eq!(load::<State>(&path).unwrap(), Some(state(8)));
    }

    #[test]
    fn missing_file_is_the_only_none() {
        let dir = tmpdir();
        let got: Option<State> = load(&dir.path().join("absent.ckpt")).unwrap();
        assert_eq!(got, None);
    }

    #[test]
    fn zero_length_file_is_truncated_not_empty_state() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        fs::write(&path, b"").unwrap();
        match load::<State>(&path) {
            Err(StorageError::Truncated {
                path: Some(p),
                expected: 24,
                found: 0,
            }) => assert_eq!(p, path),
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!(path.exists(), "a bad file is kept for inspection");
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let bytes = encode(&state(3)).unwrap();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(
                    decode::<State>(&bad).is_err(),
                    "flipping byte {i} with {mask:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn payload_flip_is_a_checksum_error_and_file_is_kept() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &state(3)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let err = load::<State>(&path).unwrap_err();
        assert!(matches!(err, StorageError::Checksum { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("corrupt checkpoint"), "{msg}");
        assert!(msg.contains("the file is kept for inspection"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "load must not touch a bad file"
        );
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = encode(&state(3)).unwrap();
        for len in 0..bytes.len() {
            match decode::<State>(&bytes[..len]) {
                Err(StorageError::Truncated { found, .. }) => assert_eq!(found, len as u64),
                other => panic!("prefix of {len} bytes: expected Truncated, got {other:?}"),
            }
        }
    }

    #[test]
    fn trailing_bytes_are_detected() {
        let mut bytes = encode(&state(3)).unwrap();
        bytes.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decode::<State>(&bytes),
            Err(StorageError::TrailingData { extra: 3, .. })
        ));
    }

    #[test]
    fn newer_version_is_refused_with_an_actionable_message() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        let mut bytes = encode(&state(1)).unwrap();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = load::<State>(&path).unwrap_err();
        match &err {
            StorageError::NewerVersion {
                found,
                supported: FORMAT_VERSION,
                path: Some(p),
            } if *found == FORMAT_VERSION + 1 => assert_eq!(p, &path),
            other => panic!("expected NewerVersion, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("written by a newer burnwatch"), "{msg}");
        assert!(msg.contains("upgrade or move the file away"), "{msg}");
        assert!(
            msg.contains("refusing to start with an empty budget"),
            "{msg}"
        );
    }

    /// A payload whose layout changed: version 1 stored a bare `u32`, version 2 a pair.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Grown(u32, Option<u64>);

    impl Payload for Grown {
        fn decode_older(version: u32, body: &[u8]) -> Result<(Self, &[u8]), postcard::Error> {
            assert_eq!(version, 1);
            let (v, rest): (u32, &[u8]) = postcard::take_from_bytes(body)?;
            Ok((Grown(v, None), rest))
        }
    }

    #[test]
    fn older_versions_are_read_through_the_payload() {
        let mut bytes = encode(&7u32).unwrap();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode::<Grown>(&bytes).unwrap(), Grown(7, None));
        // The same bytes as the current version are a different layout: refused, not misread.
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        assert!(decode::<Grown>(&bytes).is_err());
        let now = encode(&Grown(7, Some(9))).unwrap();
        assert_eq!(decode::<Grown>(&now).unwrap(), Grown(7, Some(9)));
    }

    #[test]
    fn version_zero_is_refused() {
        let mut bytes = encode(&state(1)).unwrap();
        bytes[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            decode::<State>(&bytes),
            Err(StorageError::UnknownVersion { found: 0, .. })
        ));
    }

    #[test]
    fn wrong_magic_is_not_a_checkpoint() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        fs::write(&path, b"{\"generation\": 1}\n").unwrap();
        let err = load::<State>(&path).unwrap_err();
        assert!(
            matches!(&err, StorageError::NotACheckpoint { path: Some(p) } if p == &path),
            "{err:?}"
        );
        // A short file that disagrees with the magic is foreign, not truncated.
        assert!(matches!(
            decode::<State>(b"BX"),
            Err(StorageError::NotACheckpoint { path: None })
        ));
        let mut bytes = encode(&state(1)).unwrap();
        bytes[0] = b'X';
        assert!(matches!(
            decode::<State>(&bytes),
            Err(StorageError::NotACheckpoint { .. })
        ));
    }

    #[test]
    fn intact_payload_of_another_type_is_refused() {
        // A lone integer read as a whole state runs out of input: a decode error, not a default.
        let bytes = encode(&(u32::MAX as u64 + 5)).unwrap();
        assert!(matches!(
            decode::<State>(&bytes),
            Err(StorageError::Decode { .. })
        ));
        // A longer payload read as a shorter type leaves bytes unread.
        let bytes = encode(&(7u8, 9u8)).unwrap();
        assert!(matches!(
            decode::<u8>(&bytes),
            Err(StorageError::UnusedPayload { unused: 1, .. })
        ));
    }

    #[test]
    fn leftover_temp_file_is_ignored_by_load_and_reused_by_save() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &state(1)).unwrap();
        // A crash after writing part of the next checkpoint leaves a partial temporary file.
        let tmp = temp_path(&path).unwrap();
        let next = encode(&state(2)).unwrap();
        fs::write(&tmp, &next[..next.len() / 2]).unwrap();
        assert_eq!(load::<State>(&path).unwrap(), Some(state(1)));
        save(&path, &state(3)).unwrap();
        assert!(!tmp.exists(), "the leftover temporary file was cleaned");
        assert_eq!(load::<State>(&path).unwrap(), Some(state(3)));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.ckpt")]);
    }

    #[test]
    fn failed_save_leaves_the_old_checkpoint_intact() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &state(1)).unwrap();
        let before = fs::read(&path).unwrap();
        // Make the temporary file impossible to create: a directory holds its name.
        let tmp = temp_path(&path).unwrap();
        fs::create_dir(&tmp).unwrap();
        let err = save(&path, &state(2)).unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(load::<State>(&path).unwrap(), Some(state(1)));
    }

    #[test]
    fn failed_encode_touches_nothing() {
        struct Unserializable;
        impl Serialize for Unserializable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("this state refuses to serialize"))
            }
        }
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &state(1)).unwrap();
        let before = fs::read(&path).unwrap();
        assert!(matches!(
            save(&path, &Unserializable),
            Err(StorageError::Encode { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!temp_path(&path).unwrap().exists());
    }

    #[test]
    fn save_streams_exactly_the_bytes_encode_makes() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        // Bigger than the write buffer many times over, so the body crosses many flushes.
        let big = State {
            generation: 9,
            name: "y".repeat(3 * WRITE_BUFFER + 17),
            buckets: (0..50_000).map(|i| (i, i as u32, !(i as u32))).collect(),
            sketch: Some(vec![7; 1000]),
        };
        for s in [state(1), big] {
            save(&path, &s).unwrap();
            assert_eq!(fs::read(&path).unwrap(), encode(&s).unwrap());
            assert_eq!(load::<State>(&path).unwrap(), Some(s));
        }
        assert!(!temp_path(&path).unwrap().exists());
    }

    #[test]
    fn a_saved_file_cut_short_or_damaged_is_refused() {
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        let s = State {
            name: "z".repeat(2 * WRITE_BUFFER),
            ..state(4)
        };
        save(&path, &s).unwrap();
        let whole = fs::read(&path).unwrap();
        for len in [
            0,
            10,
            HEADER_LEN,
            HEADER_LEN + 1,
            WRITE_BUFFER,
            whole.len() - 1,
        ] {
            fs::write(&path, &whole[..len]).unwrap();
            assert!(
                matches!(load::<State>(&path), Err(StorageError::Truncated { .. })),
                "{len} bytes"
            );
        }
        for at in [12, 20, HEADER_LEN + WRITE_BUFFER] {
            let mut bad = whole.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).unwrap();
            assert!(load::<State>(&path).is_err(), "a flip at {at}");
        }
    }

    #[test]
    fn a_payload_failing_after_megabytes_leaves_the_old_file_and_no_temporary() {
        /// Serializes a long list, then fails: the file has seen several buffers by then.
        struct FailsLate;
        impl Serialize for FailsLate {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(1_000_001))?;
                for i in 0..1_000_000u64 {
                    seq.serialize_element(&i)?;
                }
                Err(serde::ser::Error::custom("fails at the end"))
            }
        }
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &state(1)).unwrap();
        let before = fs::read(&path).unwrap();
        let err = save(&path, &FailsLate).unwrap_err();
        assert!(matches!(err, StorageError::Encode { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!temp_path(&path).unwrap().exists());
    }

    #[test]
    fn readers_see_old_or_new_never_a_mixture() {
        // Large payloads make a torn write likely to be observed if save were not atomic.
        let big = |g: u64| State {
            generation: g,
            name: "x".repeat(200_000 + g as usize),
            buckets: vec![(g as i64, g as u32, g as u32); 10_000],
            sketch: None,
        };
        let (a, b) = (big(1), big(2));
        let dir = tmpdir();
        let path = dir.path().join("state.ckpt");
        save(&path, &a).unwrap();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for i in 0..60 {
                    save(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
                }
            });
            let mut reads = 0;
            while !writer.is_finished() || reads < 10 {
                let got: State = load(&path).unwrap().expect("the target always exists");
                assert!(got == a || got == b, "read a mixture of two checkpoints");
                reads += 1;
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn temp_and_parent_paths() {
        assert_eq!(parent_dir(Path::new("state.ckpt")), Path::new("."));
        assert_eq!(
            temp_path(Path::new("/var/lib/bw/state.ckpt")).unwrap(),
            PathBuf::from("/var/lib/bw/.state.ckpt.tmp")
        );
        assert!(matches!(
            save(Path::new("/"), &1u8),
            Err(StorageError::Io { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Whatever decode makes of garbage, it is an error unless the bytes really are a
            // framed checkpoint of this type.
            if let Ok(v) = decode::<Vec<u32>>(&bytes) {
                prop_assert_eq!(encode(&v).unwrap(), bytes);
            }
        }

        #[test]
        fn round_trip_arbitrary_values(v in proptest::collection::vec((any::<i64>(), any::<u32>(), ".{0,8}"), 0..40)) {
            let bytes = encode(&v).unwrap();
            prop_assert_eq!(decode::<Vec<(i64, u32, String)>>(&bytes).unwrap(), v);
        }
    }
}
