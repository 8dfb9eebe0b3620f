;; A WAGI guest that looks for what an earlier request left behind, then
;; leaves a secret in every place an instance has state: linear memory, a
;; mutable global, a table slot and an open file descriptor. It answers
;; `before=MGTF after=MGTF` (memory, global, table, fd), each `1` if the
;; secret is there: a fresh instance must say `before=0000`; `after=1111`
;; shows that the checks do find what this request planted.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get"
    (func $fd_fdstat_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The answer; the digits are at offsets 33..36 and 44..47.
  (data (i32.const 0) "Content-Type: text/plain\n\nbefore=???? after=????\n")
  (data (i32.const 280) "secret.txt")
  ;; Memory at 1024 has no data segment: zero in a fresh instance.
  (global $secret (mut i64) (i64.const 0))
  (table $slots 2 funcref)
  (elem declare func $planted)
  (func $planted)

  (func $digit (param $at i32) (param $seen i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $seen))))

  ;; Whether any descriptor above the preopen (fd 3) is open.
  (func $fd_open (result i32) (local $fd i32)
    (local.set $fd (i32.const 4))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $fd) (i32.const 64)))
        (if (i32.eqz (call $fd_fdstat_get (local.get $fd) (i32.const 512)))
          (then (return (i32.const 1))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func $report (param $at i32)
    (call $digit (local.get $at)
      (i64.eq (i64.load (i32.const 1024)) (i64.const 0x5ec2e75ec2e7)))
    (call $digit (i32.add (local.get $at) (i32.const 1))
      (i64.eq (global.get $secret) (i64.const 0x5ec2e75ec2e7)))
    (call $digit (i32.add (local.get $at) (i32.const 2))
      (i32.eqz (ref.is_null (table.get $slots (i32.const 1)))))
    (call $digit (i32.add (local.get $at) (i32.const 3)) (call $fd_open)))

  (func (export "_start")
    (call $report (i32.const 33))
    (i64.store (i32.const 1024) (i64.const 0x5ec2e75ec2e7))
    (global.set $secret (i64.const 0x5ec2e75ec2e7))
    (table.set $slots (i32.const 1) (ref.func $planted))
    ;; Opened for reading and never closed.
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 280) (i32.const 10)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 272)))
    (call $report (i32.const 44))
    (i32.store (i32.const 256) (i32.const 0))
    (i32.store (i32.const 260) (i32.const 49))
    (drop (call $fd_write (i32.const 1) (i32.const 256) (i32.const 1) (i32.const 264)))))
