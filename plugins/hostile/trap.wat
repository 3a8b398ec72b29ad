;; Executes `unreachable`. The host must report a Trap.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32) unreachable))
