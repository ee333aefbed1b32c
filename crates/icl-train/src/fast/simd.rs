//! The per-token kernels (dot product, sums, moments, axpy) written
//! once portably and once with AVX-512 / AVX2 intrinsics, all with the same arithmetic: 16 lanes,
//! the last partial block zero-padded (masked loads), separate multiply and add (never a fused
//! multiply-add), then a fixed pairwise tree. So every instruction set gives the same bits, and
//! the vector versions are whole-register loops (LLVM turned the portable form into 2-wide code).

/// Reduction kernels for one instruction set. Implementations other than [`Scalar`] may only be
/// used in code compiled for (and run on) their instruction set: the fast path instantiates them
/// only inside its `#[target_feature]` variants, chosen after run-time detection.
pub trait Kernels {
    /// `sum_i a[i] b[i]` over the common length.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `sum_i x[i]`.
    fn sum(x: &[f32]) -> f32;
    /// `sum_i (x[i] - mean)^2`.
    fn sq_dev(x: &[f32], mean: f32) -> f32;
    /// `y[i] += alpha * x[i]` over the common length (element-wise: the same bits everywhere).
    fn axpy(alpha: f32, x: &[f32], y: &mut [f32]);
    /// `y += w[j] * x(j)` for j = 0, 1, .. in that order: the bits of calling [`Kernels::axpy`]
    /// once per row, with `y` kept in registers between rows (a masked store followed by a
    /// masked load of the same lanes cannot be forwarded, which made the per-row calls stall).
    fn axpy_rows<'a>(w: &[f32], x: impl Fn(usize) -> &'a [f32], y: &mut [f32]) {
        for (j, wj) in w.iter().enumerate() {
            Self::axpy(*wj, x(j), y);
        }
    }
    /// `(sum_i x[i], sum_i x[i]^2, sum_i x[i] r[i])` in one pass over `x`.
    fn moments(x: &[f32], r: &[f32]) -> (f32, f32, f32);
}

pub const LANES: usize = 16;

/// The pairwise tree every variant uses: h = v[..8] + v[8..], q = h[..4] + h[4..],
/// r = q[..2] + q[2..], r[0] + r[1].
#[inline(always)]
fn tree(v: &[f32; LANES]) -> f32 {
    let h: [f32; 8] = std::array::from_fn(|l| v[l] + v[l + 8]);
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    let r = [q[0] + q[2], q[1] + q[3]];
    r[0] + r[1]
}

/// Lane-wise accumulation of `f(i)` over `0..n` in 16 lanes; lanes past `n` in the last block
/// add 0.0 (exactly what the masked vector loads do).
#[inline(always)]
fn lanes(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    for c in (0..n).step_by(LANES) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += if c + l < n { f(c + l) } else { 0.0 };
        }
    }
    tree(&acc)
}

pub struct Scalar;

