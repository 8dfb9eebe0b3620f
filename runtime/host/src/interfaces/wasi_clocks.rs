//! `wasi:clocks@0.2.x`: the instance's monotonic clock (nanoseconds since
//! the instance was created, with pollables that `wasi:io/poll` waits on
//! within the invocation's deadline), the wall clock, and the unstable
//! `timezone` (always UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use wasmi::Error;

use super::io::Pollable;
use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};

/// `wall-clock.datetime`: seconds and nanoseconds since the Unix epoch.
pub(crate) const DATETIME: Ty = Ty::Tuple(&[Ty::U64, Ty::U32]);

pub(crate) fn datetime(seconds: u64, nanoseconds: u32) -> Value {
    Value::Tuple(vec![Value::U64(seconds), Value::U32(nanoseconds)])
}

pub(super) fn monotonic_now(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::U64(state.host.wasi_state.monotonic_now()))
}

pub(super) fn monotonic_resolution(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::U64(1))
}

fn subscribe_instant(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let when = args.u64()?;
    Ok(Value::Handle(
        state.host.resources.push(Pollable::Clock(when))?,
    ))
}

fn subscribe_duration(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let duration = args.u64()?;
    let when = state
        .host
        .wasi_state
        .monotonic_now()
        .saturating_add(duration);
    Ok(Value::Handle(
        state.host.resources.push(Pollable::Clock(when))?,
    ))
}

pub const MONOTONIC_CLOCK: &[HostFn<GuestState>] = &[
    host_fn!("now", [] -> Ty::U64, monotonic_now),
    host_fn!("resolution", [] -> Ty::U64, monotonic_resolution),
    host_fn!("subscribe-instant", [Ty::U64] -> Ty::Handle, subscribe_instant),
    host_fn!("subscribe-duration", [Ty::U64] -> Ty::Handle, subscribe_duration),
];

fn wall_now(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    // A board without a real-time clock may be before 1970 until NTP: 0.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(datetime(since.as_secs(), since.subsec_nanos()))
}

fn wall_resolution(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(datetime(0, 1))
}

pub const WALL_CLOCK: &[HostFn<GuestState>] = &[
    host_fn!("now", [] -> DATETIME, wall_now),
    host_fn!("resolution", [] -> DATETIME, wall_resolution),
];

/// `timezone-display`: `utc-offset`, `name`, `in-daylight-saving-time`.
const TIMEZONE_DISPLAY: Ty = Ty::Tuple(&[Ty::S32, Ty::String, Ty::Bool]);

fn timezone_display(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.value()?;
    Ok(Value::Tuple(vec![
        Value::S32(0),
        Value::string("UTC"),
        Value::Bool(false),
    ]))
}

fn utc_offset(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.value()?;
    Ok(Value::S32(0))
}

/// Unstable (`clocks-timezone`): Flint's guests live in UTC.
pub const TIMEZONE: &[HostFn<GuestState>] = &[
    host_fn!("display", [DATETIME] -> TIMEZONE_DISPLAY, timezone_display),
    host_fn!("utc-offset", [DATETIME] -> Ty::S32, utc_offset),
];
