//! The hostile component (apps/components/hostile-component, a Rust
//! `spin-sdk` 5 HTTP component): each route abuses the component model or the
//! host through raw canonical-ABI imports — forged and stale resource handles,
//! out-of-bounds lists and return pointers, a string that is not UTF-8 — or
//! exhausts the stack, the handle table or memory. Each abuse must fail just
//! that invocation (500, or 504 where a CPU limit is what stops it), be logged
//! naming the component, and leave the server answering `/ok`.
//!
//! A route whose abuse the host lets through answers 200 `survived ...`, so a
//! missing trap shows up as an unexpected status with that body.

use std::path::PathBuf;

use flint_e2e::{Flint, LOG_TIMEOUT, poll_until, workspace_root};

/// As in hostile.rs: tight limits so the bombs finish quickly.
const LIMITS: &str = "[limits]
fuel_per_invocation = 200000000
max_execution_ms = 3000
instance_memory_bytes = 16777216
guest_memory_budget_bytes = 50331648
max_response_bytes = 1048576
";

/// The id of the component in apps/components/hostile-component/spin.toml.
const ID: &str = "hostile-component";

/// The peak RSS allowed after the memory bomb (as in hostile.rs: the guest
/// memory budget, connection buffers and Flint's own few MiB).
const RSS_BOUND_KB: u64 = 128 * 1024;

/// The component's own manifest, once its wasm is known to be built by
/// `scripts/build-components` (which `scripts/test` runs before the tests).
fn hostile_manifest() -> PathBuf {
    let wasm = workspace_root()
        .join("apps/components/target/wasm32-wasip2/release/hostile_component.wasm");
    assert!(
        wasm.is_file(),
        "{} is not built: run scripts/build-components",
        wasm.display()
    );
    workspace_root().join("apps/components/hostile-component/spin.toml")
}

fn start() -> Flint {
    Flint::builder(hostile_manifest())
        .runtime_config(LIMITS)
        .start()
}

#[track_caller]
fn assert_still_serving(flint: &Flint) {
    let ok = flint.get("/ok");
    ok.assert_status(200);
    assert_eq!(ok.text(), "still serving\n", "{ok:?}");
}

/// How a route's abuse must end.
#[derive(Clone, Copy)]
enum Ends {
    /// A trap: 500 and a `guest trapped: ...` log line.
    Trap,
    /// A trap, or the CPU limit if the host's memory cap is slow to be reached.
    TrapOrCpuLimit,
}

impl Ends {
    fn statuses(self) -> &'static [u16] {
        match self {
            Ends::Trap => &[500],
            Ends::TrapOrCpuLimit => &[500, 504],
        }
    }
}

/// How many lines of `log` contain every one of `parts`.
fn count_lines(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .count()
}

/// Waits (up to [`LOG_TIMEOUT`]) for a line containing every one of `parts`
/// that was not in `before`, an earlier snapshot of flint's stderr.
#[track_caller]
fn wait_for_new_log_line(flint: &Flint, before: &str, parts: &[&str]) {
    let seen = count_lines(before, parts);
    if !poll_until(LOG_TIMEOUT, || count_lines(&flint.stderr(), parts) > seen) {
        panic!(
            "no new stderr line contains all of {parts:?}\n--- stderr ---\n{}",
            flint.stderr()
        );
    }
}

/// Requests `path` on `flint` and checks that the invocation failed the way
/// `ends` says and that the failure was logged naming the component.
#[track_caller]
fn assert_contained(flint: &Flint, path: &str, ends: Ends) {
    // Earlier requests' lines are all in by now: each call waited for its own.
    let before = flint.stderr();
    let resp = flint.get(path);
    let allowed = ends.statuses();
    assert!(
        allowed.contains(&resp.status),
        "{path}: expected a status in {allowed:?}, got {resp:?}\n--- stderr ---\n{}",
        flint.stderr()
    );
    // The request line: method, path, status and the component.
    wait_for_new_log_line(flint, &before, &["GET", path, &resp.status.to_string(), ID]);
    // The failure itself, naming the component.
    let component = format!("component={ID}");
    if resp.status == 500 {
        wait_for_new_log_line(flint, &before, &["ERROR", &component, "trapped"]);
    } else {
        let text = resp.text();
        assert!(
            text.contains("fuel_per_invocation") || text.contains("max_execution_ms"),
            "{path}: a 504 that names no CPU limit: {resp:?}"
        );
        wait_for_new_log_line(flint, &before, &["ERROR", &component, "guest"]);
    }
}

