;; Its reactor initialiser `_initialize` loops forever. Install must fail with StartFailed holding OutOfFuel at the whole install fuel.
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (loop $forever (br $forever)))
  (func (export "run") (result i32) (i32.const 0)))
