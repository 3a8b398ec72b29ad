;; Drops a passive data segment with data.drop (dropped segments are not saved). Install must fail with UnsupportedFeature "data.drop".
(module
  (memory (export "memory") 1)
  (data $d "hostile")
  (func (export "run") (result i32)
    (data.drop $d)
    (i32.const 0)))
