//! The rules language: YAML files SREs write, checked into a validated [`model::RuleSet`].
//!
//! This module owns loading a file set: finding the files, reading them within size limits,
//! decoding each one ([`decode`]), and the checks that span files (duplicate service, probe and
//! scrape names; `probe:` references). Every problem of every file is reported in one pass.
//!
//! - [`decode`]: the rules schema, from the YAML tree to the model, collecting every diagnostic.
//! - [`sloth`], [`openslo`]: Sloth's and OpenSLO's files read into the same model, their queries
//!   translated by [`promql`]; [`convert`] writes the model back as `burnwatch/v1`.
//! - [`file`]: what one file declares, whichever reader filled it.
//! - [`selector`]: Prometheus series selectors.
//! - [`model`]: the validated model.
//!
//! The YAML tree ([`node`]), diagnostics ([`diag`]) and the generic schema walker are
//! [`crate::schema`]'s; they are re-exported here under their old paths.

pub mod convert;
pub mod decode;
pub mod file;
pub mod model;
pub(crate) mod openslo;
pub mod promql;
pub mod selector;
pub(crate) mod sloth;

pub use crate::schema::{diag, node};

use std::io::Read;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Severity};

use crate::rules::file::{Decl, FileRules};
use crate::rules::model::RuleSet;
use crate::rules::node::{MAX_FILE_BYTES, Pos};

/// Deepest directory nesting walked when a directory is given (guards against odd layouts).
const MAX_DIR_DEPTH: usize = 32;

/// What one good service document declares, for the `FILE: OK: ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    /// The service name.
    pub service: String,
    /// Number of SLOs (a grouped rule counts once).
    pub slos: usize,
    /// How many of them are grouped (`group_by`): one SLO per label set at run time.
    pub grouped: usize,
    /// Number of probes declared in the same document.
    pub probes: usize,
    /// Number of scrape targets declared in the same document.
    pub scrapes: usize,
    /// How many SLOs read a query source (`query` indicators, and Sloth SLOs whose queries
    /// did not translate to selectors).
    pub queries: usize,
    /// The document's spec: for Sloth's, the `OK` line says how many SLOs were translated to
    /// selectors.
    pub spec: crate::rules::model::Spec,
}

/// The outcome for one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// One summary per service document that decoded cleanly (empty when the file has errors).
    pub services: Vec<ServiceSummary>,
    /// Number of errors about this file.
    pub errors: usize,
    /// Number of warnings about this file.
    pub warnings: usize,
    /// OpenSLO objects in the file other than SLOs (SLIs, alert policies, data sources, ...),
    /// which SLOs in this or other files name.
    pub openslo_objects: usize,
}

/// The outcome of checking a set of paths.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The validated rules: `Some` only when no file has any error.
    pub rules: Option<RuleSet>,
    /// One report per file found, in the order read.
    pub files: Vec<FileReport>,
    /// Every diagnostic, ordered by file (in the order read), then line and column. Includes
    /// problems with paths themselves (unreadable, no rules files in a directory).
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
    /// The diagnostics about one file.
    pub fn diagnostics_for<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a Diagnostic> {
        self.diagnostics.iter().filter(move |d| d.file == path)
    }
}

/// Finds the rules files under `paths`: files are taken as given; directories are walked
/// recursively for `*.yaml` and `*.yml` (hidden entries skipped), in sorted order. Paths that
/// do not exist or hold no rules files are reported.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let before = files.len();
                walk(p, 0, &mut files, &mut diags);
                if files.len() == before {
                    diags.push(path_error(
                        p,
                        "directory holds no *.yaml or *.yml files; give a directory of rules files or a file",
                    ));
                }
            }
            Ok(_) => files.push(p.clone()),
            Err(e) => diags.push(path_error(
                p,
                &format!("cannot read: {e}; give an existing rules file or directory"),
            )),
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    (files, diags)
}

