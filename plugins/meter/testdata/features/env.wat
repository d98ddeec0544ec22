;; The "env" module that features.wasm imports from.
(module
  (global (export "base") i32 (i32.const 1000))
  (global (export "bump") (mut i64) (i64.const 0)))
