;; Declares a mutable funcref global (state the engine cannot save). Install must fail with UnsupportedFeature "mutable reference global".
(module
  (memory (export "memory") 1)
  (func $f)
  (global $g (mut funcref) (ref.func $f))
  (func (export "run") (result i32)
    (global.set $g (ref.null func))
    (i32.const 0)))
