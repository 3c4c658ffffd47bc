//! `stroem validate [PATH] [--strict] [-o text|json]`: lint a workspace like a compiler
//! (API §9.2, WF §18).
//!
//! PATH may be a workspace root, its `.workflows/` directory, or one file. Anything inside a
//! workspace validates the whole workspace (the nearest ancestor holding `.workflows/`), because
//! names resolve across files; a lone YAML file outside any workspace is validated on its own.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::workflow::diagnostic::{Diagnostic, Severity};
use crate::workflow::{Loaded, WorkflowFile, WorkspaceFiles, load};
use crate::workspace::folder::{ScanError, UnreadableFile, scan};
use crate::workspace::secrets;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workspace root, its `.workflows/` directory, or one file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Also fail (exit 1) on warnings.
    #[arg(long)]
    pub strict: bool,
    /// Output format, set from the global `-o` (API §9.1).
    #[arg(skip)]
    pub output: OutputFormat,
}

pub fn run(args: Args) -> ExitCode {
    let target = match Target::find(&args.path) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let (files, loaded) = match target.files() {
        Ok(files) => {
            let mut loaded = load(&files);
            warn_unresolved_secrets(&mut loaded, &super::environment());
            (files, loaded)
        }
        // Unreadable files are workspace errors (WF §1.4), shown like any other diagnostic.
        Err(error @ ScanError::Unreadable { .. }) => {
            let loaded = Loaded {
                diagnostics: error.diagnostics(),
                ..Loaded::default()
            };
            (WorkspaceFiles::default(), loaded)
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let report = Report::new(&loaded, args.strict);
    match args.output {
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => super::out::line(json),
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return ExitCode::from(2);
            }
        },
        OutputFormat::Text => {
            let style = Style::detect();
            super::out::print(format_args!(
                "{}",
                render_text(&report, &files, &target.display_root, style)
            ));
        }
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// WF §16.1, §18.2 rule 35: a secret whose variable or file is missing here is a warning
/// (`validate` may run far from the server), naming the secret and what is missing.
fn warn_unresolved_secrets(
    loaded: &mut Loaded,
    environment: &std::collections::BTreeMap<String, String>,
) {
    let dirs: Vec<PathBuf> = ["/run/secrets", "/var/run/secrets"]
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let Err(errors) = secrets::resolve(&loaded.def.secrets, environment, &dirs, &[]) else {
        return;
    };
    for error in errors
        .iter()
        .filter(|error| error.kind == secrets::SecretErrorKind::Missing)
    {
        let path = error
            .name
            .split('.')
            .fold("secrets".to_owned(), |path, key| {
                crate::workflow::source::join(&path, key)
            });
        let message = format!(
            "{error}; a server without it refuses the jobs that use this secret, and runs the rest"
        );
        let at = loaded.sources.key_or_value(&path);
        loaded.diagnostics.push(Diagnostic::warning(
            "secret-unresolved",
            message,
            &at,
            &path,
        ));
    }
    crate::workflow::diagnostic::sort(&mut loaded.diagnostics);
}

/// What PATH resolved to.
struct Target {
    /// The workspace root whose files are scanned.
    root: PathBuf,
    /// A lone file outside any workspace: only it is validated (relative to `root`).
    only: Option<String>,
    /// Prefix shown before relative file names (empty when the root is the current directory).
    display_root: PathBuf,
}

impl Target {
    fn find(path: &Path) -> Result<Target, String> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| format!("cannot read '{}': {error}", path.display()))?;
        let absolute = std::path::absolute(path)
            .map_err(|error| format!("cannot resolve '{}': {error}", path.display()))?;
        let start = if metadata.is_dir() {
            absolute.clone()
        } else {
            absolute.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let workspace = start.ancestors().find(|dir| {
            dir.join(".workflows").is_dir() || dir.file_name().is_some_and(|n| n == ".workflows")
        });
        let (root, only) = match workspace {
            Some(dir) if dir.file_name().is_some_and(|n| n == ".workflows") => (
                dir.parent().map(Path::to_path_buf).unwrap_or_default(),
                None,
            ),
            Some(dir) => (dir.to_path_buf(), None),
            // A directory without `.workflows/` is a workspace read from its root (WF §1.1).
            None if metadata.is_dir() => (absolute, None),
            None => {
                let name = absolute
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (start, Some(name))
            }
        };
        let display_root = relative_to_cwd(&root);
        Ok(Target {
            root,
            only,
            display_root,
        })
    }

    /// The files to validate: the whole workspace, or only the lone file (with the files
    /// beside it, so a `source` next to it still resolves).
    fn files(&self) -> Result<WorkspaceFiles, ScanError> {
        let Some(only) = &self.only else {
            return scan(&self.root);
        };
        let path = self.root.join(only);
        let text = std::fs::read(&path).map_err(|error| unreadable(only, &error.to_string()))?;
        let text =
            String::from_utf8(text).map_err(|_| unreadable(only, "the file is not valid UTF-8"))?;
        // Neighbours that cannot be read do not concern a file validated on its own.
        let mut all_files = scan(&self.root).map(|f| f.all_files).unwrap_or_default();
        all_files.insert(only.clone());
        Ok(WorkspaceFiles {
            workflow_files: vec![WorkflowFile {
                path: only.clone(),
                text,
            }],
            all_files,
        })
    }
}

fn unreadable(path: &str, reason: &str) -> ScanError {
    ScanError::Unreadable {
        files: vec![UnreadableFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        }],
    }
}

