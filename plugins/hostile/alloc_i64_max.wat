;; Allocates i64::MAX bytes (the largest positive length; -1 is alloc_minus_one). The host must answer LimitExceeded "arena bytes".
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $alloc (i64.const 0x7fff_ffff_ffff_ffff)))
    (i32.const 0)))
