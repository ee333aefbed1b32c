//! Standard normal draws for item vectors: a 128-layer ziggurat (Marsaglia & Tsang 2000) that
//! needs one 32-bit word per draw on its fast path (~98.8% of draws).
//!
//! Why not `rand_distr::StandardNormal`: at K = inf the sampler draws (N-1)*D fresh normals per
//! sequence (~0.8 M per batch of 128 at N = 100); rand_distr's f64 ziggurat consumes a 64-bit word
//! and costs ~5 ns per draw here, which made data generation as slow as a training step. This one
//! uses separate bits for the layer (7), the sign (1) and the abscissa (24), so, unlike the
//! original RNOR, the layer choice and the value are independent.

use std::sync::OnceLock;

use rand::{Rng, RngCore};

const LAYERS: usize = 128;
/// Right edge of the base layer, and the volume of each layer, for 128 layers.
const R: f64 = 3.442619855899;
const V: f64 = 9.91256303526217e-3;
/// The abscissa has 24 bits.
const M1: f64 = (1u32 << 24) as f64;

struct Tables {
    /// Accept `m` at once when `m < k[i]` (the draw lies inside the layer's inner rectangle).
    k: [u32; LAYERS],
    /// x = m * w[i].
    w: [f64; LAYERS],
    /// f[i] = exp(-x_i^2 / 2) at the layer's right edge.
    f: [f64; LAYERS],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tables {
            k: [0; LAYERS],
            w: [0.0; LAYERS],
            f: [0.0; LAYERS],
        };
        let mut dn = R;
        let mut tn = R;
        let q = V / (-0.5 * dn * dn).exp();
        t.k[0] = ((dn / q) * M1) as u32;
        t.k[1] = 0;
        t.w[0] = q / M1;
        t.w[LAYERS - 1] = dn / M1;
        t.f[0] = 1.0;
        t.f[LAYERS - 1] = (-0.5 * dn * dn).exp();
        for i in (1..LAYERS - 1).rev() {
            dn = (-2.0 * (V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            t.k[i + 1] = ((dn / tn) * M1) as u32;
            tn = dn;
            t.f[i] = (-0.5 * dn * dn).exp();
            t.w[i] = dn / M1;
        }
        t
    })
}

/// Uniform in the open interval (0, 1), from 53 random bits.
#[inline]
fn open01<R: RngCore>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Applies the sign bit (bit 7 of `u`) without a branch: the sign is a coin flip, and a
/// mispredicted branch per draw cost more than the rest of the fast path.
#[inline(always)]
fn signed(x: f64, u: u32) -> f64 {
    f64::from_bits(x.to_bits() | (((u & 0x80) as u64) << 56))
}

/// The rare paths for a word `u` that missed its layer's inner rectangle (~2.8% of words):
/// the tail beyond R for the base layer, the wedge test otherwise, and a fresh draw on rejection.
#[cold]
#[inline(never)]
fn slow<G: RngCore>(rng: &mut G, t: &Tables, u: u32) -> f64 {
    let i = (u & 0x7f) as usize;
    if i == 0 {
        // Tail beyond R (Marsaglia 1964).
        loop {
            let x = -open01(rng).ln() / R;
            let y = -open01(rng).ln();
            if y + y >= x * x {
                return signed(R + x, u);
            }
        }
    }
    let x = (u >> 8) as f64 * t.w[i];
    if t.f[i] + open01(rng) * (t.f[i - 1] - t.f[i]) < (-0.5 * x * x).exp() {
        signed(x, u)
    } else {
        draw(rng, t)
    }
}

/// One standard normal draw from fresh words.
fn draw<G: RngCore>(rng: &mut G, t: &Tables) -> f64 {
    let u = rng.next_u32();
    let (i, m) = ((u & 0x7f) as usize, u >> 8);
    if m < t.k[i] {
        signed(m as f64 * t.w[i], u)
    } else {
        slow(rng, t, u)
    }
}

