;; Recurses without end. The host must report a trap (call stack exhausted), not crash.
(module
  (memory (export "memory") 1)
  (func $down (param i64) (result i64) (call $down (i64.add (local.get 0) (i64.const 1))))
  (func (export "run") (result i32) (drop (call $down (i64.const 0))) (i32.const 0)))
