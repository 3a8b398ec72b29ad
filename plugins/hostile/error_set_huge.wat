;; Sets a 1 MiB error message of "E"s and returns 1. The host must answer PluginError with code 1 and the message cut to 16 KiB.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $message i64)
    (local $at i64)
    (local.set $message (call $alloc (i64.const 1048576)))
    (loop $fill
      (call $store_u64 (i64.add (local.get $message) (local.get $at)) (i64.const 0x4545454545454545))
      (local.set $at (i64.add (local.get $at) (i64.const 8)))
      (br_if $fill (i64.lt_u (local.get $at) (i64.const 1048576))))
    (call $error_set (local.get $message))
    (i32.const 1)))
