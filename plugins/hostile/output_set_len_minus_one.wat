;; Sets an output of length -1 (u64::MAX) at a real block. The host must answer LimitExceeded "output bytes" (u64::MAX requested).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (call $output_set (call $alloc (i64.const 8)) (i64.const -1))
    (i32.const 0)))