impl Kernels for Scalar {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        lanes(n, |i| a[i] * b[i])
    }

    #[inline(always)]
    fn sum(x: &[f32]) -> f32 {
        lanes(x.len(), |i| x[i])
    }

    #[inline(always)]
    fn sq_dev(x: &[f32], mean: f32) -> f32 {
        lanes(x.len(), |i| {
            let v = x[i] - mean;
            v * v
        })
    }

    #[inline(always)]
    fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            let p = alpha * *x;
            *y += p;
        }
    }

    #[inline(always)]
    fn moments(x: &[f32], r: &[f32]) -> (f32, f32, f32) {
        let n = x.len().min(r.len());
        (
            Self::sum(&x[..n]),
            lanes(n, |i| x[i] * x[i]),
            Self::dot(x, r),
        )
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Kernels, LANES};
    use std::arch::x86_64::*;

    pub struct Avx512;
    pub struct Avx2;

    // The trees below reproduce `super::tree` lane for lane.

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn tree512(v: __m512) -> f32 {
        let h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
        // SAFETY: AVX2 is enabled on this function.
        unsafe { tree256(h) }
    }

    /// Tree of the 8 lanes of `h` (already h[l] = v[l] + v[l+8]).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn tree256(h: __m256) -> f32 {
        let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let r = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(r, _mm_shuffle_ps::<1>(r, r)))
    }

    /// Mask of the first `rem` lanes (1 <= rem <= 16).
    #[inline(always)]
    fn mask16(rem: usize) -> u16 {
        if rem >= LANES {
            u16::MAX
        } else {
            (1u16 << rem) - 1
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn dot512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = _mm512_setzero_ps();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // Whole blocks unmasked, then the masked tail: the same additions in the same order
        // as masking every block (a mask per block cost ~12% of the transformer's forward).
        let mut c = 0;
        while c + LANES <= n {
            // SAFETY: lanes c..c+16 are inside both slices.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(c)), _mm512_loadu_ps(pb.add(c))) };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(x, y));
            c += LANES;
        }
        if c < n {
            let k = mask16(n - c);
            // SAFETY: masked loads touch only lanes c..n of both slices.
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_ps(k, pa.add(c)),
                    _mm512_maskz_loadu_ps(k, pb.add(c)),
                )
            };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(x, y));
        }
        // SAFETY: features enabled on this function.
        unsafe { tree512(acc) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn sum512(x: &[f32]) -> f32 {
        let n = x.len();
        let mut acc = _mm512_setzero_ps();
        let mut c = 0;
        while c < n {
            // SAFETY: the masked load touches only lanes c..n.
            acc = _mm512_add_ps(acc, unsafe {
                _mm512_maskz_loadu_ps(mask16(n - c), x.as_ptr().add(c))
            });
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { tree512(acc) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn sq_dev512(x: &[f32], mean: f32) -> f32 {
        let n = x.len();
        let mu = _mm512_set1_ps(mean);
        let mut acc = _mm512_setzero_ps();
        let mut c = 0;
        while c < n {
            let k = mask16(n - c);
            // SAFETY: the masked load touches only lanes c..n; masked lanes become 0.
            let v = _mm512_maskz_sub_ps(
                k,
                unsafe { _mm512_maskz_loadu_ps(k, x.as_ptr().add(c)) },
                mu,
            );
            acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { tree512(acc) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn axpy512(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let a = _mm512_set1_ps(alpha);
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let mut c = 0;
        while c + LANES <= n {
            // SAFETY: lanes c..c+16 are inside both slices.
            unsafe {
                let v = _mm512_add_ps(
                    _mm512_loadu_ps(py.add(c)),
                    _mm512_mul_ps(a, _mm512_loadu_ps(px.add(c))),
                );
                _mm512_storeu_ps(py.add(c), v);
            }
            c += LANES;
        }
        if c < n {
            let k = mask16(n - c);
            // SAFETY: masked loads and stores touch only lanes c..n of both slices.
            unsafe {
                let v = _mm512_add_ps(
                    _mm512_maskz_loadu_ps(k, py.add(c)),
                    _mm512_mul_ps(a, _mm512_maskz_loadu_ps(k, px.add(c))),
                );
                _mm512_mask_storeu_ps(py.add(c), k, v);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn axpy256(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let a = _mm256_set1_ps(alpha);
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let mut c = 0;
        while c < n {
            // SAFETY: masked loads and stores touch only lanes c..n of both slices.
            unsafe {
                let (m0, m1) = masks8(n - c);
                let v = _mm256_add_ps(
                    _mm256_maskload_ps(py.add(c), m0),
                    _mm256_mul_ps(a, _mm256_maskload_ps(px.add(c), m0)),
                );
                _mm256_maskstore_ps(py.add(c), m0, v);
                let v = _mm256_add_ps(
                    _mm256_maskload_ps(py.add(c + 8), m1),
                    _mm256_mul_ps(a, _mm256_maskload_ps(px.add(c + 8), m1)),
                );
                _mm256_maskstore_ps(py.add(c + 8), m1, v);
            }
            c += LANES;
        }
    }

    /// [`Kernels::axpy_rows`] on 64-float chunks of `y` held in four registers.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn axpy_rows512<'a>(w: &[f32], x: impl Fn(usize) -> &'a [f32], y: &mut [f32]) {
        let n = y.len();
        let py = y.as_mut_ptr();
        for c0 in (0..n).step_by(4 * LANES) {
            let k: [u16; 4] = std::array::from_fn(|v| {
                let c = c0 + v * LANES;
                if c < n {
                    mask16(n - c)
                } else {
                    0
                }
            });
            // SAFETY: masked loads and stores touch only lanes < n of y and of each row (every
            // row is checked to be at least as long as y).
            unsafe {
                let mut acc: [__m512; 4] =
                    std::array::from_fn(|v| _mm512_maskz_loadu_ps(k[v], py.add(c0 + v * LANES)));
                for (j, wj) in w.iter().enumerate() {
                    let xr = x(j);
                    assert!(xr.len() >= n);
                    let a = _mm512_set1_ps(*wj);
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm512_maskz_loadu_ps(k[v], xr.as_ptr().add(c0 + v * LANES));
                        *acc = _mm512_add_ps(*acc, _mm512_mul_ps(a, xv));
                    }
                }
                for (v, acc) in acc.iter().enumerate() {
                    _mm512_mask_storeu_ps(py.add(c0 + v * LANES), k[v], *acc);
                }
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn moments512(x: &[f32], r: &[f32]) -> (f32, f32, f32) {
        let n = x.len().min(r.len());
        let (mut s1, mut s2, mut sr) = (
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
        );
        let mut c = 0;
        while c < n {
            // SAFETY: whole blocks load lanes c..c+16, inside both slices; the tail's masked
            // loads touch only lanes c..n (same sums as masking every block).
            let (v, w) = unsafe {
                if c + LANES <= n {
                    (
                        _mm512_loadu_ps(x.as_ptr().add(c)),
                        _mm512_loadu_ps(r.as_ptr().add(c)),
                    )
                } else {
                    let k = mask16(n - c);
                    (
                        _mm512_maskz_loadu_ps(k, x.as_ptr().add(c)),
                        _mm512_maskz_loadu_ps(k, r.as_ptr().add(c)),
                    )
                }
            };
            s1 = _mm512_add_ps(s1, v);
            s2 = _mm512_add_ps(s2, _mm512_mul_ps(v, v));
            sr = _mm512_add_ps(sr, _mm512_mul_ps(v, w));
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { (tree512(s1), tree512(s2), tree512(sr)) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn moments256(x: &[f32], r: &[f32]) -> (f32, f32, f32) {
        let n = x.len().min(r.len());
        let z = _mm256_setzero_ps();
        let (mut s1, mut s2, mut sr) = ([z, z], [z, z], [z, z]);
        let mut c = 0;
        while c < n {
            // SAFETY: masked loads touch only lanes c..n of both slices.
            unsafe {
                let (m0, m1) = masks8(n - c);
                for (h, m) in [(0usize, m0), (1, m1)] {
                    let v = _mm256_maskload_ps(x.as_ptr().add(c + 8 * h), m);
                    let w = _mm256_maskload_ps(r.as_ptr().add(c + 8 * h), m);
                    s1[h] = _mm256_add_ps(s1[h], v);
                    s2[h] = _mm256_add_ps(s2[h], _mm256_mul_ps(v, v));
                    sr[h] = _mm256_add_ps(sr[h], _mm256_mul_ps(v, w));
                }
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe {
            (
                tree256(_mm256_add_ps(s1[0], s1[1])),
                tree256(_mm256_add_ps(s2[0], s2[1])),
                tree256(_mm256_add_ps(sr[0], sr[1])),
            )
        }
    }

    /// AVX2 lane masks for lanes c..n of a 16-lane block: (lanes 0-7, lanes 8-15).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn masks8(rem: usize) -> (__m256i, __m256i) {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let r = rem.min(LANES) as i32;
        (
            _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(r - 8), idx),
        )
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dot256(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut c = 0;
        while c < n {
            // SAFETY: masked loads touch only lanes c..n of both slices.
            unsafe {
                let (m0, m1) = masks8(n - c);
                lo = _mm256_add_ps(
                    lo,
                    _mm256_mul_ps(
                        _mm256_maskload_ps(pa.add(c), m0),
                        _mm256_maskload_ps(pb.add(c), m0),
                    ),
                );
                hi = _mm256_add_ps(
                    hi,
                    _mm256_mul_ps(
                        _mm256_maskload_ps(pa.add(c + 8), m1),
                        _mm256_maskload_ps(pb.add(c + 8), m1),
                    ),
                );
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { tree256(_mm256_add_ps(lo, hi)) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum256(x: &[f32]) -> f32 {
        let n = x.len();
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c < n {
            // SAFETY: masked loads touch only lanes c..n.
            unsafe {
                let (m0, m1) = masks8(n - c);
                lo = _mm256_add_ps(lo, _mm256_maskload_ps(x.as_ptr().add(c), m0));
                hi = _mm256_add_ps(hi, _mm256_maskload_ps(x.as_ptr().add(c + 8), m1));
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { tree256(_mm256_add_ps(lo, hi)) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sq_dev256(x: &[f32], mean: f32) -> f32 {
        let n = x.len();
        let mu = _mm256_set1_ps(mean);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c < n {
            // SAFETY: masked loads touch only lanes c..n; masked lanes are zeroed after the
            // subtraction.
            unsafe {
                let (m0, m1) = masks8(n - c);
                let v = _mm256_and_ps(
                    _mm256_sub_ps(_mm256_maskload_ps(x.as_ptr().add(c), m0), mu),
                    _mm256_castsi256_ps(m0),
                );
                lo = _mm256_add_ps(lo, _mm256_mul_ps(v, v));
                let v = _mm256_and_ps(
                    _mm256_sub_ps(_mm256_maskload_ps(x.as_ptr().add(c + 8), m1), mu),
                    _mm256_castsi256_ps(m1),
                );
                hi = _mm256_add_ps(hi, _mm256_mul_ps(v, v));
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        unsafe { tree256(_mm256_add_ps(lo, hi)) }
    }

    // SAFETY (all ten): these are only instantiated inside the `#[target_feature]` variants of the
    // fast path, which run only after `Isa::detect` found the features.
    impl Kernels for Avx512 {
        #[inline(always)]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            unsafe { dot512(a, b) }
        }
        #[inline(always)]
        fn sum(x: &[f32]) -> f32 {
            unsafe { sum512(x) }
        }
        #[inline(always)]
        fn sq_dev(x: &[f32], mean: f32) -> f32 {
            unsafe { sq_dev512(x, mean) }
        }
        #[inline(always)]
        fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
            unsafe { axpy512(alpha, x, y) }
        }
        #[inline(always)]
        fn axpy_rows<'a>(w: &[f32], x: impl Fn(usize) -> &'a [f32], y: &mut [f32]) {
            unsafe { axpy_rows512(w, x, y) }
        }
        #[inline(always)]
        fn moments(x: &[f32], r: &[f32]) -> (f32, f32, f32) {
            unsafe { moments512(x, r) }
        }
    }

    impl Kernels for Avx2 {
        #[inline(always)]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            unsafe { dot256(a, b) }
        }
        #[inline(always)]
        fn sum(x: &[f32]) -> f32 {
            unsafe { sum256(x) }
        }
        #[inline(always)]
        fn sq_dev(x: &[f32], mean: f32) -> f32 {
            unsafe { sq_dev256(x, mean) }
        }
        #[inline(always)]
        fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
            unsafe { axpy256(alpha, x, y) }
        }
        #[inline(always)]
        fn moments(x: &[f32], r: &[f32]) -> (f32, f32, f32) {
            unsafe { moments256(x, r) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All variants give identical bits on lengths with and without a partial block.
    #[test]
    fn variants_agree_bitwise() {
        for n in [0usize, 1, 15, 16, 17, 63, 65, 80, 512] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 377.0)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 104729 % 997) as f32 - 480.0) / 411.0)
                .collect();
            let want = (
                Scalar::dot(&a, &b),
                Scalar::sum(&a),
                Scalar::sq_dev(&a, 0.3),
            );
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((want.0 as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
            let exact_sq: f64 = a.iter().map(|x| (*x as f64 - 0.3).powi(2)).sum();
            assert!((want.2 as f64 - exact_sq).abs() < 1e-4 * (1.0 + exact_sq));
            #[cfg(target_arch = "x86_64")]
            {
                let mut y0 = b.clone();
                Scalar::axpy(0.7, &a, &mut y0);
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert_eq!(
                        (Avx2::dot(&a, &b), Avx2::sum(&a), Avx2::sq_dev(&a, 0.3)),
                        want,
                        "avx2, n={n}"
                    );
                    let mut y = b.clone();
                    Avx2::axpy(0.7, &a, &mut y);
                    assert_eq!(y, y0);
                    assert_eq!(Avx2::moments(&a, &b), Scalar::moments(&a, &b));
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    assert_eq!(
                        (
                            Avx512::dot(&a, &b),
                            Avx512::sum(&a),
                            Avx512::sq_dev(&a, 0.3)
                        ),
                        want,
                        "avx512, n={n}"
                    );
                    let mut y = b.clone();
                    Avx512::axpy(0.7, &a, &mut y);
                    assert_eq!(y, y0);
                    assert_eq!(Avx512::moments(&a, &b), Scalar::moments(&a, &b));
                }
            }
        }
    }

    /// `axpy_rows` (accumulator in registers) gives the bits of one `axpy` per row, on every
    /// variant, for lengths around the 16- and 64-lane edges.
    #[test]
    fn axpy_rows_equals_axpy_per_row() {
        for d in [1usize, 15, 16, 17, 63, 64, 65, 130] {
            let rows: Vec<Vec<f32>> = (0..7)
                .map(|j| {
                    (0..d)
                        .map(|i| (((i + 31 * j) * 7919 % 1013) as f32 - 500.0) / 377.0)
                        .collect()
                })
                .collect();
            let w: Vec<f32> = (0..7).map(|j| (j as f32 - 3.3) / 2.7).collect();
            let y0: Vec<f32> = (0..d).map(|i| (i as f32).sin()).collect();
            let mut want = y0.clone();
            for (j, wj) in w.iter().enumerate() {
                Scalar::axpy(*wj, &rows[j], &mut want);
            }
            let mut got = y0.clone();
            Scalar::axpy_rows(&w, |j| &rows[j], &mut got);
            assert_eq!(got, want, "scalar, d={d}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    let mut got = y0.clone();
                    Avx2::axpy_rows(&w, |j| &rows[j], &mut got);
                    assert_eq!(got, want, "avx2, d={d}");
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    let mut got = y0.clone();
                    Avx512::axpy_rows(&w, |j| &rows[j], &mut got);
                    assert_eq!(got, want, "avx512, d={d}");
                }
            }
        }
    }
}
