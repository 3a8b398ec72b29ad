;; Drops a passive element segment with elem.drop (dropped segments are not saved). Install must fail with UnsupportedFeature "elem.drop".
(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (func $f)
  (elem $e func $f)
  (func (export "run") (result i32)
    (elem.drop $e)
    (i32.const 0)))
