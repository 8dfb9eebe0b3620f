//! Metric primitives and the Prometheus text exposition (0.0.4, or
//! OpenMetrics 1.0 when the scraper asks for it). Counters and histograms
//! are plain atomics, updated with relaxed ordering: no locks and no
//! allocation on the request path. Every label set is fixed when the app
//! loads (components, routes, stores, allow-list patterns), so cardinality
//! is bounded by the manifest, never by requests.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bucket bounds for durations, in seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for fuel (about one unit per guest instruction).
pub const FUEL_BUCKETS: &[f64] = &[1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// A histogram with fixed upper bounds; `sum` is kept in the observations'
/// own unit scaled by `scale` (nanoseconds for seconds, 1 for fuel), so it
/// stays an integer atomic.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// Seconds, observed as [`std::time::Duration`]s.
    pub fn seconds() -> Self {
        Self::new(SECONDS_BUCKETS, 1e9)
    }

    /// Fuel units.
    pub fn fuel() -> Self {
        Self::new(FUEL_BUCKETS, 1.0)
    }

    fn new(bounds: &'static [f64], scale: f64) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    pub fn observe_duration(&self, duration: std::time::Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.observe_scaled(nanos);
    }

    pub fn observe(&self, value: u64) {
        self.observe_scaled(value);
    }

    /// `scaled` is the value times `scale`.
    fn observe_scaled(&self, scaled: u64) {
        let value = scaled as f64 / self.scale;
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(scaled, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Adds `other`'s observations (same bounds), to report several
    /// histograms as one.
    pub fn add(&self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter().zip(other.buckets.iter()) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.sum
            .fetch_add(other.sum.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Which text format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header asks for it, else Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Writes metric families: one `family` call, then its samples. Counter
/// families are named without `_total`; the writer adds it to samples.
pub struct MetricsWriter {
    format: Format,
    out: String,
    kind: Kind,
    name: &'static str,
}

/// Label pairs of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl MetricsWriter {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            out: String::with_capacity(16 * 1024),
            kind: Kind::Gauge,
            name: "",
        }
    }

    fn family(&mut self, name: &'static str, kind: Kind, help: &str) {
        self.kind = kind;
        self.name = name;
        let (type_name, kind) = match kind {
            Kind::Counter => (
                match self.format {
                    Format::Prometheus => format!("{name}_total"),
                    Format::OpenMetrics => name.to_owned(),
                },
                "counter",
            ),
            Kind::Gauge => (name.to_owned(), "gauge"),
            Kind::Histogram => (name.to_owned(), "histogram"),
        };
        let _ = writeln!(self.out, "# HELP {type_name} {help}");
        let _ = writeln!(self.out, "# TYPE {type_name} {kind}");
    }

    /// Starts a counter family `name` (samples are `name_total`).
    pub fn counter(&mut self, name: &'static str, help: &str) {
        self.family(name, Kind::Counter, help);
    }

    pub fn gauge(&mut self, name: &'static str, help: &str) {
        self.family(name, Kind::Gauge, help);
    }

    pub fn histogram(&mut self, name: &'static str, help: &str) {
        self.family(name, Kind::Histogram, help);
    }

    fn sample(
        &mut self,
        suffix: &str,
        labels: Labels<'_>,
        extra: Option<(&str, &str)>,
        value: &str,
    ) {
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        let mut pairs = labels.iter().copied().chain(extra).peekable();
        if pairs.peek().is_some() {
            self.out.push('{');
            let mut first = true;
            for (key, val) in pairs {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(key);
                self.out.push_str("=\"");
                escape_label(&mut self.out, val);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// A counter or gauge sample of the current family.
    pub fn value(&mut self, labels: Labels<'_>, value: u64) {
        let suffix = if self.kind == Kind::Counter {
            "_total"
        } else {
            ""
        };
        self.sample(suffix, labels, None, &value.to_string());
    }

    /// A gauge sample that is not an integer (seconds, ages).
    pub fn value_f64(&mut self, labels: Labels<'_>, value: f64) {
        self.sample("", labels, None, &format_f64(value));
    }

    /// All samples of one histogram of the current family.
    pub fn histogram_value(&mut self, labels: Labels<'_>, histogram: &Histogram) {
        let mut cumulative = 0;
        for (i, bucket) in histogram.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match histogram.bounds.get(i) {
                Some(bound) => format_f64(*bound),
                None => "+Inf".to_owned(),
            };
            self.sample(
                "_bucket",
                labels,
                Some(("le", &le)),
                &cumulative.to_string(),
            );
        }
        let sum = histogram.sum.load(Ordering::Relaxed) as f64 / histogram.scale;
        self.sample("_sum", labels, None, &format_f64(sum));
        self.sample("_count", labels, None, &cumulative.to_string());
    }

    /// The finished exposition.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// Label values escape `\`, `"` and newlines (both formats).
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Floats as both formats read them: integers keep a `.0` only where needed.
fn format_f64(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let h = Histogram::seconds();
        h.observe_duration(std::time::Duration::from_micros(300));
        h.observe_duration(std::time::Duration::from_millis(3));
        h.observe_duration(std::time::Duration::from_secs(60));
        let mut w = MetricsWriter::new(Format::Prometheus);
        w.histogram("flint_x_seconds", "x");
        w.histogram_value(&[("component", "a\"b")], &h);
        let text = w.finish();
        assert!(
            text.contains("flint_x_seconds_bucket{component=\"a\\\"b\",le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("flint_x_seconds_bucket{component=\"a\\\"b\",le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("flint_x_seconds_bucket{component=\"a\\\"b\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("flint_x_seconds_count{component=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("flint_x_seconds_sum{component=\"a\\\"b\"} 60.0033\n"),
            "{text}"
        );
    }

    #[test]
    fn counters_are_named_for_each_format() {
        let c = Counter::default();
        c.add(3);
        for (format, type_line, end) in [
            (
                Format::Prometheus,
                "# TYPE flint_requests_total counter",
                "",
            ),
            (
                Format::OpenMetrics,
                "# TYPE flint_requests counter",
                "# EOF\n",
            ),
        ] {
            let mut w = MetricsWriter::new(format);
            w.counter("flint_requests", "requests");
            w.value(&[], c.get());
            let text = w.finish();
            assert!(text.contains(type_line), "{text}");
            assert!(text.contains("flint_requests_total 3\n"), "{text}");
            assert!(
                text.ends_with(&format!("flint_requests_total 3\n{end}")),
                "{text}"
            );
        }
    }
}
