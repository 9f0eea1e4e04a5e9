//! Secrets in config files: a value written inline, `{env: VAR}` or `{file: path}`.
//!
//! One type for every credential the agent reads (receiver URLs and tokens, the SMTP and
//! Alertmanager passwords, OTLP header values): the decoder reports mistakes at file:line:col,
//! [`Secret::resolve`] reads the value when asked (so a rotated file is picked up by the next
//! read), and neither `Debug` nor any error message ever contains a value — only where it comes
//! from.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::rules::decode::{Decoder, MapReader};
use crate::rules::node::{Kind, Node};

/// Largest secret file read: a secret is a token or password, never a document.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Where a secret is read from. `Debug` shows where, never an inline value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value itself, written in the config file.
    Literal(String),
    /// The name of an environment variable of the agent's process holding the value.
    Env(String),
    /// A file holding the value (its trailing newline is not part of it). Relative paths are
    /// resolved against the config file's directory when decoding.
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Literal(_) => f.write_str("Secret(<redacted>)"),
            Secret::Env(name) => write!(f, "Secret(env {name})"),
            Secret::File(path) => write!(f, "Secret(file {})", path.display()),
        }
    }
}

/// Why a secret could not be read. Names the source, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set (or not UTF-8).
    #[error("the environment variable `{0}` is not set (or not UTF-8)")]
    Env(String),
    /// The file could not be read, or is larger than [`MAX_SECRET_BYTES`].
    #[error("secret file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error, or the size limit.
        reason: String,
    },
    /// The value is empty or only whitespace: always a deployment mistake, and sending it
    /// only produces a confusing rejection from the peer.
    #[error("the secret from {0} is empty")]
    Empty(String),
}

/// A secret's value. `Debug` prints `<redacted>`; [`SecretValue::expose`] is for the one place
/// that hands it to a peer.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value derived from secrets (e.g. a whole `Authorization` header).
    pub(crate) fn new(value: String) -> SecretValue {
        SecretValue(value)
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value itself, by value.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    /// Reads the current value. A file's trailing newline (`\n` or `\r\n`, as editors and
    /// `echo` add) is dropped; empty or whitespace-only values are errors.
    pub fn resolve(&self) -> Result<SecretValue, SecretError> {
        let (value, from) = match self {
            Secret::Literal(v) => (v.clone(), "the config".to_owned()),
            Secret::Env(name) => (
                std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?,
                format!("environment variable `{name}`"),
            ),
            Secret::File(path) => (read_file(path)?, format!("file {}", path.display())),
        };
        if value.trim().is_empty() {
            return Err(SecretError::Empty(from));
        }
        Ok(SecretValue(value))
    }
}

/// A secret file's text, at most [`MAX_SECRET_BYTES`], without its trailing newlines.
fn read_file(path: &Path) -> Result<String, SecretError> {
    let err = |reason: String| SecretError::File {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    // One byte more than allowed tells "at the limit" from "over it" without a racy stat.
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(err(format!(
            "more than the {MAX_SECRET_BYTES} bytes allowed"
        )));
    }
    let len = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(len);
    Ok(text)
}

/// Decodes a secret written under `what`: a string (the value itself), `{env: VAR}` or
/// `{file: path}` (relative paths joined to `base`, the config file's directory). None after
/// reporting the error at its position.
pub(crate) fn decode(d: &mut Decoder<'_>, base: &Path, node: &Node, what: &str) -> Option<Secret> {
    match node.kind() {
        Kind::Map(_) => {
            let m = MapReader::new(
                d,
                node,
                "a secret (`{env: VAR}` or `{file: path}`)",
                &["env", "file"],
            )?;
            match m.exactly_one(d, &["env", "file"])? {
                "env" => m.opt(d, "env", Decoder::string).map(Secret::Env),
                _ => m
                    .opt(d, "file", Decoder::string)
                    .map(|p| Secret::File(base.join(p))),
            }
        }
        Kind::Str(_) => d.string(node, what).map(Secret::Literal),
        _ => {
            d.type_error(node, what, "a value, `{env: VAR}` or `{file: path}`");
            None
        }
    }
}

/// The directory relative paths in the file being decoded are resolved against.
pub(crate) fn config_dir<'a>(d: &Decoder<'a>) -> &'a Path {
    d.file.parent().unwrap_or(Path::new(""))
}

