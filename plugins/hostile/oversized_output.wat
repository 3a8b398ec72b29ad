;; Sets an output larger than a reply may carry. The host must answer LimitExceeded.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (call $output_set (call $alloc (i64.const 4000000)) (i64.const 4000000))
    (i32.const 0)))
