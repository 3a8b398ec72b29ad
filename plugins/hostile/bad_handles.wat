;; Reads the host arena at an offset no block covers. The host must trap it, naming the function.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $alloc (i64.const 8)))
    ;; 8 bytes from offset 5 of an 8-byte block: past its end.
    (drop (call $load_u64 (i64.add (call $alloc (i64.const 8)) (i64.const 5))))
    (i32.const 0)))
