;; Logs 100,000 empty lines. The host must succeed with the logs cut at its cap (64 KiB, 16 bytes a line: 4,096 lines), in a small reply.
(module
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $i i32)
    (loop $more
      (call $log_info (i64.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100000))))
    (i32.const 0)))
