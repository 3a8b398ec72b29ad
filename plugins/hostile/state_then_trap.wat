;; Changes memory, a private global and a var, then traps. The host must undo all three: every call
;; then sees the first byte of memory still 0 and traps the same way.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $touched (mut i32) (i32.const 0))
  (func (export "run") (result i32)
    (local $key i64)
    ;; State from a previous call would show here: refuse to trap then.
    (if (i32.or (i32.load8_u (i32.const 0)) (global.get $touched))
      (then (return (i32.const 2))))
    (i32.store8 (i32.const 0) (i32.const 1))
    (global.set $touched (i32.const 1))
    (local.set $key (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $key) (i32.const 107))
    (call $var_set (local.get $key) (local.get $key))
    unreachable))
