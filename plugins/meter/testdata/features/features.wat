;; A module that uses every instruction family that package meter has to
;; decode: multi-value block types, sign extension, saturating conversion,
;; bulk memory, reference types and tables, typed select, and SIMD. Built by
;; the command in ../README.md.
(module
  (type $i2i (func (param i32) (result i32)))
  (type $ii2ii (func (param i32 i32) (result i32 i32)))
  (import "env" "base" (global $base i32))
  (import "env" "bump" (global $bump (mut i64)))
  (memory 1)
  (table $t 4 funcref)
  (table $ext 2 externref)
  (global $acc (mut i32) (i32.const 0))
  (global $k i64 (i64.const -9223372036854775808))
  (data $d "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10")
  (elem $e func $double $inc)
  (elem (table $t) (i32.const 0) func $double $inc)
  (export "run" (func $run))
  (export "count" (func $count))
  (export "memory" (memory 0))

  (func $double (type $i2i) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $i2i) (i32.add (local.get 0) (i32.const 1)))

  ;; count loops n times using a loop with parameters and results.
  (func $count (param $n i32) (result i32)
    (local $i i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (i32.add (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))

  (func $run (param $x i32) (result i32)
    (local $v v128) (local $f f64) (local $r externref) (local $i i32) (local $s i32)
    ;; multi-value block with a type index
    (local.get $x)
    (i32.const 7)
    (block $b (type $ii2ii) (i32.add) (i32.const 5))
    (i32.add)
    (local.set $s)
    ;; sign extension
    (local.set $s (i32.add (local.get $s) (i32.extend8_s (local.get $x))))
    (local.set $s (i32.add (local.get $s)
      (i32.wrap_i64 (i64.extend32_s (i64.extend_i32_u (local.get $x))))))
    ;; saturating conversion
    (local.set $f (f64.const 1e300))
    (local.set $s (i32.add (local.get $s) (i32.trunc_sat_f64_s (local.get $f))))
    (local.set $s (i32.add (local.get $s) (i32.trunc_sat_f32_u (f32.const -3.5))))
    ;; bulk memory
    (memory.init $d (i32.const 100) (i32.const 0) (i32.const 16))
    (memory.copy (i32.const 200) (i32.const 100) (i32.const 16))
    (memory.fill (i32.const 300) (local.get $x) (i32.const 8))
    (data.drop $d)
    (local.set $s (i32.add (local.get $s) (i32.load offset=4 align=2 (i32.const 200))))
    (local.set $s (i32.add (local.get $s) (i32.load8_u (i32.const 303))))
    (local.set $s (i32.add (local.get $s) (memory.size)))
    (local.set $s (i32.add (local.get $s) (memory.grow (i32.const 0))))
    ;; tables and references
    (table.init $t $e (i32.const 2) (i32.const 0) (i32.const 2))
    (elem.drop $e)
    (table.copy $t $t (i32.const 0) (i32.const 2) (i32.const 2))
    (local.set $s (i32.add (local.get $s) (call_indirect $t (type $i2i) (local.get $x) (i32.const 1))))
    (local.set $s (i32.add (local.get $s) (ref.is_null (table.get $t (i32.const 3)))))
    (table.set $t (i32.const 3) (ref.func $double))
    (local.set $s (i32.add (local.get $s) (table.size $t)))
    (local.set $s (i32.add (local.get $s) (table.grow $ext (ref.null extern) (i32.const 1))))
    (table.fill $ext (i32.const 0) (local.get $r) (i32.const 2))
    (local.set $s (i32.add (local.get $s) (ref.is_null (table.get $ext (i32.const 1)))))
    ;; typed select
    (local.set $s (i32.add (local.get $s)
      (select (result i32) (i32.const 11) (i32.const 13) (local.get $x))))
    ;; SIMD
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i32x4.add (local.get $v) (i32x4.splat (local.get $x))))
    (local.set $v (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 (local.get $v) (local.get $v)))
    (local.set $v (i32x4.replace_lane 2 (local.get $v) (i32.const 99)))
    (v128.store offset=16 (i32.const 400) (local.get $v))
    (local.set $v (v128.load32_zero (i32.const 404)))
    (local.set $v (v128.load8_lane 5 (i32.const 100) (local.get $v)))
    (local.set $s (i32.add (local.get $s) (i32x4.extract_lane 2 (local.get $v))))
    (local.set $s (i32.add (local.get $s) (i8x16.extract_lane_u 5 (local.get $v))))
    (local.set $s (i32.add (local.get $s) (i32.load (i32.const 424))))
    ;; globals, imported and defined
    (global.set $acc (i32.add (global.get $acc) (global.get $base)))
    (global.set $bump (i64.add (global.get $bump) (i64.const 1)))
    (local.set $s (i32.add (local.get $s) (global.get $acc)))
    (local.set $s (i32.add (local.get $s) (i32.wrap_i64 (i64.shr_u (global.get $k) (i64.const 60)))))
    ;; br_table inside a loop, and if/else with a result
    (local.set $i (i32.const 0))
    (block $out
      (loop $top
        (block $c2 (block $c1 (block $c0
          (br_table $c0 $c1 $c2 (i32.rem_u (local.get $i) (i32.const 3))))
          (local.set $s (i32.add (local.get $s) (i32.const 1))) (br $c2))
          (local.set $s (i32.mul (local.get $s) (i32.const 3))))
        (local.set $s (if (result i32) (i32.and (local.get $i) (i32.const 1))
          (then (i32.xor (local.get $s) (i32.const 0x5a5a)))
          (else (i32.rotl (local.get $s) (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $top (i32.lt_u (local.get $i) (i32.const 10)))))
    (i32.add (local.get $s) (call $count (i32.and (local.get $x) (i32.const 255)))))
)
