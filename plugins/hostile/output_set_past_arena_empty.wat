;; Sets an empty output at a handle far past the arena (Extism: length 0 is empty whatever the offset). The host must succeed, output empty.
(module
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (call $output_set (i64.const 0x0000_0100_0000_0000) (i64.const 0))
    (i32.const 0)))
