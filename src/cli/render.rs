//! Text output of the client verbs: aligned tables, short durations, times, and status colours.
//!
//! Colours are used only when stdout is a terminal and `NO_COLOR` is unset (the same rule as
//! `stroem run`); widths are measured on the plain text, so coloured cells still align.

use std::io::IsTerminal;

use chrono::{DateTime, SecondsFormat, Utc};

const RESET: &str = "\x1b[0m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";

/// Whether text is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// Colours on a terminal stdout unless `NO_COLOR` is set (non-empty).
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_color,
        }
    }

    pub fn plain() -> Style {
        Style { colour: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint(BOLD, text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint(DIM, text)
    }

    /// A log line of the `stderr` stream.
    pub fn stderr_line(self, text: &str) -> String {
        self.paint(RED, text)
    }

    /// A job or step status in its colour: green done, red failed, yellow cancelled, blue
    /// running, dim waiting or skipped.
    pub fn status(self, status: &str) -> String {
        let code = match status {
            "completed" | "ok" => GREEN,
            "failed" | "error" => RED,
            "cancelled" | "stale" => YELLOW,
            "running" | "suspended" => BLUE,
            _ => DIM,
        };
        self.paint(code, status)
    }
}

/// A table printed with its columns aligned; cells are `(plain, shown)` so colour codes do not
/// count towards widths.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<(String, String)>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// A row of uncoloured cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|cell| (cell.clone(), cell)).collect());
    }

    /// A row whose cells are `(plain, shown)`.
    pub fn styled_row(&mut self, cells: Vec<(String, String)>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, style: Style) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (index, (plain, _)) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(plain.chars().count());
                }
            }
        }
        let mut text = String::new();
        let header: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|h| (h.to_string(), style.bold(h)))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, (plain, shown)) in row.iter().enumerate() {
                line.push_str(shown);
                if index + 1 < row.len() {
                    let width = widths.get(index).copied().unwrap_or(0);
                    let pad = width.saturating_sub(plain.chars().count()) + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `1.2s`, `45s`, `3m 05s`, `2h 10m`; `-` without a start.
pub fn duration(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let Some(start) = start else {
        return "-".to_owned();
    };
    let millis = (end.unwrap_or(now) - start).num_milliseconds().max(0);
    format_millis(millis)
}

pub fn format_millis(millis: i64) -> String {
    let seconds = millis / 1000;
    if seconds < 10 {
        format!("{}.{}s", seconds, (millis % 1000) / 100)
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// A time as in the API, to the second: `2026-03-01T12:00:00Z`; `-` when absent.
pub fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_plain_widths() {
        let mut table = Table::new(&["NAME", "STATUS"]);
        table.row(vec!["a".into(), "ok".into()]);
        table.styled_row(vec![
            ("longer-name".into(), "longer-name".into()),
            ("failed".into(), "\x1b[31mfailed\x1b[0m".into()),
        ]);
        let shown = table.render(Style::plain()).replace('\x1b', "<ESC>");
        insta::assert_snapshot!(shown, @r"
        NAME         STATUS
        a            ok
        longer-name  <ESC>[31mfailed<ESC>[0m
        ");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(format_millis(1234), "1.2s");
        assert_eq!(format_millis(45_000), "45s");
        assert_eq!(format_millis(185_000), "3m 05s");
        assert_eq!(format_millis(7_800_000), "2h 10m");
        assert_eq!(duration(None, None, Utc::now()), "-");
    }

    #[test]
    fn colours_only_when_enabled() {
        assert_eq!(Style::plain().status("failed"), "failed");
        let colour = Style { colour: true };
        assert_eq!(colour.status("failed"), "\x1b[31mfailed\x1b[0m");
        assert_eq!(colour.status("completed"), "\x1b[32mcompleted\x1b[0m");
    }
}