/// Fills `out` with i.i.d. N(0, scale^2) draws (f32).
///
/// Hot path (the sampler draws ~0.8 M per batch at K = inf): words come 64 at a time (one
/// ChaCha block); a branch-free pass writes every draw as if it hit its inner rectangle, with the
/// scale folded into an f32 copy of the layer widths, and records the misses in a bit mask; the
/// few misses (~2.8%) are then redone exactly on the slow path.
pub(crate) fn fill_normal<G: RngCore>(rng: &mut G, out: &mut [f32], scale: f64) {
    let t = tables();
    let ws: [f32; LAYERS] = std::array::from_fn(|i| (t.w[i] * scale) as f32);
    let mut words = [0u32; 64];
    for chunk in out.chunks_mut(64) {
        let words = &mut words[..chunk.len()];
        rng.fill(words);
        let mut miss = 0u64;
        for (j, (v, &u)) in chunk.iter_mut().zip(words.iter()).enumerate() {
            let (i, m) = ((u & 0x7f) as usize, u >> 8);
            let x = (m as f32) * ws[i];
            *v = f32::from_bits(x.to_bits() | ((u & 0x80) << 24));
            miss |= ((m >= t.k[i]) as u64) << j;
        }
        while miss != 0 {
            let j = miss.trailing_zeros() as usize;
            chunk[j] = (slow(rng, t, words[j]) * scale) as f32;
            miss &= miss - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Complementary error function, fractional error < 1.2e-7 (Numerical Recipes' erfcc).
    fn erfc(x: f64) -> f64 {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let ans = t
            * (-z * z - 1.26551223
                + t * (1.00002368
                    + t * (0.37409196
                        + t * (0.09678418
                            + t * (-0.18628806
                                + t * (0.27886807
                                    + t * (-1.13520398
                                        + t * (1.48851587
                                            + t * (-0.82215223 + t * 0.17087277)))))))))
                .exp();
        if x >= 0.0 {
            ans
        } else {
            2.0 - ans
        }
    }

    fn phi(x: f64) -> f64 {
        0.5 * erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn tables_are_consistent() {
        let t = tables();
        // The recursion must land on the top layer: x_1 small, f decreasing, k in range.
        assert!(t.w[1] * M1 < 0.3, "x_1 = {}", t.w[1] * M1);
        for i in 1..LAYERS {
            assert!(t.f[i] < t.f[i - 1]);
            assert!((t.k[i] as f64) < M1);
        }
        assert!((t.w[LAYERS - 1] * M1 - R).abs() < 1e-12);
    }

    #[test]
    fn matches_the_normal_distribution() {
        let mut rng = crate::rng_for(99, 12345);
        let n = 4_000_000usize;
        let mut xs = vec![0f32; n];
        fill_normal(&mut rng, &mut xs, 1.0);
        let mean = xs.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
        let m2 = xs.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n as f64;
        let m4 = xs.iter().map(|v| (*v as f64).powi(4)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.003, "mean {mean}");
        assert!((m2 - 1.0).abs() < 0.004, "variance {m2}");
        assert!((m4 - 3.0).abs() < 0.03, "fourth moment {m4}");
        // Empirical CDF against Phi on a grid that crosses every regime (inner rectangles,
        // wedges, the tail beyond R = 3.44): within 5 binomial standard deviations.
        let mut sorted = xs.clone();
        sorted.sort_by(f32::total_cmp);
        let mut x = -4.5;
        while x <= 4.5 {
            let p = phi(x);
            let count = sorted.partition_point(|v| (*v as f64) < x) as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (count - n as f64 * p).abs() < 5.0 * sd + 1.0,
                "CDF at {x}: {} vs {}",
                count / n as f64,
                p
            );
            x += 0.125;
        }
        // Sign and magnitude are independent of each other and of the layer bits.
        let pos_big = xs.iter().filter(|v| **v > 2.0).count() as f64;
        let neg_big = xs.iter().filter(|v| **v < -2.0).count() as f64;
        assert!((pos_big - neg_big).abs() < 5.0 * (pos_big + neg_big).sqrt());
    }
}
