//! Logging to stderr: human-readable lines, or (`--log-format json`) one JSON
//! object per line with the same fields, for log shippers. Written by hand
//! over `tracing`'s visitor rather than pulling in a JSON library.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;
use crate::status::quote;

pub fn init(format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .with(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.with_ansi(false).event_format(JsonLines))
            .with(filter)
            .init(),
    }
}

/// `{"timestamp":…,"level":…,"target":…,"message":…,<fields>…}`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = format!(
            "{{\"timestamp\":{},\"level\":{},\"target\":{}",
            quote(&rfc3339_now()),
            quote(meta.level().as_str()),
            quote(meta.target())
        );
        event.record(&mut JsonFields(&mut line));
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// Appends each field as `,"name":value`; numbers and booleans stay JSON
/// numbers and booleans.
struct JsonFields<'a>(&'a mut String);

impl JsonFields<'_> {
    fn raw(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, ",{}:{value}", quote(field.name()));
    }
}

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.raw(field, &quote(&format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.raw(field, &quote(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, &value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, &value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, &value.to_string());
    }
}

/// UTC now as `2026-12-01T09:30:00.123Z`, computed from the Unix time
/// (days to civil date: Howard Hinnant's algorithm).
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

fn rfc3339(secs: i64, millis: u32) -> String {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = flint_config::date::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_796_117_400, 123), "2026-12-01T09:30:00.123Z");
    }
}
