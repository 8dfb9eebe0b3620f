//! `poll_oneoff`: clock subscriptions wait on the instance's monotonic
//! clock, never past the invocation's deadline (the wait `wasi:io/poll`
//! does); descriptor subscriptions are ready at once, since no stream of
//! Flint's ever makes a guest wait.

use super::{Cx, Fd, Res, Ret, Stdio, call, clockid, errno, fail, fds};
use crate::interfaces::io::wait_for_clock;

/// `subscription`: 48 bytes, 8-aligned. `userdata` at 0, the tag at 8, the
/// payload at 16: a clock's `id` u32 at 16, `timeout` at 24, `precision` at
/// 32, `flags` u16 at 40; a descriptor's `fd` u32 at 16.
const SUBSCRIPTION_SIZE: u32 = 48;
/// `event`: 32 bytes, 8-aligned. `userdata` at 0, `error` u16 at 8,
/// `type` u8 at 10, `fd_readwrite.nbytes` at 16 and `.flags` u16 at 24.
const EVENT_SIZE: u32 = 32;
/// `eventtype`.
const EVENT_CLOCK: u8 = 0;
const EVENT_FD_READ: u8 = 1;
const EVENT_FD_WRITE: u8 = 2;
/// `subclockflags.subscription_clock_abstime`.
const ABSTIME: u16 = 1;

enum Kind {
    /// When the instance's monotonic clock reaches this.
    Clock(u64),
    Fd {
        kind: u8,
        nbytes: u64,
    },
}

struct Subscription {
    userdata: u64,
    kind: Kind,
}

fn le_u64(b: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&b[..8]);
    u64::from_le_bytes(bytes)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&b[..4]);
    u32::from_le_bytes(bytes)
}

/// Bytes ready on a descriptor subscription: what is left of stdin or of a
/// file past its position; a write is always possible (0, as wasi-common
/// reported). A directory or a closed descriptor fails the whole call.
fn ready_bytes(wasi: &mut crate::wasi::WasiState, fd: u32, kind: u8) -> Res<u64> {
    let remaining = match fds(wasi).get(fd)? {
        Fd::Dir { .. } => return fail(errno::BADF),
        _ if kind == EVENT_FD_WRITE => return Ok(0),
        Fd::Stdio(Stdio::In) => return Ok(wasi.stdin_remaining() as u64),
        Fd::Stdio(_) => 0,
        Fd::File { desc, pos, .. } => desc.stat().map_or(0, |stat| stat.size.saturating_sub(*pos)),
    };
    Ok(remaining)
}

pub(super) fn poll_oneoff(mut caller: Cx<'_>, subs: i32, events: i32, count: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        let (subs, events, count) = (subs as u32, events as u32, count as u32);
        mem.check(ret as u32, 4, 4)?;
        if count == 0 {
            return fail(errno::INVAL);
        }
        mem.check(subs, u64::from(count) * u64::from(SUBSCRIPTION_SIZE), 8)?;
        mem.check(events, u64::from(count) * u64::from(EVENT_SIZE), 8)?;
        let wasi = &mut state.host.wasi_state;
        let now = wasi.monotonic_now();
        // Bounded: every subscription is in guest memory.
        let mut list = Vec::with_capacity(count as usize);
        for i in 0..count {
            let sub = mem.bytes(subs + i * SUBSCRIPTION_SIZE, SUBSCRIPTION_SIZE)?;
            let userdata = le_u64(&sub[0..]);
            let kind = match sub[8] {
                EVENT_CLOCK => {
                    let (id, timeout) = (le_u32(&sub[16..]), le_u64(&sub[24..]));
                    let flags = u16::from_le_bytes([sub[40], sub[41]]);
                    if flags & !ABSTIME != 0 {
                        return fail(errno::INVAL);
                    }
                    let absolute = flags & ABSTIME != 0;
                    // One relative timer is a sleep, on whichever clock (as in
                    // wasi-common); otherwise monotonic, or realtime relative.
                    match id {
                        _ if count == 1 && !absolute => {}
                        clockid::MONOTONIC => {}
                        clockid::REALTIME if absolute => return fail(errno::NOTSUP),
                        clockid::REALTIME => {}
                        _ => return fail(errno::INVAL),
                    }
                    Kind::Clock(match absolute {
                        true => timeout,
                        false => now.saturating_add(timeout),
                    })
                }
                kind @ (EVENT_FD_READ | EVENT_FD_WRITE) => Kind::Fd {
                    kind,
                    nbytes: ready_bytes(wasi, le_u32(&sub[16..]), kind)?,
                },
                _ => return fail(errno::INVAL),
            };
            list.push(Subscription { userdata, kind });
        }
        let fd_ready = list.iter().any(|s| matches!(s.kind, Kind::Fd { .. }));
        if !fd_ready {
            let earliest = list
                .iter()
                .filter_map(|s| match s.kind {
                    Kind::Clock(when) => Some(when),
                    Kind::Fd { .. } => None,
                })
                .min()
                .unwrap_or(now);
            wait_for_clock(state, earliest)?;
        }
        let now = state.host.wasi_state.monotonic_now();
        let mut written = 0u32;
        for sub in &list {
            let (kind, nbytes) = match sub.kind {
                Kind::Clock(when) if when <= now => (EVENT_CLOCK, 0),
                Kind::Clock(_) => continue,
                Kind::Fd { kind, nbytes } => (kind, nbytes),
            };
            let mut event = [0u8; EVENT_SIZE as usize];
            event[0..8].copy_from_slice(&sub.userdata.to_le_bytes());
            event[10] = kind;
            event[16..24].copy_from_slice(&nbytes.to_le_bytes());
            mem.put(events + written * EVENT_SIZE, 8, &event)?;
            written += 1;
        }
        mem.put_u32(ret as u32, written)
    })
}
