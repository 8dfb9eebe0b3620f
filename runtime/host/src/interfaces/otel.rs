//! `wasi:otel@0.2.0-rc.2` (`tracing`, `logs`, `metrics`), which Spin 4's
//! platform world includes, linked so that components importing it load.
//! Flint exports no telemetry: what a guest reports is accepted and
//! dropped, and the outer span is OpenTelemetry's invalid (all-zero) one,
//! what a host without tracing has.

use wasmi::Error;

use super::wasi_clocks::DATETIME;
use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

/// `key-value`: `key` and `value`, both strings.
const KEY_VALUE: Ty = Ty::Tuple(&[Ty::String, Ty::String]);
const ATTRIBUTES: Ty = Ty::List(&KEY_VALUE);
/// `resource`: `attributes`, `schema-url`.
const RESOURCE: Ty = Ty::Tuple(&[ATTRIBUTES, option_ty!(Ty::String)]);
/// `instrumentation-scope`: `name`, `version`, `schema-url`, `attributes`.
const SCOPE: Ty = Ty::Tuple(&[
    Ty::String,
    option_ty!(Ty::String),
    option_ty!(Ty::String),
    ATTRIBUTES,
]);

/// `trace-flags`: `sampled`.
const TRACE_FLAGS: Ty = Ty::Flags(1);
/// `span-context`: `trace-id`, `span-id`, `trace-flags`, `is-remote`, `trace-state`.
const SPAN_CONTEXT: Ty = Ty::Tuple(&[
    Ty::String,
    Ty::String,
    TRACE_FLAGS,
    Ty::Bool,
    Ty::List(&Ty::Tuple(&[Ty::String, Ty::String])),
]);
/// `event`: `name`, `time`, `attributes`.
const EVENT: Ty = Ty::Tuple(&[Ty::String, DATETIME, ATTRIBUTES]);
/// `link`: `span-context`, `attributes`.
const LINK: Ty = Ty::Tuple(&[SPAN_CONTEXT, ATTRIBUTES]);
/// `status`: `unset`, `ok`, `error(string)`.
const STATUS: Ty = Ty::Variant(&[None, None, Some(Ty::String)]);
/// `span-data`, field by field.
const SPAN_DATA: Ty = Ty::Tuple(&[
    SPAN_CONTEXT,
    Ty::String,              // parent-span-id
    Ty::Variant(&[None; 5]), // span-kind
    Ty::String,              // name
    DATETIME,                // start-time
    DATETIME,                // end-time
    ATTRIBUTES,              //
    Ty::List(&EVENT),        // events
    Ty::List(&LINK),         // links
    STATUS,                  //
    SCOPE,                   // instrumentation-scope
    Ty::U32,                 // dropped-attributes
    Ty::U32,                 // dropped-events
    Ty::U32,                 // dropped-links
]);

/// `log-record`, field by field.
const LOG_RECORD: Ty = Ty::Tuple(&[
    option_ty!(DATETIME),    // timestamp
    option_ty!(DATETIME),    // observed-timestamp
    option_ty!(Ty::String),  // severity-text
    option_ty!(Ty::U8),      // severity-number
    option_ty!(Ty::String),  // body
    option_ty!(ATTRIBUTES),  // attributes
    option_ty!(Ty::String),  // event-name
    option_ty!(RESOURCE),    // resource
    option_ty!(SCOPE),       // instrumentation-scope
    option_ty!(Ty::String),  // trace-id
    option_ty!(Ty::String),  // span-id
    option_ty!(TRACE_FLAGS), // trace-flags
]);

