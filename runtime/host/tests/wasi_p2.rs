//! WASI 0.2 (`wasi:cli`, `wasi:filesystem`, `wasi:clocks`, `wasi:random`,
//! `wasi:sockets`, `wasi:io`) called by a real guest module through
//! `flint_host::engine()`: the import signatures in the guest are the
//! canonical ABI's, so a wrong WIT type in a table fails to link.

mod common;

use std::time::{Duration, Instant};

use common::Fixture;
use wasmi::Val;

/// `run` returns 0, or the number of the step that went wrong. It writes
/// the environment's one value, the file read whole, and the file read
/// through a stream from offset 6 to stdout. Return areas are at 512+.
const GUEST: &str = r#"
(module
  (import "wasi:cli/environment@0.2.0" "get-environment" (func $env (param i32)))
  (import "wasi:cli/environment@0.2.0" "get-arguments" (func $args (param i32)))
  (import "wasi:cli/environment@0.2.0" "initial-cwd" (func $cwd (param i32)))
  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $stdout (result i32)))
  (import "wasi:cli/stdin@0.2.0" "get-stdin" (func $stdin (result i32)))
  (import "wasi:cli/exit@0.2.0" "exit" (func $exit (param i32)))
  (import "wasi:cli/terminal-stdout@0.2.0" "get-terminal-stdout" (func $tty (param i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[method]input-stream.blocking-read" (func $sread (param i32 i64 i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "poll" (func $poll (param i32 i32 i32)))
  (import "wasi:filesystem/preopens@0.2.0" "get-directories" (func $dirs (param i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.open-at" (func $open (param i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.read" (func $read (param i32 i64 i64 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.write" (func $fwrite (param i32 i32 i32 i64 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.read-via-stream" (func $fstream (param i32 i64 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.stat" (func $stat (param i32 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.create-directory-at" (func $mkdir (param i32 i32 i32 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]descriptor.read-directory" (func $readdir (param i32 i32)))
  (import "wasi:filesystem/types@0.2.0" "[method]directory-entry-stream.read-directory-entry" (func $entry (param i32 i32)))
  (import "wasi:filesystem/types@0.2.0" "[resource-drop]descriptor" (func $drop_fd (param i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.0" "create-tcp-socket" (func $tcp (param i32 i32)))
  (import "wasi:random/random@0.2.0" "get-random-bytes" (func $random (param i64 i32)))
  (import "wasi:random/insecure-seed@0.2.0" "insecure-seed" (func $seed (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $now (result i64)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $after (param i64) (result i32)))
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $wall (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 0) "hello.txt")
  (data (i32.const 16) "../secret")
  (data (i32.const 32) "/etc")
  (data (i32.const 48) "new")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func $out (param $ptr i32) (param $len i32) (result i32)
    (call $write (call $stdout) (local.get $ptr) (local.get $len) (i32.const 1000))
    (i32.load8_u (i32.const 1000)))
  (func (export "run") (result i32)
    (local $entry i32) (local $dir i32) (local $file i32) (local $stream i32)
    ;; environment: one entry, GREETING=hi; its value to stdout
    (call $env (i32.const 512))
    (if (i32.ne (i32.load (i32.const 516)) (i32.const 1)) (then (return (i32.const 1))))
    (local.set $entry (i32.load (i32.const 512)))
    (if (i32.ne (i32.load offset=4 (local.get $entry)) (i32.const 8)) (then (return (i32.const 2))))
    (if (call $out (i32.load offset=8 (local.get $entry)) (i32.load offset=12 (local.get $entry)))
      (then (return (i32.const 3))))
    ;; two arguments; no initial directory; no terminal
    (call $args (i32.const 520))
    (if (i32.ne (i32.load (i32.const 524)) (i32.const 2)) (then (return (i32.const 4))))
    (call $cwd (i32.const 528))
    (if (i32.load8_u (i32.const 528)) (then (return (i32.const 5))))
    (call $tty (i32.const 528))
    (if (i32.load8_u (i32.const 528)) (then (return (i32.const 6))))
    ;; one preopen, at "/"
    (call $dirs (i32.const 536))
    (if (i32.ne (i32.load (i32.const 540)) (i32.const 1)) (then (return (i32.const 7))))
    (local.set $entry (i32.load (i32.const 536)))
    (local.set $dir (i32.load (local.get $entry)))
    (if (i32.ne (i32.load offset=8 (local.get $entry)) (i32.const 1)) (then (return (i32.const 8))))
    (if (i32.ne (i32.load8_u (i32.load offset=4 (local.get $entry))) (i32.const 47)) (then (return (i32.const 9))))
    ;; open hello.txt for reading (path-flags symlink-follow, descriptor-flags read)
    (call $open (local.get $dir) (i32.const 1) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 560))
    (if (i32.load8_u (i32.const 560)) (then (return (i32.const 10))))
    (local.set $file (i32.load (i32.const 564)))
    ;; read it whole: ok((bytes, end = true))
    (call $read (local.get $file) (i64.const 100) (i64.const 0) (i32.const 576))
    (if (i32.load8_u (i32.const 576)) (then (return (i32.const 11))))
    (if (i32.ne (i32.load8_u (i32.const 588)) (i32.const 1)) (then (return (i32.const 12))))
    (if (call $out (i32.load (i32.const 580)) (i32.load (i32.const 584))) (then (return (i32.const 13))))
    ;; ../secret is outside: not-permitted (31)
    (call $open (local.get $dir) (i32.const 1) (i32.const 16) (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 560))
    (if (i32.ne (i32.load8_u (i32.const 560)) (i32.const 1)) (then (return (i32.const 14))))
    (if (i32.ne (i32.load8_u (i32.const 564)) (i32.const 31)) (then (return (i32.const 15))))
    ;; /etc is absolute: not-permitted
    (call $open (local.get $dir) (i32.const 1) (i32.const 32) (i32.const 4) (i32.const 0) (i32.const 1) (i32.const 560))
    (if (i32.ne (i32.load8_u (i32.const 564)) (i32.const 31)) (then (return (i32.const 16))))
    ;; creating, or opening for writing: read-only (33)
    (call $open (local.get $dir) (i32.const 1) (i32.const 0) (i32.const 9) (i32.const 1) (i32.const 1) (i32.const 560))
    (if (i32.ne (i32.load8_u (i32.const 564)) (i32.const 33)) (then (return (i32.const 17))))
    (call $open (local.get $dir) (i32.const 1) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 2) (i32.const 560))
    (if (i32.ne (i32.load8_u (i32.const 564)) (i32.const 33)) (then (return (i32.const 18))))
    (call $fwrite (local.get $file) (i32.const 0) (i32.const 3) (i64.const 0) (i32.const 592))
    (if (i32.ne (i32.load8_u (i32.const 592)) (i32.const 1)) (then (return (i32.const 19))))
    (if (i32.ne (i32.load8_u (i32.const 600)) (i32.const 33)) (then (return (i32.const 20))))
    (call $mkdir (local.get $dir) (i32.const 48) (i32.const 3) (i32.const 592))
    (if (i32.ne (i32.load8_u (i32.const 593)) (i32.const 33)) (then (return (i32.const 21))))
    ;; a stream from offset 6, to stdout
    (call $fstream (local.get $file) (i64.const 6) (i32.const 608))
    (if (i32.load8_u (i32.const 608)) (then (return (i32.const 22))))
    (local.set $stream (i32.load (i32.const 612)))
    (call $sread (local.get $stream) (i64.const 100) (i32.const 616))
    (if (i32.load8_u (i32.const 616)) (then (return (i32.const 23))))
    (if (call $out (i32.load (i32.const 620)) (i32.load (i32.const 624))) (then (return (i32.const 24))))
    ;; then the stream is closed (stream-error case 1)
    (call $sread (local.get $stream) (i64.const 100) (i32.const 616))
    (if (i32.ne (i32.load8_u (i32.const 616)) (i32.const 1)) (then (return (i32.const 25))))
    (if (i32.ne (i32.load8_u (i32.const 620)) (i32.const 1)) (then (return (i32.const 26))))
    ;; stat: ok, size 17 (result payload at 8, size at 16 within it)
    (call $stat (local.get $file) (i32.const 640))
    (if (i32.load8_u (i32.const 640)) (then (return (i32.const 27))))
    (if (i64.ne (i64.load (i32.const 664)) (i64.const 17)) (then (return (i32.const 28))))
    ;; the directory lists one entry, hello.txt, a regular file (6)
    (call $readdir (local.get $dir) (i32.const 720))
    (if (i32.load8_u (i32.const 720)) (then (return (i32.const 29))))
    (call $entry (i32.load (i32.const 724)) (i32.const 736))
    (if (i32.load8_u (i32.const 736)) (then (return (i32.const 30))))
    (if (i32.ne (i32.load8_u (i32.const 740)) (i32.const 1)) (then (return (i32.const 31))))
    (if (i32.ne (i32.load8_u (i32.const 744)) (i32.const 6)) (then (return (i32.const 32))))
    (if (i32.ne (i32.load (i32.const 752)) (i32.const 9)) (then (return (i32.const 33))))
    (call $entry (i32.load (i32.const 724)) (i32.const 736))
    (if (i32.load8_u (i32.const 740)) (then (return (i32.const 34))))
    (call $drop_fd (local.get $file))
    ;; sockets: access-denied (1)
    (call $tcp (i32.const 0) (i32.const 768))
    (if (i32.ne (i32.load8_u (i32.const 768)) (i32.const 1)) (then (return (i32.const 35))))
    (if (i32.ne (i32.load8_u (i32.const 772)) (i32.const 1)) (then (return (i32.const 36))))
    ;; random bytes, a seed, the clocks
    (call $random (i64.const 16) (i32.const 776))
    (if (i32.ne (i32.load (i32.const 780)) (i32.const 16)) (then (return (i32.const 37))))
    (call $seed (i32.const 784))
    (call $wall (i32.const 800))
    (if (i64.eqz (i64.load (i32.const 800))) (then (return (i32.const 38))))
    (if (i64.lt_s (call $now) (i64.const 0)) (then (return (i32.const 39))))
    ;; stdin
    (call $sread (call $stdin) (i64.const 100) (i32.const 616))
    (if (i32.load8_u (i32.const 616)) (then (return (i32.const 40))))
    (if (call $out (i32.load (i32.const 620)) (i32.load (i32.const 624))) (then (return (i32.const 41))))
    (i32.const 0))
  ;; exit(err): status 1
  (func (export "fail") (call $exit (i32.const 1)))
  (func (export "succeed") (call $exit (i32.const 0)))
  ;; a descriptor handle the host never gave out
  (func (export "forged") (call $stat (i32.const 999) (i32.const 640)))
  ;; 1 ms through poll, then 1000 s through block
  (func (export "nap") (result i32)
    (i32.store (i32.const 832) (call $after (i64.const 1000000)))
    (call $poll (i32.const 832) (i32.const 1) (i32.const 840))
    (if (i32.ne (i32.load (i32.const 844)) (i32.const 1)) (then (return (i32.const -1))))
    (i32.load (i32.load (i32.const 840))))
  (func (export "sleep") (call $block (call $after (i64.const 1000000000000))))
)
"#;

fn fixture(name: &str) -> Fixture {
    common::fixture(common::Spec {
        label: &format!("wasi-p2-{name}"),
        guest: GUEST,
        fuel: 100_000_000,
        stdout_limit: 1 << 20,
        populate: &|base| {
            std::fs::write(base.join("files/hello.txt"), b"hello from a file").expect("file");
            std::fs::write(base.join("secret"), b"secret").expect("secret");
        },
        setup: &|state| {
            state.env = vec![("GREETING".into(), "hi".into())];
            state.args = vec!["p2".into(), "x".into()];
            state.set_stdin(b"|stdin".to_vec());
        },
    })
}

impl Fixture {
    fn call(&mut self, name: &str, results: &mut [Val]) -> Result<(), wasmi::Error> {
        let func = self.instance.get_func(&self.store, name).expect("export");
        flint_engine::call_guest(&mut self.store, &func, &[], results)
    }
}

#[test]
fn cli_filesystem_and_the_rest_through_the_tables() {
    let mut f = fixture("run");
    let mut result = [Val::I32(-1)];
    f.call("run", &mut result).expect("run");
    assert_eq!(result[0].i32(), Some(0), "the step that failed");
    let out = f.stdout.read().expect("stdout");
    assert_eq!(
        String::from_utf8_lossy(&out.data),
        "hihello from a filefrom a file|stdin"
    );
    assert!(!out.overflowed);
    // Nothing was written to the files.
    let files = f.base.join("files");
    assert_eq!(std::fs::read_dir(&files).expect("list").count(), 1);
}

#[test]
fn exit_ends_the_invocation_with_its_status() {
    let mut f = fixture("exit");
    let fail = f.call("fail", &mut []).expect_err("exit traps");
    assert_eq!(fail.i32_exit_status(), Some(1));
    let mut f = fixture("exit0");
    let ok = f.call("succeed", &mut []).expect_err("exit traps");
    assert_eq!(ok.i32_exit_status(), Some(0));
}

#[test]
fn forged_handles_trap() {
    let mut f = fixture("forged");
    let e = f.call("forged", &mut []).expect_err("a forged handle");
    assert!(e.to_string().contains("descriptor"), "{e}");
}

#[test]
fn clock_waits_sleep_but_never_past_the_deadline() {
    let mut f = fixture("clock");
    let mut ready = [Val::I32(-1)];
    let start = Instant::now();
    f.call("nap", &mut ready).expect("nap");
    assert!(start.elapsed() >= Duration::from_millis(1));
    assert_eq!(ready[0].i32(), Some(0), "index 0 is ready");
    let start = Instant::now();
    let e = f.call("sleep", &mut []).expect_err("past the deadline");
    assert!(e.to_string().contains("max_execution_ms"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1), "failed at once");
}
