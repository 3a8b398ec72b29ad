;; Reads 8 arena bytes at offset u64::MAX (the end would wrap), a block below. The host must trap it, naming load_u64 and the offset.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $alloc (i64.const 8)))
    (drop (call $load_u64 (i64.const -1)))
    (i32.const 0)))
