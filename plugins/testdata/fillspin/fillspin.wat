;; fillspin: a test plugin whose filter never returns, and spends its time
;; in memory.fill over 4 MiB: one instruction (so a few units of fuel) that
;; takes a thousand times longer than most. Fuel alone would let it run
;; for a whole slice (about a million units: minutes); the deadline must
;; still cut it.
;;
;; Built with wat2wasm from WABT 1.0.32 (Debian's wabt package):
;;
;;	wat2wasm testdata/fillspin/fillspin.wat -o testdata/fillspin/fillspin.wasm
(module
  (memory (export "memory") 65)

  (func (export "uptimizr_abi_version") (result i32) (i32.const 1))
  (func (export "uptimizr_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 1024))
  (func (export "uptimizr_init") (param $p i32) (param $n i32) (result i32) (i32.const 0))

  (func (export "uptimizr_filter") (param $p i32) (param $n i32) (result i64)
    (loop $spin
      (memory.fill (i32.const 65536) (i32.const 7) (i32.const 4194304))
      (br $spin))
    (i64.const 0))
)
