//! The hostile corpus (tests/corpus) and hostile clients, each contained:
//! the offending invocation or connection fails with the right status and a
//! log line, a well-behaved route keeps answering, and RSS stays bounded.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use flint_e2e::{Flint, TempDir, corpus_wasm, run_flint, wasm_path};

/// Tight limits so attacks finish quickly and the memory bound is small.
const LIMITS: &str = "[limits]
fuel_per_invocation = 200000000
max_execution_ms = 3000
instance_memory_bytes = 16777216
guest_memory_budget_bytes = 50331648
max_response_bytes = 1048576
";

/// The RSS flint must stay under in these tests: the guest memory budget
/// (48 MiB), connection buffers and its own few MiB.
const RSS_BOUND_KB: u64 = 128 * 1024;

const ATTACKS: [(&str, &str); 7] = [
    ("/loop", "infinite-loop"),
    ("/grow", "grow-bomb"),
    ("/alloc", "alloc-loop"),
    ("/recurse", "deep-recursion"),
    ("/stdout", "giant-stdout"),
    ("/headers", "giant-headers"),
    ("/utf8", "invalid-utf8-header"),
];

fn hostile_app(dir: &TempDir) -> std::path::PathBuf {
    let mut manifest = String::from(
        "spin_manifest_version = 2\n[application]\nname = \"hostile-corpus\"\n\n\
         [[trigger.http]]\nroute = \"/hello\"\ncomponent = \"hello\"\nexecutor = { type = \"wagi\" }\n\
         [component.hello]\n",
    );
    manifest.push_str(&format!("source = \"{}\"\n", wasm_path("hello").display()));
    for (route, module) in ATTACKS {
        manifest.push_str(&format!(
            "\n[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{module}\"\nexecutor = {{ type = \"wagi\" }}\n\
             [component.{module}]\nsource = \"{}\"\n",
            corpus_wasm(module).display()
        ));
    }
    dir.write("spin.toml", manifest)
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// Requests `/hello` in a loop until stopped; returns (ok, total).
fn keep_asking(flint: &Flint, stop: Arc<AtomicBool>) -> thread::JoinHandle<(usize, usize)> {
    let addr = flint.addr();
    thread::spawn(move || {
        let (ok, total) = (AtomicUsize::new(0), AtomicUsize::new(0));
        while !stop.load(Ordering::Relaxed) {
            total.fetch_add(1, Ordering::Relaxed);
            let mut conn = flint_e2e::Conn::open(addr);
            if conn.request("GET", "/hello", &[], []).status == 200 {
                ok.fetch_add(1, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(20));
        }
        (ok.into_inner(), total.into_inner())
    })
}

#[test]
fn every_hostile_module_fails_alone_while_a_good_route_keeps_answering() {
    let dir = TempDir::new("corpus-app");
    let flint = Flint::builder(hostile_app(&dir))
        .runtime_config(LIMITS)
        .start();
    let stop = Arc::new(AtomicBool::new(false));
    let asker = keep_asking(&flint, stop.clone());

    let resp = flint.get("/loop");
    resp.assert_status(504);
    assert!(resp.text().contains("fuel_per_invocation"), "{resp:?}");
    flint.wait_for_log_line(&[
        "infinite-loop",
        "CPU budget",
        "fuel_per_invocation = 200000000",
    ]);

    // memory.grow fails inside the guest at the 16 MiB cap (256 pages): it
    // grows 16 pages at a time from 1, so it stops at 241.
    let grow = flint.get("/grow");
    grow.assert_status(200);
    assert_eq!(grow.text(), "pages: 241");

    let alloc = flint.get("/alloc");
    assert!(matches!(alloc.status, 500 | 504), "{alloc:?}");
    flint.get("/recurse").assert_status(500);
    flint.wait_for_log_line(&["deep-recursion", "trapped"]);
    flint.get("/stdout").assert_status(500);
    flint.wait_for_log_line(&["giant-stdout", "1048576 bytes"]);
    flint.get("/headers").assert_status(500);
    flint.wait_for_log_line(&["ERROR", "component=giant-headers"]);
    let utf8 = flint.get("/utf8");
    utf8.assert_status(200);
    assert_eq!(utf8.text(), "still here");

    // Many memory bombs at once: each is held to its cap, all of them to the
    // shared budget; the ones that do not fit are refused, not run.
    let bombs: Vec<_> = (0..6)
        .map(|_| {
            let addr = flint.addr();
            thread::spawn(move || {
                flint_e2e::Conn::open(addr)
                    .request("GET", "/grow", &[], [])
                    .status
            })
        })
        .collect();
    for bomb in bombs {
        let status = bomb.join().expect("bomb thread");
        assert!(matches!(status, 200 | 503), "memory bomb answered {status}");
    }

    stop.store(true, Ordering::Relaxed);
    let (ok, total) = asker.join().expect("asker");
    assert!(
        total > 0 && ok == total,
        "good route: {ok}/{total} answered 200\n{}",
        flint.stderr()
    );
    let hwm = rss_kb(flint.pid(), "VmHWM:");
    assert!(
        hwm < RSS_BOUND_KB,
        "peak RSS {hwm} kB over {RSS_BOUND_KB} kB"
    );
    flint.get("/hello").assert_status(200);
}

#[test]
fn the_wall_clock_deadline_ends_a_long_invocation() {
    let dir = TempDir::new("corpus-deadline");
    let flint = Flint::builder(hostile_app(&dir))
        .runtime_config("[limits]\nfuel_per_invocation = 1000000000000\nmax_execution_ms = 300\n")
        .start();
    let resp = flint.get("/loop");
    resp.assert_status(504);
    assert!(resp.text().contains("max_execution_ms = 300"), "{resp:?}");
    flint.wait_for_log_line(&["infinite-loop", "max_execution_ms = 300"]);
}

fn check_one(dir: &TempDir, source: &std::path::Path) -> flint_e2e::FlintOutput {
    let manifest =
        dir.one_component_manifest("spin.toml", source, "executor = { type = \"wagi\" }", "");
    run_flint(["check".into(), manifest.into_os_string()])
}

#[test]
fn bad_modules_are_refused_at_startup_with_the_reason() {
    let dir = TempDir::new("corpus-startup");
    let out = check_one(&dir, &corpus_wasm("unknown-import"));
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("launch_missiles"), "{out:?}");

    let out = check_one(&dir, &corpus_wasm("huge-memory"));
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("2147483648 bytes"), "{out:?}");
    assert!(out.stderr.contains("instance_memory_bytes"), "{out:?}");

    let garbage = dir.write("garbage.wasm", b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f");
    let out = check_one(&dir, &garbage);
    assert!(out.stderr.contains("is not valid WebAssembly"), "{out:?}");

    let hello = std::fs::read(wasm_path("hello")).expect("hello.wasm");
    let truncated = dir.write("truncated.wasm", &hello[..hello.len() / 2]);
    let out = check_one(&dir, &truncated);
    assert!(out.stderr.contains("is not valid WebAssembly"), "{out:?}");

    // Well-formed, but `_start`'s body adds with nothing on the stack: `flint
    // up` leaves bodies to their first call, `flint check` validates them all.
    let bad_body = dir.write(
        "bad-body.wasm",
        b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0\x07\x0a\x01\x06_start\0\0\x0a\x05\x01\x03\0\x6a\x0b",
    );
    let out = check_one(&dir, &bad_body);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("is not valid WebAssembly: type mismatch"),
        "{out:?}"
    );

    let text = dir.write("text.wasm", "not wasm at all");
    let out = check_one(&dir, &text);
    assert!(out.stderr.contains("not a WebAssembly file"), "{out:?}");
}

