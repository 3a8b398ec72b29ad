;; Grows memory without end. The host must refuse growth past its page cap: LimitExceeded.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
    unreachable))
