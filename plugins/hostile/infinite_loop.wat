;; Loops forever. The host must stop it with OutOfFuel (or its instruction budget) and stay healthy.
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
