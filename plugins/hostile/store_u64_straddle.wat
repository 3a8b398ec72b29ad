;; Writes 8 bytes from offset 5 of an 8-byte block, across its end into the next block. The host must trap it, naming store_u64, writing nothing.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $first i64)
    (local.set $first (call $alloc (i64.const 8)))
    (drop (call $alloc (i64.const 8)))
    (call $store_u64 (i64.add (local.get $first) (i64.const 4)) (i64.const -1))
    (i32.const 0)))
