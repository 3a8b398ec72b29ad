;; Allocates -1 bytes (u64::MAX in the i64 ABI). The host must answer LimitExceeded "arena bytes", allocating nothing.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $alloc (i64.const -1)))
    (i32.const 0)))
