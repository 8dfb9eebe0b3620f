//! WASI 0.3 components, written in component-model text, run against
//! `flint_host::engine()`: the streams and futures of `wasi:cli` go through
//! the engine's async ABI to where 0.2's stdio goes.

use std::sync::Arc;
use std::time::Duration;

use flint_engine::canon::{Ty, Value};
use flint_engine::{InstanceLimits, Loaded};
use flint_host::HostState;
use flint_host::capabilities::Capabilities;
use flint_host::wasi::Sink;

/// Loads the component `wat` and calls its export `run: func() -> u32`
/// with stdout going to a buffer; its result and what it printed.
fn run(wat: &str, stdin: &[u8]) -> (u32, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("flint-wasi-p3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{:x}.wasm", wat.len()));
    std::fs::write(&path, wat::parse_str(wat).expect("wat")).expect("write");
    let engine = flint_host::engine(true).expect("engine");
    let Loaded::Component(image) = engine.load("p3", &path, 16 << 20).expect("load") else {
        panic!("not a component");
    };
    let limits = InstanceLimits {
        memory_bytes: 16 << 20,
        stdout_bytes: 1 << 20,
        table_elements: 1000,
        fuel: 100_000_000,
        max_execution: Duration::from_secs(10),
        memory_budget: None,
    };
    let mut host = HostState::new(Arc::new(Capabilities::none("p3")), 1 << 20, 16 << 20);
    let (sink, stdout) = Sink::buffer(1 << 20);
    host.wasi_state.stdout = sink;
    host.wasi_state.set_stdin(stdin.to_vec());
    let mut store = engine.new_store(host, &limits);
    let mut instance = image.instantiate(&mut store).expect("instantiate");
    let value = instance
        .call(
            &mut store,
            &image,
            "",
            "run",
            &[],
            &[],
            Some(Ty::U32),
            flint_engine::call_guest,
        )
        .expect("run");
    let Some(Value::U32(result)) = value else {
        panic!("run returned {value:?}");
    };
    let out = stdout.read().expect("stdout").data.clone();
    (result, out)
}

/// A stream operation's answer: the count shifted left by four, and
/// `COMPLETED` (0). A future's is `COMPLETED` alone.
fn completed(count: u32) -> u32 {
    count << 4
}

const FUTURE_COMPLETED: u32 = 0;

/// A guest that makes a `stream<u8>`, hands its readable end to
/// `wasi:cli/stdout@VERSION`'s `write-via-stream`, writes "hello p3\n" into
/// it and drops it; with the 0.3.0 shape it also reads the result future.
fn stdout_guest(version: &str, future_result: bool) -> String {
    let (result_ty, read_result) = if future_result {
        (
            "(type $f (future $r)) (export \"write-via-stream\" (func (param \"data\" $s) (result $f)))",
            "(local.set $fr (call $fr (local.get $fut) (i32.const 64)))",
        )
    } else {
        (
            "(export \"write-via-stream\" (func (param \"data\" $s) (result $r)))",
            "(local.set $fr (i32.const 0))",
        )
    };
    let write_sig = if future_result {
        "(func $write (param i32) (result i32))"
    } else {
        // result<_, error-code> flattens to two i32s: through a return pointer.
        "(func $write (param i32 i32))"
    };
    let call_write = if future_result {
        "(local.set $fut (call $write (local.get $r)))"
    } else {
        "(call $write (local.get $r) (i32.const 64))"
    };
    format!(
        r#"(component
  (import "wasi:cli/stdout@{version}" (instance $stdout
    (type $ec (enum "io" "illegal-byte-sequence" "pipe"))
    (export "error-code" (type $e (eq $ec)))
    (type $r (result (error $e)))
    (type $s (stream u8))
    {result_ty}
  ))
  (alias export $stdout "write-via-stream" (func $write))
  (alias export $stdout "error-code" (type $e))
  (type $s (stream u8))
  (type $f (future (result (error $e))))
  (core module $libc (memory (export "mem") 1))
  (core instance $libc (instantiate $libc))
  (core func $write_lowered (canon lower (func $write) (memory (core memory $libc "mem"))))
  (core func $stream_new (canon stream.new $s))
  (core func $stream_write (canon stream.write $s async (memory (core memory $libc "mem"))))
  (core func $drop_writable (canon stream.drop-writable $s))
  (core func $future_read (canon future.read $f async (memory (core memory $libc "mem"))))
  (core module $m
    (import "libc" "mem" (memory 1))
    (import "" "write" {write_sig})
    (import "" "stream.new" (func $new (result i64)))
    (import "" "stream.write" (func $sw (param i32 i32 i32) (result i32)))
    (import "" "drop-writable" (func $dropw (param i32)))
    (import "" "future.read" (func $fr (param i32 i32) (result i32)))
    (data (i32.const 16) "hello p3\n")
    (func (export "run") (result i32)
      (local $pair i64) (local $r i32) (local $w i32) (local $fut i32) (local $n i32) (local $fr i32)
      (local.set $pair (call $new))
      (local.set $r (i32.wrap_i64 (local.get $pair)))
      (local.set $w (i32.wrap_i64 (i64.shr_u (local.get $pair) (i64.const 32))))
      {call_write}
      (local.set $n (call $sw (local.get $w) (i32.const 16) (i32.const 9)))
      (call $dropw (local.get $w))
      {read_result}
      ;; stream.write's answer, future.read's in bits 16.., the result's
      ;; discriminant (0: ok) in bits 24..
      (i32.or (local.get $n)
        (i32.or (i32.shl (local.get $fr) (i32.const 16))
          (i32.shl (i32.load8_u (i32.const 64)) (i32.const 24))))
    )
  )
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "" (instance
      (export "write" (func $write_lowered))
      (export "stream.new" (func $stream_new))
      (export "stream.write" (func $stream_write))
      (export "drop-writable" (func $drop_writable))
      (export "future.read" (func $future_read))))))
  (func (export "run") (result u32) (canon lift (core func $i "run")))
)"#
    )
}

#[test]
fn stdout_streams_land_where_the_instance_stdout_goes() {
    for version in ["0.3.0", "0.3.0-rc-2026-03-15"] {
        let (result, out) = run(&stdout_guest(version, true), b"");
        assert_eq!(
            result & 0xffff,
            completed(9),
            "{version}: all 9 bytes written"
        );
        assert_eq!(
            (result >> 16) & 0xff,
            FUTURE_COMPLETED,
            "{version}: the future is ready"
        );
        assert_eq!(result >> 24, 0, "{version}: the result is ok");
        assert_eq!(out, b"hello p3\n", "{version}");
    }
}

#[test]
fn the_january_candidate_returns_the_result_itself() {
    let (result, out) = run(&stdout_guest("0.3.0-rc-2026-01-06", false), b"");
    assert_eq!(result & 0xffff, completed(9));
    assert_eq!(result >> 24, 0, "ok");
    assert_eq!(out, b"hello p3\n");
}
