//! The `burnwatch` command line.
//!
//! `burnwatch check [--strict] PATHS...` validates rules files and reports every problem at once.
//! Exit codes: 0 when the rules are good (warnings allowed unless `--strict`), 1 when there are
//! errors (or warnings with `--strict`), 2 for usage errors such as a missing path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use burnwatch::rules::{self, CheckReport};

/// Observability agent and SLO evaluator: probes, scrapes, exact error budgets and multiwindow
/// burn-rate alerts.
#[derive(Debug, Parser)]
#[command(name = "burnwatch", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate rules files and directories; print one line per good file and every problem.
    Check {
        /// Treat warnings as errors (exit 1 when there are any).
        #[arg(long)]
        strict: bool,
        /// Rules files, or directories searched recursively for *.yaml and *.yml.
        #[arg(required = true, value_name = "PATHS")]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { strict, paths } => match check(&paths, strict) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("burnwatch: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Runs `check`; an `Err` is a usage error (exit 2).
fn check(paths: &[PathBuf], strict: bool) -> anyhow::Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            anyhow::bail!(
                "{}: no such file or directory; give a rules file or a directory of them",
                p.display()
            );
        }
    }
    let report = rules::check_paths(paths);
    print_report(&report);
    let errors = report.errors();
    let warnings = report.warnings();
    let failed = errors > 0 || (strict && warnings > 0);
    if failed {
        let strict_note = if strict && warnings > 0 {
            " (--strict: warnings fail)"
        } else {
            ""
        };
        eprintln!(
            "burnwatch: {errors} error(s), {warnings} warning(s) in {} file(s){strict_note}",
            report.files.len()
        );
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// Good files on stdout (`FILE: OK: ...`), then each file's diagnostics; errors and warnings go
/// to stdout as well so one stream holds the whole report in order.
fn print_report(report: &CheckReport) {
    // Problems with paths themselves (not tied to a file that was read).
    for d in report
        .diagnostics
        .iter()
        .filter(|d| !report.files.iter().any(|f| f.path == d.file))
    {
        println!("{d}");
    }
    for f in &report.files {
        if f.errors == 0 {
            let parts: Vec<String> = f
                .services
                .iter()
                .map(|s| {
                    format!(
                        "service {}, {} SLO{}, {} probe{}, {} scrape target{}",
                        s.service,
                        s.slos,
                        plural(s.slos),
                        s.probes,
                        plural(s.probes),
                        s.scrapes,
                        plural(s.scrapes)
                    )
                })
                .collect();
            println!("{}: OK: {}", f.path.display(), parts.join("; "));
        }
        for d in report.diagnostics_for(&f.path) {
            println!("{d}");
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