/// One server per route: `/ok` answers, the abuse fails alone (twice, so a
/// second, fresh instance is contained the same way and nothing from the first
/// lingers), and `/ok` still answers after each.
fn contained(path: &str, ends: Ends) -> Flint {
    let flint = start();
    assert_still_serving(&flint);
    for _ in 0..2 {
        assert_contained(&flint, path, ends);
        assert_still_serving(&flint);
    }
    flint
}

/// `[resource-drop]fields` on handle 0x7fff0000, which no table handed out.
#[test]
fn a_forged_resource_handle_traps() {
    contained("/forge-handle", Ends::Trap);
}

/// A `fields` created and dropped, then its handle dropped again.
#[test]
fn a_stale_resource_handle_traps() {
    contained("/stale-handle", Ends::Trap);
}

/// `[static]fields.from-list` with 1000 entries at 0xfffffff0, past the end of
/// linear memory (and wrapping 4 GiB when the length is added).
#[test]
fn an_out_of_bounds_list_traps() {
    contained("/oob-list", Ends::Trap);
}

/// `fermyon:spin/variables.get` with a name of bytes `ff fe`: lifting a string
/// that is not UTF-8 traps, it is not an `invalid-name` error.
#[test]
fn a_string_that_is_not_utf8_traps() {
    contained("/bad-utf8", Ends::Trap);
}

/// `[static]fields.from-list` whose return pointer is 0xfffffff0.
#[test]
fn an_out_of_bounds_return_pointer_traps() {
    contained("/bad-retptr", Ends::Trap);
}

/// Unbounded recursion: the shadow stack leaves linear memory (or wasmi's call
/// stack fills) and the invocation traps.
#[test]
fn unbounded_recursion_traps() {
    contained("/deep-recursion", Ends::Trap);
}

/// `fields` created and never dropped: the host refuses past its handle-table
/// limit by trapping, and the next instance starts with an empty table.
#[test]
fn a_handle_flood_is_stopped_at_the_table_limit() {
    contained("/handle-flood", Ends::Trap);
}

/// 1 MiB allocations kept forever: growth stops at `instance_memory_bytes`,
/// the guest's allocator aborts (a trap), and Flint's memory stays bounded.
#[test]
fn a_memory_bomb_is_held_to_the_instance_cap() {
    let flint = contained("/memory-bomb", Ends::TrapOrCpuLimit);
    let hwm = rss_kb(flint.pid(), "VmHWM:");
    assert!(
        hwm < RSS_BOUND_KB,
        "peak RSS {hwm} kB over {RSS_BOUND_KB} kB"
    );
}

/// Every abuse in turn against one server: none leaves state behind (a full
/// handle table, a poisoned instance, grown memory) that breaks the next.
#[test]
fn every_abuse_in_turn_leaves_the_server_serving() {
    let flint = start();
    for (path, ends) in [
        ("/forge-handle", Ends::Trap),
        ("/handle-flood", Ends::Trap),
        ("/stale-handle", Ends::Trap),
        ("/memory-bomb", Ends::TrapOrCpuLimit),
        ("/oob-list", Ends::Trap),
        ("/bad-utf8", Ends::Trap),
        ("/deep-recursion", Ends::Trap),
        ("/bad-retptr", Ends::Trap),
    ] {
        assert_contained(&flint, path, ends);
        assert_still_serving(&flint);
    }
    flint.get("/no-such-route").assert_status(404);
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}