fn path_error(p: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: p.to_path_buf(),
        pos: Pos::default(),
        severity: Severity::Error,
        message: message.to_owned(),
    }
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    if depth > MAX_DIR_DEPTH {
        diags.push(path_error(
            dir,
            &format!("directories nested deeper than {MAX_DIR_DEPTH} levels are not read; flatten the layout"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(path_error(dir, &format!("cannot read directory: {e}")));
            return;
        }
    };
    let mut list: Vec<(PathBuf, std::fs::FileType)> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, ty) in list {
        // Symlinked directories are not followed (no cycles); symlinked files are read.
        let is_file = ty.is_file() || (ty.is_symlink() && path.is_file());
        if ty.is_dir() {
            walk(&path, depth + 1, files, diags);
        } else if is_file && path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            files.push(path);
        }
    }
}

/// Reads at most one byte past the size cap, so a huge file is refused without loading it.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Checks every rules file under `paths` (see [`collect_files`]) as one file set.
pub fn check_paths(paths: &[PathBuf]) -> CheckReport {
    let (files, path_diags) = collect_files(paths);
    let mut sources = Vec::new();
    let mut read_diags = Vec::new();
    for f in files {
        match read_capped(&f) {
            Ok(bytes) => sources.push((f, bytes)),
            Err(e) => read_diags.push(path_error(&f, &format!("cannot read: {e}"))),
        }
    }
    let mut report = check_sources(&sources);
    let mut diags = path_diags;
    diags.extend(read_diags);
    if diags.iter().any(Diagnostic::is_error) {
        report.rules = None;
    }
    diags.append(&mut report.diagnostics);
    report.diagnostics = diags;
    report
}

/// Decodes the documents of one file (`source` is its text, used to map offsets inside scalars
/// to columns), each by the spec its `version` (or `apiVersion` and `kind`) names:
/// `burnwatch/v1` ([`decode`]), Sloth's `prometheus/v1` and `PrometheusServiceLevel`
/// ([`sloth`]), or OpenSLO's `openslo/v1` objects, one or a list of them per document
/// ([`openslo`], joined across files by [`openslo::resolve`]). The choice is made here, above the
/// readers, so none depends on another for it.
fn decode_file(file: &Path, source: &str, docs: &[node::Node]) -> (FileRules, openslo::Objects) {
    let mut d = crate::schema::Decoder::with(file, source, FileRules::default());
    let mut objects = openslo::Objects::default();
    if docs.is_empty() {
        d.error(
            Pos::new(1, 1),
            format!(
                "the file holds no rules; start it with `version: {}`, `service: NAME` and `slos:`",
                decode::VERSION
            ),
        );
    }
    for doc in docs {
        let field = |key: &str| match doc.kind() {
            node::Kind::Map(e) => e
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .and_then(|(_, v)| v.as_str()),
            _ => None,
        };
        // OpenSLO: one object, or a list of them.
        let first_item = match doc.kind() {
            node::Kind::Seq(items) => items.first(),
            _ => Some(doc),
        };
        let openslo = first_item.is_some_and(|n| match n.kind() {
            node::Kind::Map(e) => e.iter().any(|(k, v)| {
                k.as_str() == Some("apiVersion")
                    && v.as_str().is_some_and(|s| s.starts_with("openslo"))
            }),
            _ => false,
        });
        if openslo {
            d.openslo_document(doc, &mut objects);
        } else if field("version") == Some(sloth::VERSION) {
            d.sloth_document(doc);
        } else if field("apiVersion") == Some(sloth::K8S_API_VERSION)
            && field("kind") == Some(sloth::K8S_KIND)
        {
            d.sloth_k8s_document(doc);
        } else {
            d.burnwatch_document(doc);
        }
    }
    let mut out = d.out;
    out.diagnostics = d.diagnostics;
    (out, objects)
}

