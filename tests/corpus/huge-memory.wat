;; 32768 pages = 2 GiB of initial memory.
(module
  (memory (export "memory") 32768)
  (func (export "_start")))
