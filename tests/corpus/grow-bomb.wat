;; Grows memory 16 pages at a time until memory.grow returns -1, then answers
;; with the number of pages it got: the host must refuse growth, not abort.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\n\npages: ")
  (func $digits (param $n i32) (param $at i32) (result i32)
    ;; writes $n in decimal at $at, returns the length
    (local $len i32) (local $tmp i32)
    (local.set $tmp (local.get $n))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $tmp (i32.div_u (local.get $tmp) (i32.const 10)))
      (br_if $count (local.get $tmp)))
    (local.set $tmp (local.get $len))
    (loop $write
      (local.set $tmp (i32.sub (local.get $tmp) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $tmp))
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (local.get $tmp)))
    (local.get $len))
  (func (export "_start")
    (local $len i32)
    (block $done
      (loop $grow
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $grow)))
    (local.set $len (call $digits (memory.size) (i32.const 49)))
    ;; iovec at 0: buf 16, len 33 + digits
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.add (i32.const 33) (local.get $len)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
