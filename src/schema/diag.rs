//! Diagnostics: what `burnwatch check` reports about a rules or config file, each pinned to a
//! file, line and column, with a message of the form "what is wrong; what to write instead".
//! Also the did-you-mean helper used for unknown keys and names.

use std::fmt;
use std::path::PathBuf;

use crate::schema::node::Pos;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The rules cannot be used until this is fixed.
    Error,
    /// The rules work but probably do not mean what was intended (`--strict` makes it fail).
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file it is about.
    pub file: PathBuf,
    /// Where in the file (line and column start at 1; 0:0 when the whole file is meant).
    pub pos: Pos,
    /// Error or warning.
    pub severity: Severity,
    /// "what is wrong; what to write instead".
    pub message: String,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: error: message` (without `line:column` when the position is unknown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.severity.as_str(),
                self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file.display(),
                self.pos.line,
                self.pos.column,
                self.severity.as_str(),
                self.message
            )
        }
    }
}

/// Levenshtein distance over chars (small inputs only: keys and names).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: equal ignoring
/// case and `-` versus `_`, a known synonym from other SLO tools, or within a third of the word's
/// length in edits (at least 1, at most 2), so short unrelated words are not suggested.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if let Some(c) = candidates.iter().find(|c| norm(c) == w) {
        return Some(c);
    }
    // Words people carry over from other SLO tools.
    const SYNONYMS: [(&str, &str); 8] = [
        ("target", "objective"),
        ("goal", "objective"),
        ("sli", "indicator"),
        ("period", "window"),
        ("timezone", "time_zone"),
        ("tz", "time_zone"),
        ("objectives", "slos"),
        ("budgeting_method", "method"),
    ];
    if let Some((_, to)) = SYNONYMS.iter().find(|(from, _)| *from == w)
        && let Some(c) = candidates.iter().find(|c| *c == to)
    {
        return Some(c);
    }
    let limit = (w.chars().count() / 3).clamp(1, 2);
    candidates
        .iter()
        .map(|c| (edit_distance(&w, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("objectve", "objective"), 1);
    }

    #[test]
    fn suggestions() {
        let keys = ["name", "objective", "window", "time_zone", "indicator"];
        assert_eq!(did_you_mean("objectve", &keys), Some("objective"));
        assert_eq!(did_you_mean("Window", &keys), Some("window"));
        assert_eq!(did_you_mean("time-zone", &keys), Some("time_zone"));
        assert_eq!(did_you_mean("target", &keys), Some("objective"));
        assert_eq!(did_you_mean("zzz", &keys), None);
        assert_eq!(did_you_mean("nam", &keys), Some("name"));
    }

    #[test]
    fn display() {
        let d = Diagnostic {
            file: PathBuf::from("a.yaml"),
            pos: Pos::new(3, 5),
            severity: Severity::Error,
            message: "bad; write good".into(),
        };
        assert_eq!(d.to_string(), "a.yaml:3:5: error: bad; write good");
    }
}
