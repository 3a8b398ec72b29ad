;; Changes its table with table.set (tables are not saved between calls). Install must fail with UnsupportedFeature "table.set".
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "run") (result i32)
    (table.set $t (i32.const 0) (ref.null func))
    (i32.const 0)))
