;; spin: a test plugin that keeps every event of a small batch (the upload
;; self-test's six) and spins without end on any batch of more than 16
;; events, until its deadline cuts it: a noisy neighbour for the fairness
;; tests and the load suite's noisy-neighbour scenario.
;;
;; Built with wat2wasm from WABT 1.0.32 (Debian's wabt package):
;;
;;	wat2wasm testdata/spin/spin.wat -o testdata/spin/spin.wasm
(module
  (memory (export "memory") 1)
  (global $spins (mut i64) (i64.const 0))

  (func (export "uptimizr_abi_version") (result i32) (i32.const 1))

  ;; alloc: the input always goes at offset 1024.
  (func (export "uptimizr_alloc") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u
        (i32.add (i32.add (i32.const 1024) (i32.mul (local.get $n) (i32.const 2))) (i32.const 65543))
        (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))

  (func (export "uptimizr_init") (param $p i32) (param $n i32) (result i32) (i32.const 0))

  (func (export "uptimizr_filter") (param $p i32) (param $n i32) (result i64)
    (local $count i32)
    (local $out i32)
    (local.set $count (i32.load (i32.add (local.get $p) (i32.const 4))))
    (if (i32.gt_u (local.get $count) (i32.const 16))
      (then
        (loop $spin
          (global.set $spins (i64.add (global.get $spins) (i64.const 1)))
          (br $spin))))
    (local.set $out (i32.add (local.get $p) (local.get $n)))
    (i32.store (local.get $out) (local.get $count))
    (memory.fill (i32.add (local.get $out) (i32.const 4)) (i32.const 0) (local.get $count))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $count) (i32.const 4)))))
)
