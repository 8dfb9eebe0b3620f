;; Grows one page at a time and writes to every new page, forever: a
;; program that leaks. Growth stops at the cap; then it spins touching memory.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $page i32)
    (loop $forever
      (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
        (then (local.set $page (i32.sub (memory.size) (i32.const 1)))))
      (i32.store (i32.mul (local.get $page) (i32.const 65536)) (local.get $page))
      (br $forever))))