#[test]
fn header_floods_get_431() {
    let flint = Flint::start(flint_e2e::showcase_manifest());
    let headers: Vec<(String, String)> = (0..500)
        .map(|i| (format!("x-flood-{i}"), "v".into()))
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resp = flint.request("GET", "/hello", &refs, []);
    resp.assert_status(431);
    flint.get("/hello").assert_status(200);
}

/// 10,000 connections that never send a byte: Flint keeps at most
/// `max_connections`, closing the longest-idle ones to admit new clients, so
/// real requests keep being answered and memory stays bounded.
#[test]
fn ten_thousand_idle_connections_do_not_lock_out_real_clients() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .runtime_config("[limits]\nmax_connections = 256\n")
        .start();
    let addr = flint.addr();
    let idle: Vec<TcpStream> = (0..10_000)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(
        idle.len() >= 9_000,
        "only {} connections opened",
        idle.len()
    );
    let mut ok = 0;
    for _ in 0..50 {
        if flint_e2e::Conn::open(addr)
            .request("GET", "/hello", &[], [])
            .status
            == 200
        {
            ok += 1;
        }
    }
    assert!(ok >= 49, "only {ok}/50 requests answered during the flood");
    let rss = rss_kb(flint.pid(), "VmHWM:");
    assert!(rss < RSS_BOUND_KB, "peak RSS {rss} kB under the flood");
    eprintln!(
        "flood: {} idle connections, {ok}/50 answered, peak RSS {rss} kB",
        idle.len()
    );
    drop(idle);
}

/// A client that sends a head one byte per second is dropped at
/// `read_timeout_ms` and never holds a worker.
#[test]
fn slowloris_is_dropped() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .runtime_config("[limits]\nread_timeout_ms = 500\n")
        .start();
    let mut slow = TcpStream::connect(flint.addr()).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut dropped = false;
    for b in b"GET /hello HTTP/1.1\r\nHost: x\r\n" {
        if slow.write_all(&[*b]).is_err() {
            dropped = true;
            break;
        }
        flint.get("/hello").assert_status(200);
        thread::sleep(Duration::from_millis(100));
    }
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut slow, &mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        dropped || n == 0 || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// One component cannot take every worker: past `max_instances_per_component`
/// its requests get 503 while other components keep answering.
#[test]
fn one_component_cannot_take_every_worker() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .runtime_config("[limits]\nmax_instances_per_component = 1\n")
        .start();
    let addr = flint.addr();
    let slow = thread::spawn(move || {
        flint_e2e::Conn::open(addr)
            .request("GET", "/slow?ms=3000", &[], [])
            .status
    });
    flint.wait_until_slow_is_running();
    let second = flint.get("/slow?ms=10");
    second.assert_status(503);
    flint.wait_for_log_line(&["max_instances_per_component"]);
    flint.get("/hello").assert_status(200);
    assert_eq!(slow.join().expect("slow request"), 200);
}
