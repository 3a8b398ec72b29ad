;; Its start function executes `unreachable`. Install must fail with StartFailed holding the trap.
(module
  (memory (export "memory") 1)
  (func $start unreachable)
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