/// `metric-number`: `f64`, `s64`, `u64`.
const NUMBER: Ty = Ty::Variant(&[Some(Ty::F64), Some(Ty::S64), Some(Ty::U64)]);
/// `temporality`: `cumulative`, `delta`, `low-memory`.
const TEMPORALITY: Ty = Ty::Variant(&[None; 3]);
/// `exemplar`: `filtered-attributes`, `time`, `value`, `span-id`, `trace-id`.
const EXEMPLAR: Ty = Ty::Tuple(&[ATTRIBUTES, DATETIME, NUMBER, Ty::String, Ty::String]);
const EXEMPLARS: Ty = Ty::List(&EXEMPLAR);
/// `gauge-data-point` and `sum-data-point`: `attributes`, `value`, `exemplars`.
const DATA_POINT: Ty = Ty::Tuple(&[ATTRIBUTES, NUMBER, EXEMPLARS]);
/// `gauge`: `data-points`, `start-time`, `time`.
const GAUGE: Ty = Ty::Tuple(&[Ty::List(&DATA_POINT), option_ty!(DATETIME), DATETIME]);
/// `sum`: `data-points`, `start-time`, `time`, `temporality`, `is-monotonic`.
const SUM: Ty = Ty::Tuple(&[
    Ty::List(&DATA_POINT),
    DATETIME,
    DATETIME,
    TEMPORALITY,
    Ty::Bool,
]);
/// `histogram-data-point`: `attributes`, `count`, `bounds`, `bucket-counts`,
/// `min`, `max`, `sum`, `exemplars`.
const HISTOGRAM_POINT: Ty = Ty::Tuple(&[
    ATTRIBUTES,
    Ty::U64,
    Ty::List(&Ty::F64),
    Ty::List(&Ty::U64),
    option_ty!(NUMBER),
    option_ty!(NUMBER),
    NUMBER,
    EXEMPLARS,
]);
/// `histogram`: `data-points`, `start-time`, `time`, `temporality`.
const HISTOGRAM: Ty = Ty::Tuple(&[Ty::List(&HISTOGRAM_POINT), DATETIME, DATETIME, TEMPORALITY]);
/// `exponential-bucket`: `offset`, `counts`.
const BUCKET: Ty = Ty::Tuple(&[Ty::S32, Ty::List(&Ty::U64)]);
/// `exponential-histogram-data-point`: `attributes`, `count`, `min`, `max`,
/// `sum`, `scale`, `zero-count`, `positive-bucket`, `negative-bucket`,
/// `zero-threshold`, `exemplars`.
const EXP_HISTOGRAM_POINT: Ty = Ty::Tuple(&[
    ATTRIBUTES,
    Ty::U64,
    option_ty!(NUMBER),
    option_ty!(NUMBER),
    NUMBER,
    Ty::S8,
    Ty::U64,
    BUCKET,
    BUCKET,
    Ty::F64,
    EXEMPLARS,
]);
const EXP_HISTOGRAM: Ty = Ty::Tuple(&[
    Ty::List(&EXP_HISTOGRAM_POINT),
    DATETIME,
    DATETIME,
    TEMPORALITY,
]);
/// `metric-data`: gauge, sum, histogram and exponential histogram, for
/// `f64`, `u64` and `s64` in turn.
const METRIC_DATA: Ty = Ty::Variant(&[
    Some(GAUGE),
    Some(SUM),
    Some(HISTOGRAM),
    Some(EXP_HISTOGRAM),
    Some(GAUGE),
    Some(SUM),
    Some(HISTOGRAM),
    Some(EXP_HISTOGRAM),
    Some(GAUGE),
    Some(SUM),
    Some(HISTOGRAM),
    Some(EXP_HISTOGRAM),
]);
/// `metric`: `name`, `description`, `unit`, `data`.
const METRIC: Ty = Ty::Tuple(&[Ty::String, Ty::String, Ty::String, METRIC_DATA]);
/// `scope-metrics`: `scope`, `metrics`.
const SCOPE_METRICS: Ty = Ty::Tuple(&[SCOPE, Ty::List(&METRIC)]);
/// `resource-metrics`: `resource`, `scope-metrics`.
const RESOURCE_METRICS: Ty = Ty::Tuple(&[RESOURCE, Ty::List(&SCOPE_METRICS)]);

/// What the guest reports goes nowhere: Flint exports no telemetry.
fn dropped(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::unit())
}

fn exported(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::ok_unit())
}

/// OpenTelemetry's invalid span context: no trace is in progress.
fn outer_span_context(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Tuple(vec![
        Value::string("0".repeat(32)),
        Value::string("0".repeat(16)),
        Value::Flags(0),
        Value::Bool(false),
        Value::List(Vec::new()),
    ]))
}

pub const TRACING: &[HostFn<GuestState>] = &[
    host_fn!("on-start", [SPAN_CONTEXT], dropped),
    host_fn!("on-end", [SPAN_DATA], dropped),
    host_fn!("outer-span-context", [] -> SPAN_CONTEXT, outer_span_context),
];

pub const LOGS: &[HostFn<GuestState>] = &[host_fn!("on-emit", [LOG_RECORD], dropped)];

pub const METRICS: &[HostFn<GuestState>] = &[host_fn!(
    "export",
    [RESOURCE_METRICS] -> result_ty!(_, Ty::String),
    exported
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_wit() {
        // span-context: two strings, a flags byte and a bool, a list.
        assert_eq!(SPAN_CONTEXT.size(), 28);
        // metric-number: a discriminant, then an 8-aligned payload.
        assert_eq!(NUMBER.size(), 16);
        assert_eq!(NUMBER.align(), 8);
        // exemplar: attributes (8), datetime at 8 (16), number at 24 (16),
        // two strings at 40.
        assert_eq!(EXEMPLAR.size(), 56);
        // log-record's trace-flags: an option of one flags byte.
        assert_eq!(option_ty!(TRACE_FLAGS).size(), 2);
    }
}
