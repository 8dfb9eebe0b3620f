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
fn run(wat: &str) -> (u32, Vec<u8>) {
    run_with(wat, |_| {})
}

/// [`run`] with the host state prepared by `prepare`.
fn run_with(wat: &str, prepare: impl FnOnce(&mut HostState)) -> (u32, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("flint-wasi-p3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // One file per call: tests run in parallel, and two components of the
    // same text length must not share a file.
    static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{n}.wasm"));
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
    prepare(&mut host);
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
        let (result, out) = run(&stdout_guest(version, true));
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
    let (result, out) = run(&stdout_guest("0.3.0-rc-2026-01-06", false));
    assert_eq!(result & 0xffff, completed(9));
    assert_eq!(result >> 24, 0, "ok");
    assert_eq!(out, b"hello p3\n");
}

/// `wasi:filesystem@0.3.0`'s `error-code` or `descriptor-type` in component
/// text: `named` empty cases, then `other(option<string>)`.
fn cases_with_other(named: usize) -> String {
    let mut cases: String = (0..named).map(|i| format!("(case \"c{i}\")")).collect();
    cases.push_str("(case \"other\" (option string))");
    format!("(variant {cases})")
}

/// A guest that lists its preopen's entries through `read-directory`'s
/// `stream<directory-entry>` and tries `read-via-stream` on the directory.
/// Its answer packs: `stream.read`'s result (bits 0..8), the first entry's
/// `descriptor-type` case (8..12) and name length (12..16), the read
/// result's discriminant (16..20) and error case (20..28).
fn listing_guest() -> String {
    let kind = cases_with_other(7);
    let error = cases_with_other(36);
    format!(
        r#"(component
  (import "wasi:filesystem/types@0.3.0" (instance $types
    (export "descriptor" (type $d (sub resource)))
    (type $dt0 {kind})
    (export "descriptor-type" (type $dt (eq $dt0)))
    (type $entry0 (record (field "type" $dt) (field "name" string)))
    (export "directory-entry" (type $entry (eq $entry0)))
    (type $ec0 {error})
    (export "error-code" (type $ec (eq $ec0)))
    (type $r (result (error $ec)))
    (type $es (stream $entry))
    (type $bs (stream u8))
    (type $fr (future $r))
    (export "[method]descriptor.read-directory" (func (param "self" (borrow $d)) (result (tuple $es $fr))))
    (export "[method]descriptor.read-via-stream" (func (param "self" (borrow $d)) (param "offset" u64) (result (tuple $bs $fr))))
  ))
  (alias export $types "descriptor" (type $d))
  (alias export $types "error-code" (type $ec))
  (alias export $types "directory-entry" (type $entry))
  (import "wasi:filesystem/preopens@0.3.0" (instance $preopens
    (alias outer 1 $d (type $d))
    (export "get-directories" (func (result (list (tuple (own $d) string)))))
  ))
  (alias export $types "[method]descriptor.read-directory" (func $read_directory))
  (alias export $types "[method]descriptor.read-via-stream" (func $read_via_stream))
  (alias export $preopens "get-directories" (func $get_directories))
  (type $es (stream $entry))
  (type $fr (future (result (error $ec))))
  (core module $libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (local.get $at)))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "mem" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (core func $get_directories_lowered (canon lower (func $get_directories) (memory $mem) (realloc $realloc)))
  (core func $read_directory_lowered (canon lower (func $read_directory) (memory $mem) (realloc $realloc)))
  (core func $read_via_stream_lowered (canon lower (func $read_via_stream) (memory $mem) (realloc $realloc)))
  (core func $stream_read (canon stream.read $es async (memory $mem) (realloc $realloc)))
  (core func $future_read (canon future.read $fr async (memory $mem) (realloc $realloc)))
  (core module $m
    (import "libc" "mem" (memory 1))
    (import "" "get-directories" (func $dirs (param i32)))
    (import "" "read-directory" (func $list (param i32 i32)))
    (import "" "read-via-stream" (func $read (param i32 i64 i32)))
    (import "" "stream.read" (func $sr (param i32 i32 i32) (result i32)))
    (import "" "future.read" (func $fr (param i32 i32) (result i32)))
    (func (export "run") (result i32)
      (local $dir i32) (local $n i32)
      (call $dirs (i32.const 0))
      ;; the first preopen's descriptor
      (local.set $dir (i32.load (i32.load (i32.const 0))))
      (call $list (local.get $dir) (i32.const 8))
      (local.set $n (call $sr (i32.load (i32.const 8)) (i32.const 256) (i32.const 4)))
      (call $read (local.get $dir) (i64.const 0) (i32.const 16))
      (drop (call $fr (i32.load (i32.const 20)) (i32.const 512)))
      (i32.or (local.get $n)
        (i32.or (i32.shl (i32.load8_u (i32.const 256)) (i32.const 8))
          (i32.or (i32.shl (i32.load (i32.const 276)) (i32.const 12))
            (i32.or (i32.shl (i32.load8_u (i32.const 512)) (i32.const 16))
              (i32.shl (i32.load8_u (i32.const 516)) (i32.const 20)))))))
  )
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "" (instance
      (export "get-directories" (func $get_directories_lowered))
      (export "read-directory" (func $read_directory_lowered))
      (export "read-via-stream" (func $read_via_stream_lowered))
      (export "stream.read" (func $stream_read))
      (export "future.read" (func $future_read))))))
  (func (export "run") (result u32) (canon lift (core func $i "run")))
)"#
    )
}

#[test]
fn a_directory_streams_its_entries_and_refuses_a_byte_stream() {
    let dir = std::env::temp_dir().join(format!("flint-wasi-p3-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("a.txt"), b"hi").expect("file");
    let preopen =
        cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).expect("open");
    let (result, _) = run_with(&listing_guest(), |host| {
        host.wasi_state.preopens = vec![flint_host::wasi::Preopen {
            dir: Arc::new(preopen),
            guest_path: "/".into(),
        }];
    });
    assert_eq!(result & 0xff, completed(1), "one entry");
    assert_eq!((result >> 8) & 0xf, 5, "regular-file (0.3.0's case 5)");
    assert_eq!((result >> 12) & 0xf, 5, "the name `a.txt`");
    assert_eq!(
        (result >> 16) & 0xf,
        1,
        "read-via-stream on a directory: err"
    );
    assert_eq!(result >> 20, 13, "is-directory (0.3.0's case 13)");
    std::fs::remove_dir_all(&dir).ok();
}
