;; bulk: one of each bulk instruction whose length the meter charges, for
;; TestBulkCharge. Assembled with wat2wasm from WABT 1.0.32 (Debian's wabt
;; package):
;;
;;	wat2wasm testdata/bulk/bulk.wat -o testdata/bulk/bulk.wasm
(module
  (memory (export "memory") 128)
  (table 4096 funcref)
  (data $d "0123456789abcdef0123456789abcdef")
  (elem $e func $f $f $f $f)
  (func $f)
  (func (export "fill") (param $n i32) (memory.fill (i32.const 0) (i32.const 7) (local.get $n)))
  (func (export "copy") (param $n i32) (memory.copy (i32.const 0) (i32.const 4194304) (local.get $n)))
  (func (export "init") (param $n i32) (memory.init $d (i32.const 0) (i32.const 0) (local.get $n)))
  (func (export "tfill") (param $n i32) (table.fill 0 (i32.const 0) (ref.null func) (local.get $n)))
  (func (export "tcopy") (param $n i32) (table.copy (i32.const 0) (i32.const 2048) (local.get $n)))
  (func (export "tinit") (param $n i32) (table.init $e (i32.const 0) (i32.const 0) (local.get $n)))
)
