//! A tiny metrics registry: labelled counters and histograms kept in memory, and the
//! Prometheus text exposition format (version 0.0.4) they are written in.
//!
//! *Why not a crate*: Strøm needs three metric kinds, fixed label names and one output format;
//! this is less code than adapting a general registry (whose text output is OpenMetrics, with
//! its own `# EOF` and counter naming rules). Each family is a mutex over a map from label
//! values to its value: an observation is an uncontended lock and one small allocation (the key).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// Seconds-scale buckets for request and claim latencies (5 ms … 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for step and job durations (10 ms … 1 h).
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// A counter family: `name{labels…} value`, only ever increased.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<String, u64>>,
}

impl CounterVec {
    /// A family with these label names; one without labels shows `0` before its first count.
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        let mut values = BTreeMap::new();
        if labels.is_empty() {
            values.insert(String::new(), 0);
        }
        CounterVec {
            name,
            help,
            labels,
            values: Mutex::new(values),
        }
    }

    /// Adds `by` to the series of `values` (one per label name, in order).
    pub fn add(&self, values: &[&str], by: u64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let mut map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(key(values)).or_insert(0);
        *count = count.saturating_add(by);
    }

    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// The current value of one series (tests).
    pub fn get(&self, values: &[&str]) -> u64 {
        let map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&key(values)).copied().unwrap_or(0)
    }

    pub fn encode(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, count) in map.iter() {
            let values = split(key, self.labels.len());
            sample(
                out,
                self.name,
                "",
                self.labels,
                &values,
                None,
                *count as f64,
            );
        }
    }
}

#[derive(Debug, Clone)]
struct Histogram {
    /// Per bucket, not cumulative; the last is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram family: `_bucket{le=…}` (cumulative), `_sum` and `_count` per label set.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    values: Mutex<BTreeMap<String, Histogram>>,
}

impl HistogramVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        HistogramVec {
            name,
            help,
            labels,
            buckets,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one observation of `value` (seconds); negative values count as 0.
    pub fn observe(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        let bucket = self
            .buckets
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.buckets.len());
        let mut map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = map.entry(key(values)).or_insert_with(|| Histogram {
            counts: vec![0; self.buckets.len() + 1],
            sum: 0.0,
            count: 0,
        });
        histogram.counts[bucket] += 1;
        histogram.sum += value;
        histogram.count += 1;
    }

    /// Observations of one series so far (tests).
    pub fn count(&self, values: &[&str]) -> u64 {
        let map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&key(values)).map_or(0, |histogram| histogram.count)
    }

    pub fn encode(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, histogram) in map.iter() {
            let values = split(key, self.labels.len());
            let values = &values;
            let mut cumulative = 0;
            for (index, count) in histogram.counts.iter().enumerate() {
                cumulative += count;
                let le = self
                    .buckets
                    .get(index)
                    .map_or_else(|| "+Inf".to_owned(), |bound| float(*bound));
                sample(
                    out,
                    self.name,
                    "_bucket",
                    self.labels,
                    values,
                    Some(&le),
                    cumulative as f64,
                );
            }
            sample(
                out,
                self.name,
                "_sum",
                self.labels,
                values,
                None,
                histogram.sum,
            );
            sample(
                out,
                self.name,
                "_count",
                self.labels,
                values,
                None,
                histogram.count as f64,
            );
        }
    }
}

/// Gauges computed at scrape time: a family and its samples, written once.
#[derive(Debug)]
pub struct GaugeFamily<'a> {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    pub samples: Vec<(Vec<&'a str>, f64)>,
}

impl GaugeFamily<'_> {
    pub fn encode(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        for (values, value) in &self.samples {
            let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
            sample(out, self.name, "", self.labels, &values, None, *value);
        }
    }
}

/// Label values joined into one map key: one allocation per observation, no more.
const SEPARATOR: char = '\u{1f}';

fn key(values: &[&str]) -> String {
    let mut key = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            key.push(SEPARATOR);
        }
        // The separator cannot occur in a value, or two label sets could share a key.
        key.extend(value.chars().map(|c| if c == SEPARATOR { '?' } else { c }));
    }
    key
}

fn split(key: &str, labels: usize) -> Vec<String> {
    if labels == 0 {
        return Vec::new();
    }
    key.split(SEPARATOR).map(str::to_owned).collect()
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[&str],
    values: &[String],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .chain(le.map(|le| ("le", le)))
        .collect();
    if !pairs.is_empty() {
        out.push('{');
        for (index, (label, value)) in pairs.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", float(value));
}

/// A label value as the text format quotes it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` as the format spells them.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == 0.0 {
        // Also -0 (an empty `f64` sum), which would print as `-0`.
        "0".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_encode_in_the_text_format() {
        let counter = CounterVec::new("t_total", "A counter.", &["a"]);
        counter.inc(&["x\"y\\z\nw"]);
        counter.add(&["b"], 2);
        let plain = CounterVec::new("plain_total", "No labels.", &[]);
        let histogram = HistogramVec::new("t_seconds", "A histogram.", &["r"], &[0.1, 1.0]);
        histogram.observe(&["/a"], 0.05);
        histogram.observe(&["/a"], 0.5);
        histogram.observe(&["/a"], 7.0);
        let mut out = String::new();
        counter.encode(&mut out);
        plain.encode(&mut out);
        histogram.encode(&mut out);
        GaugeFamily {
            name: "g",
            help: "A gauge.",
            labels: &["s"],
            samples: vec![(vec!["ok"], 1.5)],
        }
        .encode(&mut out);
        assert_eq!(
            out,
            "# HELP t_total A counter.\n# TYPE t_total counter\n\
             t_total{a=\"b\"} 2\nt_total{a=\"x\\\"y\\\\z\\nw\"} 1\n\
             # HELP plain_total No labels.\n# TYPE plain_total counter\nplain_total 0\n\
             # HELP t_seconds A histogram.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{r=\"/a\",le=\"0.1\"} 1\nt_seconds_bucket{r=\"/a\",le=\"1\"} 2\n\
             t_seconds_bucket{r=\"/a\",le=\"+Inf\"} 3\nt_seconds_sum{r=\"/a\"} 7.55\n\
             t_seconds_count{r=\"/a\"} 3\n\
             # HELP g A gauge.\n# TYPE g gauge\ng{s=\"ok\"} 1.5\n"
        );
        assert_eq!(counter.get(&["b"]), 2);
        assert_eq!(histogram.count(&["/a"]), 3);
    }
}
