;; Grows its table with table.grow (tables are not saved between calls). Install must fail with UnsupportedFeature "table.grow".
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "run") (result i32)
    (drop (table.grow $t (ref.null func) (i32.const 1)))
    (i32.const 0)))