/// Decodes a URL that may be a secret: a literal must be an http(s) URL; `{env}`/`{file}` values
/// are checked when building.
pub(crate) fn decode_url_secret(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Secret> {
    if n.as_str().is_some() {
        return d.url(n, key).map(Secret::Literal);
    }
    decode_secret(d, n, key)
}

/// Decodes a password-like secret with [`decode`], warning when it is written in the
/// config itself (the config ends up in backups and reviews).
pub(crate) fn decode_password(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Secret> {
    if let Kind::Str(_) = n.kind() {
        d.warn(
            n.pos(),
            format!(
                "`{key}` is written in the config; prefer `{key}: {{env: VAR}}` or `{key}: {{file: /path}}` so the secret stays out of the file"
            ),
        );
    }
    let base = config_dir(d);
    decode(d, base, n, key)
}

/// [`decode`] with paths relative to the file being decoded.
pub(crate) fn decode_secret(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Secret> {
    let base = config_dir(d);
    decode(d, base, n, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::node::parse_str;

    fn decode_text(text: &str) -> (Option<Secret>, Vec<String>) {
        let docs = parse_str(text).expect("yaml");
        let mut d = Decoder::new(Path::new("/etc/bw/agent.yaml"), text);
        let m = MapReader::new(&mut d, &docs[0], "test", &["password"]).expect("map");
        let base = config_dir(&d);
        let s = m.req(&mut d, "password", "{env: X}", |d, n, k| {
            decode(d, base, n, k)
        });
        let diags = d.diagnostics.iter().map(ToString::to_string).collect();
        (s, diags)
    }

    #[test]
    fn every_form_decodes_with_paths_relative_to_the_config() {
        let one = |t: &str| decode_text(t).0.expect("decodes");
        assert_eq!(
            one("password: hunter2\n"),
            Secret::Literal("hunter2".into())
        );
        assert_eq!(one("password: {env: PW}\n"), Secret::Env("PW".into()));
        assert_eq!(
            one("password: {file: secrets/pw}\n"),
            Secret::File("/etc/bw/secrets/pw".into())
        );
        assert_eq!(
            one("password: {file: /run/pw}\n"),
            Secret::File("/run/pw".into())
        );
    }

    #[test]
    fn errors_have_positions() {
        let (s, diags) = decode_text("password: {env: A, file: b}\n");
        assert!(s.is_none());
        assert_eq!(
            diags,
            vec![
                "/etc/bw/agent.yaml:1:20: error: a secret (`{env: VAR}` or `{file: path}`) takes exactly one of `env`, `file`, found `env`, `file`; keep only one"
            ]
        );
        let (s, diags) = decode_text("password: [a]\n");
        assert!(s.is_none());
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].starts_with("/etc/bw/agent.yaml:1:11: error: "),
            "{diags:?}"
        );
        let (s, diags) = decode_text("password: {envv: A}\n");
        assert!(s.is_none());
        assert!(diags[0].contains("unknown key `envv`"), "{diags:?}");
    }

    #[test]
    fn secrets_never_show_their_values() {
        let s = Secret::Literal("hunter2-very-secret".into());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Secret::Env("X".into())), "Secret(env X)");
        assert_eq!(
            format!("{:?}", Secret::File("/run/pw".into())),
            "Secret(file /run/pw)"
        );
        let v = s.resolve().expect("literal");
        assert_eq!(format!("{v:?}"), "<redacted>");
        assert_eq!(v.expose(), "hunter2-very-secret");
    }

    #[test]
    fn files_drop_the_trailing_newline_and_refuse_empty_values() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("key");
        std::fs::write(&f, "pa ss\r\n").expect("write");
        let read = |f: &Path| Secret::File(f.to_owned()).resolve();
        assert_eq!(
            read(&f).map(SecretValue::into_inner).as_deref(),
            Ok("pa ss")
        );
        std::fs::write(&f, "abc123\n\n").expect("write");
        assert_eq!(
            read(&f).map(SecretValue::into_inner).as_deref(),
            Ok("abc123")
        );
        for empty in ["", "\n", "  \n"] {
            std::fs::write(&f, empty).expect("write");
            assert_eq!(
                read(&f),
                Err(SecretError::Empty(format!("file {}", f.display())))
            );
        }
        assert_eq!(
            Secret::Literal(" ".into()).resolve(),
            Err(SecretError::Empty("the config".into()))
        );
        std::fs::write(&f, vec![b'a'; MAX_SECRET_BYTES as usize + 1]).expect("write");
        assert!(matches!(read(&f), Err(SecretError::File { .. })));
        std::fs::write(&f, vec![b'a'; MAX_SECRET_BYTES as usize]).expect("write");
        assert_eq!(
            read(&f).map(|v| v.expose().len()),
            Ok(MAX_SECRET_BYTES as usize)
        );
        let missing = dir.path().join("missing");
        let e = read(&missing).expect_err("missing file");
        assert!(
            e.to_string()
                .starts_with(&format!("secret file {}: ", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn unset_variables_are_named() {
        let e = Secret::Env("BURNWATCH_TEST_SURELY_UNSET_VAR".into()).resolve();
        assert_eq!(
            e,
            Err(SecretError::Env("BURNWATCH_TEST_SURELY_UNSET_VAR".into()))
        );
        assert_eq!(
            e.expect_err("unset").to_string(),
            "the environment variable `BURNWATCH_TEST_SURELY_UNSET_VAR` is not set (or not UTF-8)"
        );
    }
}
