;; A 1 MiB header line (bytes 'A' after "X-Big: "), then a body.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 20)
  (data (i32.const 16) "Content-Type: text/plain\nX-Big: ")
  (data (i32.const 64) "\n\nbody")
  (func (export "_start")
    (memory.fill (i32.const 1024) (i32.const 65) (i32.const 1048576))
    ;; three iovecs at 0: prefix, the 1 MiB of 'A', the tail
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 32))
    (i32.store (i32.const 128) (i32.const 1024))
    (i32.store (i32.const 132) (i32.const 1048576))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 128) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