/// Checks file contents already in memory, as one file set (no I/O).
pub fn check_sources(sources: &[(PathBuf, Vec<u8>)]) -> CheckReport {
    let mut decoded: Vec<(PathBuf, FileRules)> = Vec::new();
    // Each file's OpenSLO objects, joined across the set once every file is read.
    let mut objects: Vec<openslo::Objects> = Vec::new();
    for (path, bytes) in sources {
        let (rules, file_objects) = match node::parse_documents(bytes) {
            Ok(docs) => {
                // parse_documents succeeded, so the bytes are UTF-8.
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                decode_file(path, text, &docs)
            }
            Err(e) => (
                FileRules {
                    diagnostics: vec![Diagnostic {
                        file: path.clone(),
                        pos: e.pos,
                        severity: Severity::Error,
                        message: e.message,
                    }],
                    ..FileRules::default()
                },
                openslo::Objects::default(),
            ),
        };
        decoded.push((path.clone(), rules));
        objects.push(file_objects);
    }
    openslo::resolve(&mut decoded, objects);
    cross_checks(&mut decoded);

    let mut report = CheckReport::default();
    let mut set = RuleSet::default();
    for (path, mut fr) in decoded {
        fr.diagnostics
            .sort_by_key(|d| (d.pos.line, d.pos.column, d.severity));
        let errors = fr.diagnostics.iter().filter(|d| d.is_error()).count();
        report.files.push(FileReport {
            path,
            services: if errors == 0 {
                fr.summaries
            } else {
                Vec::new()
            },
            errors,
            warnings: fr.diagnostics.len() - errors,
            openslo_objects: fr.openslo_objects,
        });
        report.diagnostics.append(&mut fr.diagnostics);
        set.services.append(&mut fr.services);
        set.probes.append(&mut fr.probes);
        set.scrapes.append(&mut fr.scrapes);
    }
    if report.errors() == 0 {
        report.rules = Some(set);
    }
    report
}

/// Decodes one file's text (named `name` in diagnostics) as a whole file set. Warnings are
/// dropped on success; use [`check_sources`] to see them.
pub fn load_str(name: &str, text: &str) -> Result<RuleSet, Vec<Diagnostic>> {
    let report = check_sources(&[(PathBuf::from(name), text.as_bytes().to_vec())]);
    match report.rules {
        Some(rules) => Ok(rules),
        None => Err(report.diagnostics),
    }
}

/// Names that must be unique across the file set, and probe references that must resolve.
fn cross_checks(files: &mut [(PathBuf, FileRules)]) {
    let mut new: Vec<(usize, Diagnostic)> = Vec::new();
    type Decls = fn(&FileRules) -> &Vec<Decl>;
    let kinds: [(&str, Decls); 3] = [
        ("service", |f| &f.service_decls),
        ("probe", |f| &f.probe_decls),
        ("scrape target", |f| &f.scrape_decls),
    ];
    for (what, decls) in kinds {
        let mut seen: std::collections::HashMap<&str, (&Path, Pos)> = Default::default();
        for (i, (path, fr)) in files.iter().enumerate() {
            for d in decls(fr) {
                if let Some((fp, fpos)) = seen.get(d.name.as_str()) {
                    new.push((
                        i,
                        Diagnostic {
                            file: path.clone(),
                            pos: d.pos,
                            severity: Severity::Error,
                            message: format!(
                                "{what} `{}` is already declared at {}:{}; names must be unique across all rules files: rename one",
                                d.name,
                                fp.display(),
                                fpos
                            ),
                        },
                    ));
                } else {
                    seen.insert(&d.name, (path, d.pos));
                }
            }
        }
    }
    let probes: Vec<&str> = files
        .iter()
        .flat_map(|(_, f)| f.probe_decls.iter().map(|d| d.name.as_str()))
        .collect();
    for (i, (path, fr)) in files.iter().enumerate() {
        for r in &fr.probe_refs {
            if probes.contains(&r.name.as_str()) {
                continue;
            }
            let hint = match diag::did_you_mean(&r.name, &probes) {
                Some(p) => format!("did you mean `{p}`?"),
                None if probes.is_empty() => {
                    "declare it under `probes:` with `name`, `http`/`tcp`/`dns`".to_owned()
                }
                None => format!(
                    "declare it under `probes:` or use one of {}",
                    probes
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            new.push((
                i,
                Diagnostic {
                    file: path.clone(),
                    pos: r.pos,
                    severity: Severity::Error,
                    message: format!("unknown probe `{}`; {hint}", r.name),
                },
            ));
        }
    }
    for (i, d) in new {
        let fr = &mut files[i].1;
        fr.diagnostics.push(d);
        // The file now has errors: its services must not count as good.
        fr.summaries.clear();
    }
}
