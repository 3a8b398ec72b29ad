;; Imports a WASI-looking function that preview 1 does not have. Install must fail with ForbiddenImport.
(module
  (import "wasi_snapshot_preview1" "sock_open" (func $sock_open (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))