/// The root as the user would type it from the current directory; empty for the directory
/// itself, so file names print as the diagnostics carry them.
fn relative_to_cwd(root: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else {
        return root.to_path_buf();
    };
    match root.strip_prefix(&cwd) {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => root.to_path_buf(),
    }
}

/// The JSON document of `-o json`, and what the text output summarises.
#[derive(Debug, Serialize)]
struct Report<'a> {
    ok: bool,
    diagnostics: &'a [Diagnostic],
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
    actions: usize,
    tasks: usize,
    triggers: usize,
}

impl<'a> Report<'a> {
    fn new(loaded: &'a Loaded, strict: bool) -> Self {
        let count = |severity| {
            loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        let summary = Summary {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            actions: loaded.def.actions.len(),
            tasks: loaded.def.tasks.len(),
            triggers: loaded.def.triggers.len(),
        };
        Report {
            ok: summary.errors == 0 && !(strict && summary.warnings > 0),
            diagnostics: &loaded.diagnostics,
            summary,
        }
    }
}

/// ANSI colours, only on a terminal and never with `NO_COLOR` (https://no-color.org).
#[derive(Debug, Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn detect() -> Self {
        let disabled = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !disabled && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

const RED: &str = "1;31";
const YELLOW: &str = "1;33";
const BLUE: &str = "1;34";
const BOLD: &str = "1";
const GREEN: &str = "1;32";

/// Renders diagnostics like rustc: header, location, source line with a caret, notes.
fn render_text(report: &Report<'_>, files: &WorkspaceFiles, root: &Path, style: Style) -> String {
    let mut out = String::new();
    for diagnostic in report.diagnostics {
        render_one(&mut out, diagnostic, files, root, style);
        out.push('\n');
    }
    let s = &report.summary;
    if report.ok {
        let mut line = format!(
            "{} {}, {}, {}",
            style.paint(GREEN, "ok:"),
            plural(s.actions, "action"),
            plural(s.tasks, "task"),
            plural(s.triggers, "trigger")
        );
        if s.warnings > 0 {
            let _ = write!(line, "; {}", plural(s.warnings, "warning"));
        }
        let _ = writeln!(out, "{line}");
    } else {
        let _ = writeln!(
            out,
            "{}, {}",
            plural(s.errors, "error"),
            plural(s.warnings, "warning")
        );
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, files: &WorkspaceFiles, root: &Path, style: Style) {
    let (label, color) = match d.severity {
        Severity::Error => ("error", RED),
        Severity::Warning => ("warning", YELLOW),
    };
    let header = format!("{label}[{}]", d.code);
    let _ = writeln!(
        out,
        "{}{}",
        style.paint(color, &header),
        style.paint(BOLD, &format!(": {}", d.message))
    );
    let width = std::iter::once(d.line)
        .chain(d.related.iter().map(|r| r.line))
        .max()
        .unwrap_or(1)
        .to_string()
        .len();
    let pad = " ".repeat(width);
    let arrow = style.paint(BLUE, "-->");
    let _ = writeln!(
        out,
        "{pad}{arrow} {}:{}:{}",
        shown(root, &d.file),
        d.line,
        d.column
    );
    snippet(
        out, files, &d.file, d.line, d.column, "", width, color, style,
    );
    for related in &d.related {
        let _ = writeln!(
            out,
            "{pad}{} {}:{}:{}",
            style.paint(BLUE, ":::"),
            shown(root, &related.file),
            related.line,
            related.column
        );
        snippet(
            out,
            files,
            &related.file,
            related.line,
            related.column,
            &related.message,
            width,
            BLUE,
            style,
        );
    }
    let bar = style.paint(BLUE, "=");
    if !d.path.is_empty() {
        let _ = writeln!(out, "{pad} {bar} path: {}", d.path);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} {bar} help: {help}");
    }
}

/// The source line with a caret under `column` and an optional label after it.
#[allow(clippy::too_many_arguments)]
fn snippet(
    out: &mut String,
    files: &WorkspaceFiles,
    file: &str,
    line: u32,
    column: u32,
    label: &str,
    width: usize,
    color: &str,
    style: Style,
) {
    let text = files
        .workflow_files
        .iter()
        .find(|f| f.path == file)
        .and_then(|f| f.text.lines().nth(line.saturating_sub(1) as usize));
    let Some(text) = text else {
        return;
    };
    let pad = " ".repeat(width);
    let bar = style.paint(BLUE, "|");
    let number = style.paint(BLUE, &format!("{line:>width$}"));
    // Keep tabs so the caret lines up with what the terminal shows.
    let indent: String = text
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let caret = if label.is_empty() {
        style.paint(color, "^")
    } else {
        style.paint(color, &format!("^ {label}"))
    };
    let _ = writeln!(out, "{pad} {bar}");
    let _ = writeln!(out, "{number} {bar} {}", text.trim_end());
    let _ = writeln!(out, "{pad} {bar} {indent}{caret}");
}

fn shown(root: &Path, file: &str) -> String {
    if root.as_os_str().is_empty() {
        file.to_owned()
    } else {
        root.join(file).display().to_string()
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::WorkflowFile;
    use crate::workflow::diagnostic::Location;

    #[test]
    fn renders_a_caret_under_the_column() {
        let files = WorkspaceFiles {
            workflow_files: vec![WorkflowFile {
                path: "a.yaml".to_owned(),
                text: "tasks:\n  t:\n    flow: []\n".to_owned(),
            }],
            all_files: Default::default(),
        };
        let at = Location {
            file: "a.yaml".to_owned(),
            line: 3,
            column: 11,
        };
        let diagnostic =
            Diagnostic::error("invalid-flow", "flow must be a map", &at, "tasks.t.flow")
                .with_help("write steps as `name: {…}`");
        let mut out = String::new();
        render_one(
            &mut out,
            &diagnostic,
            &files,
            Path::new(""),
            Style { color: false },
        );
        assert_eq!(
            out,
            "error[invalid-flow]: flow must be a map\n --> a.yaml:3:11\n  |\n3 |     flow: []\n  |           ^\n  = path: tasks.t.flow\n  = help: write steps as `name: {…}`\n"
        );
    }

    #[test]
    fn colours_severity_and_gutter_only_when_asked() {
        let at = Location {
            file: "a.yaml".to_owned(),
            line: 1,
            column: 1,
        };
        let diagnostic = Diagnostic::warning("short-secret", "too short", &at, "secrets.PIN");
        let files = WorkspaceFiles::default();
        let mut plain = String::new();
        render_one(
            &mut plain,
            &diagnostic,
            &files,
            Path::new(""),
            Style { color: false },
        );
        assert!(!plain.contains('\x1b'), "{plain}");
        let mut coloured = String::new();
        render_one(
            &mut coloured,
            &diagnostic,
            &files,
            Path::new(""),
            Style { color: true },
        );
        assert!(
            coloured.starts_with("\x1b[1;33mwarning[short-secret]\x1b[0m"),
            "{coloured}"
        );
        assert!(coloured.contains("\x1b[1;34m-->\x1b[0m"), "{coloured}");
    }

    #[test]
    fn pluralises_counts() {
        assert_eq!(plural(1, "task"), "1 task");
        assert_eq!(plural(0, "trigger"), "0 triggers");
    }
}
