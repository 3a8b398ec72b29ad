;; Declares a table far above the host's cap. Install must fail with LimitExceeded.
(module
  (table 10000000 funcref)
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))
