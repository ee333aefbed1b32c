//! The reductions of the per-token loops (dot product, sum, sum of squared deviations) written
//! once portably and once with AVX-512 / AVX2 intrinsics, all in the same order: 16 lanes
//! accumulated with separate multiply and add (never a fused multiply-add), reduced by a fixed
//! pairwise tree, then the remainder added in sequence. So every instruction set gives the same
//! bits, and the vector versions are whole-register loops (LLVM's auto-vectorizer turned the
//! portable form into 2-wide code).

/// Reduction kernels for one instruction set. Implementations other than [`Scalar`] may only be
/// used in code compiled for (and run on) their instruction set: the fast path instantiates them
/// only inside its `#[target_feature]` variants, chosen after run-time detection.
pub trait Kernels {
    /// `sum_i a[i] b[i]` over the common length.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `sum_i x[i]`.
    fn sum(x: &[f32]) -> f32;
    /// `sum_i ((t[i] - mean) m[i])^2` over the common length.
    fn sq_dev(t: &[f32], m: &[f32], mean: f32) -> f32;
}

pub const LANES: usize = 16;

/// The pairwise tree every variant uses: h = v[..8] + v[8..], q = h[..4] + h[4..],
/// r = q[..2] + q[2..], r[0] + r[1].
#[inline(always)]
fn tree(v: &[f32; LANES]) -> f32 {
    let mut h = [0f32; 8];
    for l in 0..8 {
        h[l] = v[l] + v[l + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    let r = [q[0] + q[2], q[1] + q[3]];
    r[0] + r[1]
}

pub struct Scalar;

impl Kernels for Scalar {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let full = n / LANES * LANES;
        let mut acc = [0f32; LANES];
        for c in (0..full).step_by(LANES) {
            for l in 0..LANES {
                let p = a[c + l] * b[c + l];
                acc[l] += p;
            }
        }
        let mut s = tree(&acc);
        for i in full..n {
            let p = a[i] * b[i];
            s += p;
        }
        s
    }

    #[inline(always)]
    fn sum(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let mut acc = [0f32; LANES];
        for c in (0..full).step_by(LANES) {
            for l in 0..LANES {
                acc[l] += x[c + l];
            }
        }
        let mut s = tree(&acc);
        for v in &x[full..] {
            s += *v;
        }
        s
    }

    #[inline(always)]
    fn sq_dev(t: &[f32], m: &[f32], mean: f32) -> f32 {
        let n = t.len().min(m.len());
        let full = n / LANES * LANES;
        let mut acc = [0f32; LANES];
        for c in (0..full).step_by(LANES) {
            for l in 0..LANES {
                let v = (t[c + l] - mean) * m[c + l];
                let p = v * v;
                acc[l] += p;
            }
        }
        let mut s = tree(&acc);
        for i in full..n {
            let v = (t[i] - mean) * m[i];
            let p = v * v;
            s += p;
        }
        s
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

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn dot512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let full = n / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= len of both slices.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(c)), _mm512_loadu_ps(pb.add(c))) };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(x, y));
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree512(acc) };
        for i in full..n {
            let p = a[i] * b[i];
            s += p;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn sum512(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= x.len().
            acc = _mm512_add_ps(acc, unsafe { _mm512_loadu_ps(x.as_ptr().add(c)) });
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree512(acc) };
        for v in &x[full..] {
            s += *v;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    unsafe fn sq_dev512(t: &[f32], m: &[f32], mean: f32) -> f32 {
        let n = t.len().min(m.len());
        let full = n / LANES * LANES;
        let mu = _mm512_set1_ps(mean);
        let mut acc = _mm512_setzero_ps();
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= len of both slices.
            let (x, w) = unsafe { (_mm512_loadu_ps(t.as_ptr().add(c)), _mm512_loadu_ps(m.as_ptr().add(c))) };
            let v = _mm512_mul_ps(_mm512_sub_ps(x, mu), w);
            acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree512(acc) };
        for i in full..n {
            let v = (t[i] - mean) * m[i];
            let p = v * v;
            s += p;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dot256(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let full = n / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= len of both slices.
            unsafe {
                lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(pa.add(c)), _mm256_loadu_ps(pb.add(c))));
                hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(pa.add(c + 8)), _mm256_loadu_ps(pb.add(c + 8))));
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree256(_mm256_add_ps(lo, hi)) };
        for i in full..n {
            let p = a[i] * b[i];
            s += p;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum256(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= x.len().
            unsafe {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(x.as_ptr().add(c)));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(x.as_ptr().add(c + 8)));
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree256(_mm256_add_ps(lo, hi)) };
        for v in &x[full..] {
            s += *v;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sq_dev256(t: &[f32], m: &[f32], mean: f32) -> f32 {
        let n = t.len().min(m.len());
        let full = n / LANES * LANES;
        let mu = _mm256_set1_ps(mean);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c < full {
            // SAFETY: c + 16 <= full <= len of both slices.
            unsafe {
                let v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(t.as_ptr().add(c)), mu), _mm256_loadu_ps(m.as_ptr().add(c)));
                lo = _mm256_add_ps(lo, _mm256_mul_ps(v, v));
                let v = _mm256_mul_ps(
                    _mm256_sub_ps(_mm256_loadu_ps(t.as_ptr().add(c + 8)), mu),
                    _mm256_loadu_ps(m.as_ptr().add(c + 8)),
                );
                hi = _mm256_add_ps(hi, _mm256_mul_ps(v, v));
            }
            c += LANES;
        }
        // SAFETY: features enabled on this function.
        let mut s = unsafe { tree256(_mm256_add_ps(lo, hi)) };
        for i in full..n {
            let v = (t[i] - mean) * m[i];
            let p = v * v;
            s += p;
        }
        s
    }

    // SAFETY (all six): these are only instantiated inside the `#[target_feature]` variants of the
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
        fn sq_dev(t: &[f32], m: &[f32], mean: f32) -> f32 {
            unsafe { sq_dev512(t, m, mean) }
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
        fn sq_dev(t: &[f32], m: &[f32], mean: f32) -> f32 {
            unsafe { sq_dev256(t, m, mean) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All variants give identical bits on lengths with and without a remainder.
    #[test]
    fn variants_agree_bitwise() {
        for n in [0usize, 1, 15, 16, 17, 63, 65, 80, 512] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 377.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 104729 % 997) as f32 - 480.0) / 411.0).collect();
            let m: Vec<f32> = (0..n).map(|i| if i % 5 == 4 { 0.0 } else { 1.0 }).collect();
            let want = (Scalar::dot(&a, &b), Scalar::sum(&a), Scalar::sq_dev(&a, &m, 0.3));
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((want.0 as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert_eq!((Avx2::dot(&a, &b), Avx2::sum(&a), Avx2::sq_dev(&a, &m, 0.3)), want, "avx2, n={n}");
                }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
                    assert_eq!((Avx512::dot(&a, &b), Avx512::sum(&a), Avx512::sq_dev(&a, &m, 0.3)), want, "avx512, n={n}");
                }
            }
        }
    }
}
