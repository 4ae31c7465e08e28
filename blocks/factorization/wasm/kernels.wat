;; ALS row kernels in WebAssembly with 128-bit SIMD (f64x2). Assembled into kernels-wasm.ts by
;; build-kernels.mjs (node blocks/factorization/wasm/build-kernels.mjs; needs the npm package wabt).
;; All pointers are byte offsets into the imported memory; matrices are row-major float64.
(module
  (import "env" "memory" (memory 1))

  ;; sum_i a[i] * b[i], i < n
  (func $dot (param $a i32) (param $b i32) (param $n i32) (result f64)
    (local $s0 v128) (local $s1 v128) (local $end i32) (local $end4 i32) (local $r f64)
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 3))))
    (local.set $end4 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 3))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $a) (local.get $end4)))
        (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (v128.load (local.get $a)) (v128.load (local.get $b)))))
        (local.set $s1 (f64x2.add (local.get $s1) (f64x2.mul (v128.load offset=16 (local.get $a)) (v128.load offset=16 (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $b (i32.add (local.get $b) (i32.const 32)))
        (br $l)))
    (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
    (local.set $r (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $r (f64.add (local.get $r) (f64.mul (f64.load (local.get $a)) (f64.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 8)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (br $l2)))
    (local.get $r))

  ;; o[i] += d * a[i], i < n
  (func $axpy (param $d f64) (param $a i32) (param $o i32) (param $n i32)
    (local $dv v128) (local $end i32) (local $end2 i32)
    (local.set $dv (f64x2.splat (local.get $d)))
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 3))))
    (local.set $end2 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -2)) (i32.const 3))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $a) (local.get $end2)))
        (v128.store (local.get $o) (f64x2.add (v128.load (local.get $o)) (f64x2.mul (local.get $dv) (v128.load (local.get $a)))))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l)))
    (if (i32.lt_u (local.get $a) (local.get $end))
      (then (f64.store (local.get $o) (f64.add (f64.load (local.get $o)) (f64.mul (local.get $d) (f64.load (local.get $a))))))))

  ;; Two dot products against the same v in one pass: returns (a0.v) and writes (a1.v) to global $d1.
  (global $d1 (mut f64) (f64.const 0))
  (func $dot2 (param $a0 i32) (param $a1 i32) (param $b i32) (param $n i32) (result f64)
    (local $s0 v128) (local $s1 v128) (local $t0 v128) (local $t1 v128) (local $vb v128) (local $vc v128) (local $i i32) (local $n4 i32)
    (local $r0 f64) (local $r1 f64) (local $o i32)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 3)))
    (local.set $o (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $n4)))
        (local.set $vb (v128.load (i32.add (local.get $b) (local.get $o))))
        (local.set $vc (v128.load offset=16 (i32.add (local.get $b) (local.get $o))))
        (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (v128.load (i32.add (local.get $a0) (local.get $o))) (local.get $vb))))
        (local.set $s1 (f64x2.add (local.get $s1) (f64x2.mul (v128.load offset=16 (i32.add (local.get $a0) (local.get $o))) (local.get $vc))))
        (local.set $t0 (f64x2.add (local.get $t0) (f64x2.mul (v128.load (i32.add (local.get $a1) (local.get $o))) (local.get $vb))))
        (local.set $t1 (f64x2.add (local.get $t1) (f64x2.mul (v128.load offset=16 (i32.add (local.get $a1) (local.get $o))) (local.get $vc))))
        (local.set $o (i32.add (local.get $o) (i32.const 32)))
        (br $l)))
    (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
    (local.set $t0 (f64x2.add (local.get $t0) (local.get $t1)))
    (local.set $r0 (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
    (local.set $r1 (f64.add (f64x2.extract_lane 0 (local.get $t0)) (f64x2.extract_lane 1 (local.get $t0))))
    (local.set $i (i32.and (local.get $n) (i32.const -4)))
    (block $d2
      (loop $l2
        (br_if $d2 (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 3)))
        (local.set $r0 (f64.add (local.get $r0) (f64.mul (f64.load (i32.add (local.get $a0) (local.get $o))) (f64.load (i32.add (local.get $b) (local.get $o))))))
        (local.set $r1 (f64.add (local.get $r1) (f64.mul (f64.load (i32.add (local.get $a1) (local.get $o))) (f64.load (i32.add (local.get $b) (local.get $o))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l2)))
    (global.set $d1 (local.get $r1))
    (local.get $r0))

  ;; out[i] += d0 * a0[i] + d1 * a1[i]
  (func $axpy2 (param $d0 f64) (param $a0 i32) (param $d1 f64) (param $a1 i32) (param $out i32) (param $n i32)
    (local $v0 v128) (local $v1 v128) (local $o i32) (local $n2 i32) (local $p i32)
    (local.set $v0 (f64x2.splat (local.get $d0)))
    (local.set $v1 (f64x2.splat (local.get $d1)))
    (local.set $n2 (i32.shl (i32.and (local.get $n) (i32.const -2)) (i32.const 3)))
    (local.set $o (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $n2)))
        (local.set $p (i32.add (local.get $out) (local.get $o)))
        (v128.store (local.get $p) (f64x2.add (v128.load (local.get $p))
          (f64x2.add (f64x2.mul (local.get $v0) (v128.load (i32.add (local.get $a0) (local.get $o))))
                     (f64x2.mul (local.get $v1) (v128.load (i32.add (local.get $a1) (local.get $o)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l)))
    (if (i32.and (local.get $n) (i32.const 1))
      (then
        (local.set $p (i32.add (local.get $out) (local.get $o)))
        (f64.store (local.get $p) (f64.add (f64.load (local.get $p))
          (f64.add (f64.mul (local.get $d0) (f64.load (i32.add (local.get $a0) (local.get $o))))
                   (f64.mul (local.get $d1) (f64.load (i32.add (local.get $a1) (local.get $o))))))))))

  ;; out = (G + lambda[u] I + sum_k w_k y_k y_k^T) v over row u's entries; G = 0 means no G.
  ;; Two rows of G / two entries per pass (shares the loads of v and out: 10-30% faster than one).
  (func (export "apply_a") (param $u i32) (param $v i32) (param $out i32) (param $f i32)
        (param $indptr i32) (param $indices i32) (param $weight i32) (param $lambda i32) (param $Y i32) (param $G i32)
    (local $lam f64) (local $a i32) (local $k i32) (local $e i32) (local $w0 f64) (local $w1 f64) (local $y0 i32) (local $y1 i32)
    (local $rb i32) (local $val f64) (local $d0 f64)
    (local.set $rb (i32.shl (local.get $f) (i32.const 3)))
    (local.set $lam (f64.load (i32.add (local.get $lambda) (i32.shl (local.get $u) (i32.const 3)))))
    (local.set $a (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $a) (local.get $f)))
        (local.set $val (f64.mul (local.get $lam) (f64.load (i32.add (local.get $v) (i32.shl (local.get $a) (i32.const 3))))))
        (if (local.get $G)
          (then
            (if (i32.lt_u (i32.add (local.get $a) (i32.const 1)) (local.get $f))
              (then
                (local.set $d0 (call $dot2 (i32.add (local.get $G) (i32.mul (local.get $a) (local.get $rb)))
                  (i32.add (local.get $G) (i32.mul (i32.add (local.get $a) (i32.const 1)) (local.get $rb))) (local.get $v) (local.get $f)))
                (f64.store (i32.add (local.get $out) (i32.shl (local.get $a) (i32.const 3))) (f64.add (local.get $val) (local.get $d0)))
                (f64.store offset=8 (i32.add (local.get $out) (i32.shl (local.get $a) (i32.const 3)))
                  (f64.add (f64.mul (local.get $lam) (f64.load offset=8 (i32.add (local.get $v) (i32.shl (local.get $a) (i32.const 3))))) (global.get $d1)))
                (local.set $a (i32.add (local.get $a) (i32.const 2)))
                (br $l)))
            (local.set $val (f64.add (local.get $val)
                  (call $dot (i32.add (local.get $G) (i32.mul (local.get $a) (local.get $rb))) (local.get $v) (local.get $f))))))
        (f64.store (i32.add (local.get $out) (i32.shl (local.get $a) (i32.const 3))) (local.get $val))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (br $l)))
    (local.set $k (i32.load (i32.add (local.get $indptr) (i32.shl (local.get $u) (i32.const 2)))))
    (local.set $e (i32.load offset=4 (i32.add (local.get $indptr) (i32.shl (local.get $u) (i32.const 2)))))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.ge_s (i32.add (local.get $k) (i32.const 1)) (local.get $e)))
        (local.set $w0 (f64.load (i32.add (local.get $weight) (i32.shl (local.get $k) (i32.const 3)))))
        (local.set $w1 (f64.load offset=8 (i32.add (local.get $weight) (i32.shl (local.get $k) (i32.const 3)))))
        (local.set $y0 (i32.add (local.get $Y) (i32.mul (i32.load (i32.add (local.get $indices) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rb))))
        (local.set $y1 (i32.add (local.get $Y) (i32.mul (i32.load offset=4 (i32.add (local.get $indices) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rb))))
        (local.set $d0 (f64.mul (local.get $w0) (call $dot2 (local.get $y0) (local.get $y1) (local.get $v) (local.get $f))))
        (call $axpy2 (local.get $d0) (local.get $y0) (f64.mul (local.get $w1) (global.get $d1)) (local.get $y1) (local.get $out) (local.get $f))
        (local.set $k (i32.add (local.get $k) (i32.const 2)))
        (br $l2)))
    (if (i32.lt_s (local.get $k) (local.get $e))
      (then
        (local.set $w0 (f64.load (i32.add (local.get $weight) (i32.shl (local.get $k) (i32.const 3)))))
        (local.set $y0 (i32.add (local.get $Y) (i32.mul (i32.load (i32.add (local.get $indices) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rb))))
        (call $axpy (f64.mul (local.get $w0) (call $dot (local.get $y0) (local.get $v) (local.get $f))) (local.get $y0) (local.get $out) (local.get $f)))))

  ;; In-place Cholesky of the lower triangle of A (f x f). Returns 1, or 0 if not positive definite.
  (func (export "cholesky") (param $A i32) (param $f i32) (result i32)
    (local $j i32) (local $i i32) (local $rb i32) (local $rowj i32) (local $rowi i32) (local $s f64) (local $d f64) (local $inv f64)
    (local.set $rb (i32.shl (local.get $f) (i32.const 3)))
    (local.set $j (i32.const 0))
    (block $done
      (loop $lj
        (br_if $done (i32.ge_u (local.get $j) (local.get $f)))
        (local.set $rowj (i32.add (local.get $A) (i32.mul (local.get $j) (local.get $rb))))
        (local.set $s (f64.sub (f64.load (i32.add (local.get $rowj) (i32.shl (local.get $j) (i32.const 3))))
                               (call $dot (local.get $rowj) (local.get $rowj) (local.get $j))))
        (if (i32.eqz (f64.gt (local.get $s) (f64.const 0))) (then (return (i32.const 0))))
        (local.set $d (f64.sqrt (local.get $s)))
        (f64.store (i32.add (local.get $rowj) (i32.shl (local.get $j) (i32.const 3))) (local.get $d))
        (local.set $inv (f64.div (f64.const 1) (local.get $d)))
        (local.set $i (i32.add (local.get $j) (i32.const 1)))
        (block $donei
          (loop $li
            (br_if $donei (i32.ge_u (local.get $i) (local.get $f)))
            (local.set $rowi (i32.add (local.get $A) (i32.mul (local.get $i) (local.get $rb))))
            (f64.store (i32.add (local.get $rowi) (i32.shl (local.get $j) (i32.const 3)))
              (f64.mul (f64.sub (f64.load (i32.add (local.get $rowi) (i32.shl (local.get $j) (i32.const 3))))
                                (call $dot (local.get $rowi) (local.get $rowj) (local.get $j)))
                       (local.get $inv)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $li)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lj)))
    (i32.const 1))

  ;; Row u's system for the exact solve: A = G + lambda_u I + sum_k w_k y_k y_k^T (lower triangle),
  ;; b = sum_k t_k y_k; T and W receive the row's factors gathered column-wise (f x n), W w-scaled.
  (func (export "build_row") (param $u i32) (param $A i32) (param $b i32) (param $T i32) (param $W i32) (param $f i32)
        (param $indptr i32) (param $indices i32) (param $weight i32) (param $target i32) (param $lambda i32) (param $Y i32) (param $G i32)
    (local $s i32) (local $n i32) (local $j i32) (local $k i32) (local $a i32) (local $yo i32) (local $rb i32) (local $nb i32)
    (local $w f64) (local $t f64) (local $y f64) (local $lam f64) (local $p i32) (local $q i32)
    (local.set $rb (i32.shl (local.get $f) (i32.const 3)))
    (if (local.get $G)
      (then (memory.copy (local.get $A) (local.get $G) (i32.mul (local.get $f) (local.get $rb))))
      (else (memory.fill (local.get $A) (i32.const 0) (i32.mul (local.get $f) (local.get $rb)))))
    (local.set $lam (f64.load (i32.add (local.get $lambda) (i32.shl (local.get $u) (i32.const 3)))))
    (local.set $a (i32.const 0))
    (block $da
      (loop $la
        (br_if $da (i32.ge_u (local.get $a) (local.get $f)))
        (local.set $p (i32.add (local.get $A) (i32.add (i32.mul (local.get $a) (local.get $rb)) (i32.shl (local.get $a) (i32.const 3)))))
        (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (local.get $lam)))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (br $la)))
    (memory.fill (local.get $b) (i32.const 0) (local.get $rb))
    (local.set $s (i32.load (i32.add (local.get $indptr) (i32.shl (local.get $u) (i32.const 2)))))
    (local.set $n (i32.sub (i32.load offset=4 (i32.add (local.get $indptr) (i32.shl (local.get $u) (i32.const 2)))) (local.get $s)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 3)))
    (local.set $j (i32.const 0))
    (block $dj
      (loop $lj
        (br_if $dj (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $k (i32.add (local.get $s) (local.get $j)))
        (local.set $yo (i32.add (local.get $Y)
          (i32.mul (i32.load (i32.add (local.get $indices) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rb))))
        (local.set $w (f64.load (i32.add (local.get $weight) (i32.shl (local.get $k) (i32.const 3)))))
        (local.set $t (f64.load (i32.add (local.get $target) (i32.shl (local.get $k) (i32.const 3)))))
        (local.set $p (i32.add (local.get $T) (i32.shl (local.get $j) (i32.const 3))))
        (local.set $q (i32.add (local.get $W) (i32.shl (local.get $j) (i32.const 3))))
        (local.set $a (i32.const 0))
        (block $da2
          (loop $la2
            (br_if $da2 (i32.ge_u (local.get $a) (local.get $f)))
            (local.set $y (f64.load (i32.add (local.get $yo) (i32.shl (local.get $a) (i32.const 3)))))
            (f64.store (local.get $p) (local.get $y))
            (f64.store (local.get $q) (f64.mul (local.get $w) (local.get $y)))
            (local.set $p (i32.add (local.get $p) (local.get $nb)))
            (local.set $q (i32.add (local.get $q) (local.get $nb)))
            (local.set $a (i32.add (local.get $a) (i32.const 1)))
            (br $la2)))
        (if (f64.ne (local.get $t) (f64.const 0))
          (then (call $axpy (local.get $t) (local.get $yo) (local.get $b) (local.get $f))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lj)))
    (call $gram_lower (local.get $A) (local.get $W) (local.get $T) (local.get $f) (local.get $n)))

  ;; A[a*f + c] += sum_j W[a*n + j] * T[c*n + j] for c <= a (lower triangle, whole 2 x 2 blocks):
  ;; the weighted Gram of a row's gathered factors (T: f x n, W: w-scaled T).
  (func $gram_lower (export "gram_lower") (param $A i32) (param $W i32) (param $T i32) (param $f i32) (param $n i32)
    (local $a i32) (local $c i32) (local $j i32) (local $nb i32) (local $rb i32)
    (local $w0 i32) (local $w1 i32) (local $t0 i32) (local $t1 i32) (local $end i32) (local $end2 i32)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128)
    (local $r0 f64) (local $r1 f64) (local $r2 f64) (local $r3 f64) (local $p i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 3)))
    (local.set $rb (i32.shl (local.get $f) (i32.const 3)))
    (local.set $a (i32.const 0))
    (block $da
      (loop $la
        (br_if $da (i32.ge_u (i32.add (local.get $a) (i32.const 1)) (local.get $f)))
        (local.set $c (i32.const 0))
        (block $dc
          (loop $lc
            (br_if $dc (i32.gt_u (local.get $c) (local.get $a)))
            (local.set $w0 (i32.add (local.get $W) (i32.mul (local.get $a) (local.get $nb))))
            (local.set $w1 (i32.add (local.get $w0) (local.get $nb)))
            (local.set $t0 (i32.add (local.get $T) (i32.mul (local.get $c) (local.get $nb))))
            (local.set $t1 (i32.add (local.get $t0) (local.get $nb)))
            (local.set $s00 (v128.const i64x2 0 0)) (local.set $s01 (v128.const i64x2 0 0))
            (local.set $s10 (v128.const i64x2 0 0)) (local.set $s11 (v128.const i64x2 0 0))
            (local.set $end2 (i32.add (local.get $w0) (i32.shl (i32.and (local.get $n) (i32.const -2)) (i32.const 3))))
            (local.set $end (i32.add (local.get $w0) (local.get $nb)))
            (block $dj
              (loop $lj
                (br_if $dj (i32.ge_u (local.get $w0) (local.get $end2)))
                (local.set $x0 (v128.load (local.get $w0)))
                (local.set $x1 (v128.load (local.get $w1)))
                (local.set $y0 (v128.load (local.get $t0)))
                (local.set $y1 (v128.load (local.get $t1)))
                (local.set $s00 (f64x2.add (local.get $s00) (f64x2.mul (local.get $x0) (local.get $y0))))
                (local.set $s01 (f64x2.add (local.get $s01) (f64x2.mul (local.get $x0) (local.get $y1))))
                (local.set $s10 (f64x2.add (local.get $s10) (f64x2.mul (local.get $x1) (local.get $y0))))
                (local.set $s11 (f64x2.add (local.get $s11) (f64x2.mul (local.get $x1) (local.get $y1))))
                (local.set $w0 (i32.add (local.get $w0) (i32.const 16)))
                (local.set $w1 (i32.add (local.get $w1) (i32.const 16)))
                (local.set $t0 (i32.add (local.get $t0) (i32.const 16)))
                (local.set $t1 (i32.add (local.get $t1) (i32.const 16)))
                (br $lj)))
            (local.set $r0 (f64.add (f64x2.extract_lane 0 (local.get $s00)) (f64x2.extract_lane 1 (local.get $s00))))
            (local.set $r1 (f64.add (f64x2.extract_lane 0 (local.get $s01)) (f64x2.extract_lane 1 (local.get $s01))))
            (local.set $r2 (f64.add (f64x2.extract_lane 0 (local.get $s10)) (f64x2.extract_lane 1 (local.get $s10))))
            (local.set $r3 (f64.add (f64x2.extract_lane 0 (local.get $s11)) (f64x2.extract_lane 1 (local.get $s11))))
            (if (i32.lt_u (local.get $w0) (local.get $end))
              (then
                (local.set $r0 (f64.add (local.get $r0) (f64.mul (f64.load (local.get $w0)) (f64.load (local.get $t0)))))
                (local.set $r1 (f64.add (local.get $r1) (f64.mul (f64.load (local.get $w0)) (f64.load (local.get $t1)))))
                (local.set $r2 (f64.add (local.get $r2) (f64.mul (f64.load (local.get $w1)) (f64.load (local.get $t0)))))
                (local.set $r3 (f64.add (local.get $r3) (f64.mul (f64.load (local.get $w1)) (f64.load (local.get $t1)))))))
            ;; A[a][c], A[a][c+1], A[a+1][c], A[a+1][c+1]
            (local.set $p (i32.add (local.get $A) (i32.add (i32.mul (local.get $a) (local.get $rb)) (i32.shl (local.get $c) (i32.const 3)))))
            (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (local.get $r0)))
            (f64.store offset=8 (local.get $p) (f64.add (f64.load offset=8 (local.get $p)) (local.get $r1)))
            (local.set $p (i32.add (local.get $p) (local.get $rb)))
            (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (local.get $r2)))
            (f64.store offset=8 (local.get $p) (f64.add (f64.load offset=8 (local.get $p)) (local.get $r3)))
            (local.set $c (i32.add (local.get $c) (i32.const 2)))
            (br $lc)))
        (local.set $a (i32.add (local.get $a) (i32.const 2)))
        (br $la))))
)
