//! Standard normal draws for item vectors: a 128-layer ziggurat (Marsaglia & Tsang 2000) that
//! needs one 32-bit word per draw on its fast path (~97.2% of draws).
//!
//! Two generators share the tables: [`fill_normal`] on a ChaCha8Rng (item sets: training items,
//! novel items; unchanged) and [`KinfNormals`] (the K = inf training sampler's fresh items; SIMD,
//! see the section below for why it exists and how it stays deterministic).
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
/// Words come 64 at a time (one ChaCha block); a branch-free pass writes every draw as if it hit its inner rectangle, with the
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

// ---------------------------------------------------------------------------------------------
// The K = inf generator.
//
// At K = inf the sampler draws (N-1)*D normals per sequence (~0.8 M per batch at N = 100), and
// with `fill_normal` on the ChaCha8Rng that cost as much as the training step (2.4 ms per batch
// here; the step is 0.7-2.3 ms). Reproducing the ChaCha8Rng word stream with AVX-512 ChaCha and a
// SIMD fast pass (tried first; same stream) only halved it: ChaCha8 alone is ~1 cycle per word,
// and the scalar slow path (2.8% of draws, libm exp) cost as much again. So:
// - words: each sequence seeds 16 xoshiro128++ lanes (Blackman & Vigna) from 64 ChaCha8 words of
//   the sampler's stream; a lane step gives 16 words for ~10 vector ops. Everything random still
//   derives from the ChaCha8 stream, and the sampler's resumable state is still its word position
//   (lanes live within one sequence).
// - values: the same 128-layer ziggurat (tables above), fast pass branch-free on 16 draws at a
//   time; the misses are queued and resolved together, 16 at a time, branch-free (wedge test with
//   a polynomial exp, redraws), and the rare base-layer tail on a scalar path.
// Every kernel is integer arithmetic, table lookups and IEEE f32 +, -, *, / in a fixed order
// (Rust never contracts them into FMAs; no libm), so the AVX-512, AVX2 and portable variants,
// and any x86-64 machine, give identical bits (tested by forcing each variant).

/// Instruction set of the K = inf generator's kernels (chosen at run time; the crate is built
/// for baseline x86-64). The same pattern as icl-train's `fast::isa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Portable,
}

/// Tests (through `Sampler::force_portable_kernels`) force the portable kernels process-wide.
static FORCE_PORTABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn force_portable(on: bool) {
    FORCE_PORTABLE.store(on, std::sync::atomic::Ordering::SeqCst);
}

impl Isa {
    pub(crate) fn detect() -> Self {
        if FORCE_PORTABLE.load(std::sync::atomic::Ordering::SeqCst) {
            return Isa::Portable;
        }
        *Isa::available()
            .last()
            .expect("portable is always available")
    }

    /// Every kernel this CPU can run, slowest first (portable always).
    pub(crate) fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            // The features each kernel's `target_feature` list enables.
            if has!("avx2") && has!("fma") && has!("popcnt") && has!("bmi1") {
                v.push(Isa::Avx2);
                if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
                    v.push(Isa::Avx512);
                }
            }
        }
        v
    }

    fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// Draws one sequence's normals with one kernel (see [`kinf_kernels`]).
pub type KinfDraw = Box<dyn FnMut()>;

/// One K = inf generator per kernel this CPU can run (portable always; AVX2 and AVX-512 where
/// present), named, each a call that draws one sequence of `len` normals as the sampler does (new
/// seed words from the ChaCha8 stream, then the lanes). For `icl-train bench`, which times them:
/// all draw the same bits, so only their speed differs.
pub fn kinf_kernels(len: usize) -> Vec<(&'static str, KinfDraw)> {
    Isa::available()
        .into_iter()
        .map(|isa| {
            let mut rng = crate::rng_for(1, 3);
            let mut g = KinfNormals::new(isa);
            let mut words = [0u32; SEED_WORDS];
            let mut out = vec![0f32; len];
            let call = move || {
                rng.fill(&mut words);
                g.fill(&words, &mut out, 0.126);
                std::hint::black_box(&out);
            };
            (isa.name(), Box::new(call) as KinfDraw)
        })
        .collect()
}

/// xoshiro128++ lanes, and draws per vector.
const LANES: usize = 16;
type Lanes = [[u32; LANES]; 4];

/// ChaCha8 words that seed one sequence's lanes.
pub(crate) const SEED_WORDS: usize = 4 * LANES;

/// One step of the 16 xoshiro128++ lanes: 16 words.
#[inline(always)]
fn lanes_next(s: &mut Lanes) -> [u32; LANES] {
    let mut out = [0u32; LANES];
    for l in 0..LANES {
        out[l] = s[0][l]
            .wrapping_add(s[3][l])
            .rotate_left(7)
            .wrapping_add(s[0][l]);
        let t = s[1][l] << 9;
        s[2][l] ^= s[0][l];
        s[3][l] ^= s[1][l];
        s[1][l] ^= s[2][l];
        s[0][l] ^= s[3][l];
        s[2][l] ^= t;
        s[3][l] = s[3][l].rotate_left(11);
    }
    out
}

/// The 16 lanes in AVX-512 registers, one per state row.
#[cfg(target_arch = "x86_64")]
type Lanes512 = [std::arch::x86_64::__m512i; 4];

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn lanes_load512(s: &Lanes) -> Lanes512 {
    use std::arch::x86_64::*;
    // SAFETY: reads one 16-lane state row.
    std::array::from_fn(|r| unsafe { _mm512_loadu_si512(s[r].as_ptr() as *const _) })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn lanes_store512(v: &Lanes512, s: &mut Lanes) {
    use std::arch::x86_64::*;
    for (row, x) in s.iter_mut().zip(v) {
        // SAFETY: stores one 16-lane state row.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr() as *mut _, *x) };
    }
}

/// [`lanes_next`] on AVX-512: the 16 lanes' words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn lanes_next512(v: &mut Lanes512) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let [s0, s1, s2, s3] = *v;
    let u = _mm512_add_epi32(_mm512_rol_epi32::<7>(_mm512_add_epi32(s0, s3)), s0);
    let tt = _mm512_slli_epi32::<9>(s1);
    let s2 = _mm512_xor_si512(s2, s0);
    let s3 = _mm512_xor_si512(s3, s1);
    let s1 = _mm512_xor_si512(s1, s2);
    let s0 = _mm512_xor_si512(s0, s3);
    let s2 = _mm512_xor_si512(s2, tt);
    *v = [s0, s1, s2, _mm512_rol_epi32::<11>(s3)];
    u
}

/// The 16 lanes in AVX2 registers: two 8-lane halves (lanes 8h .. 8h + 8) per state row.
#[cfg(target_arch = "x86_64")]
type Lanes256 = [[std::arch::x86_64::__m256i; 2]; 4];

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_load256(s: &Lanes) -> Lanes256 {
    use std::arch::x86_64::*;
    // SAFETY: reads 8 lanes inside a 16-lane state row.
    std::array::from_fn(|r| {
        std::array::from_fn(|h| unsafe {
            _mm256_loadu_si256(s[r].as_ptr().add(8 * h) as *const __m256i)
        })
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_store256(v: &Lanes256, s: &mut Lanes) {
    use std::arch::x86_64::*;
    for (row, halves) in s.iter_mut().zip(v) {
        for (h, x) in halves.iter().enumerate() {
            // SAFETY: stores 8 lanes inside a 16-lane state row.
            unsafe { _mm256_storeu_si256(row.as_mut_ptr().add(8 * h) as *mut __m256i, *x) };
        }
    }
}

/// [`lanes_next`] on AVX2 for half `h` (lanes 8h .. 8h + 8): their 8 words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn lanes_next256(v: &mut Lanes256, h: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    // No vector rotate before AVX-512; r is a constant after inlining.
    let rotl = |x: __m256i, r: i32| -> __m256i {
        _mm256_or_si256(
            _mm256_sll_epi32(x, _mm_cvtsi32_si128(r)),
            _mm256_srl_epi32(x, _mm_cvtsi32_si128(32 - r)),
        )
    };
    let [s0, s1, s2, s3] = [v[0][h], v[1][h], v[2][h], v[3][h]];
    let u = _mm256_add_epi32(rotl(_mm256_add_epi32(s0, s3), 7), s0);
    let tt = _mm256_slli_epi32::<9>(s1);
    let s2 = _mm256_xor_si256(s2, s0);
    let s3 = _mm256_xor_si256(s3, s1);
    let s1 = _mm256_xor_si256(s1, s2);
    let s0 = _mm256_xor_si256(s0, s3);
    let s2 = _mm256_xor_si256(s2, tt);
    [v[0][h], v[1][h], v[2][h], v[3][h]] = [s0, s1, s2, rotl(s3, 11)];
    u
}

/// Lane l's state is words l, 16 + l, 32 + l, 48 + l (an all-zero state, probability 2^-128,
/// becomes 1, 0, 0, 0: xoshiro's only forbidden state).
fn lanes_from(seed: &[u32; SEED_WORDS]) -> Lanes {
    let mut s: Lanes = std::array::from_fn(|r| std::array::from_fn(|l| seed[r * LANES + l]));
    #[allow(clippy::needless_range_loop)] // column l of a row-major state: indexing reads best
    for l in 0..LANES {
        if (0..4).all(|r| s[r][l] == 0) {
            s[0][l] = 1;
        }
    }
    s
}

/// f32 tables for the K = inf kernels.
struct Tables32 {
    /// Unscaled layer widths: x = m * wu[i] (the wedge test's abscissa).
    wu: [f32; LAYERS],
    /// f[i] and f[i-1] - f[i] (0 for i = 0, unused).
    f: [f32; LAYERS],
    fd: [f32; LAYERS],
}

fn tables32() -> &'static Tables32 {
    static T: OnceLock<Tables32> = OnceLock::new();
    T.get_or_init(|| {
        let t = tables();
        Tables32 {
            wu: std::array::from_fn(|i| t.w[i] as f32),
            f: std::array::from_fn(|i| t.f[i] as f32),
            fd: std::array::from_fn(|i| {
                if i == 0 {
                    0.0
                } else {
                    (t.f[i - 1] - t.f[i]) as f32
                }
            }),
        }
    })
}

/// exp(-z) for z in [0, ~6]: 2^-n p(r), n = floor(z / ln 2 + 1/2), r = n ln 2 - z in
/// [-ln2/2, ln2/2], p the degree-6 Taylor polynomial (relative error < 2e-7; the wedge test needs
/// ~1e-6). Plain f32 arithmetic in a fixed order: the same bits in every kernel.
#[inline(always)]
fn exp_neg(z: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = (z * std::f32::consts::LOG2_E + 0.5) as i32;
    let nf = n as f32;
    let r = (nf * LN2_HI - z) + nf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((127 - n) as u32) << 23)
}

/// ln(u) for u in (0, 1] (the tail path): u = 2^e m, m in [sqrt(1/2), sqrt(2)), ln(m) from the
/// atanh series in s = (m - 1) / (m + 1) to s^9 (|s| < 0.172, relative error < 1e-8 before rounding).
#[inline(always)]
fn ln01(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) as i32) - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series =
        2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
    e as f32 * std::f32::consts::LN_2 + series
}

/// Uniform in (0, 1] from a word's top 24 bits.
#[inline(always)]
fn u01(w: u32) -> f32 {
    ((w >> 8) + 1) as f32 * (1.0 / (1u32 << 24) as f32)
}

#[inline(always)]
fn with_sign(x: f32, u: u32) -> f32 {
    f32::from_bits(x.to_bits() | ((u & 0x80) << 24))
}

/// The K = inf normal generator: workspace for the queued misses, scaled widths, kernels.
pub(crate) struct KinfNormals {
    isa: Isa,
    /// `(scale, w * scale)` of the last call.
    ws: (f64, [f32; LAYERS]),
    /// Misses to resolve (output slots, their current words), the next round's, and the tails;
    /// each as long as the output plus one vector (written by index, and whole vectors at a time by
    /// the AVX-512 pass, so the hot loops never branch or call out to grow a Vec).
    pending: Queue,
    next: Queue,
    tail: Queue,
}

impl KinfNormals {
    pub(crate) fn new(isa: Isa) -> Self {
        KinfNormals {
            isa,
            ws: (f64::NAN, [0.0; LAYERS]),
            pending: Queue::default(),
            next: Queue::default(),
            tail: Queue::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// Fills `out` with i.i.d. N(0, scale^2) draws from the lanes seeded by `seed`.
    pub(crate) fn fill(&mut self, seed: &[u32; SEED_WORDS], out: &mut [f32], scale: f64) {
        let t = tables();
        if self.ws.0 != scale {
            self.ws = (scale, std::array::from_fn(|i| (t.w[i] * scale) as f32));
        }
        for q in [&mut self.pending, &mut self.next, &mut self.tail] {
            q.reserve(out.len() + LANES);
        }
        let mut s = lanes_from(seed);
        match self.isa {
            // SAFETY: `Isa::detect` found these features on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.fill_avx512(&mut s, out) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.fill_avx2(&mut s, out) },
            _ => self.fill_body(&mut s, out, first_pass_portable),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,popcnt,bmi1")]
    unsafe fn fill_avx2(&mut self, s: &mut Lanes, out: &mut [f32]) {
        // SAFETY: this function runs only where `Isa::available` found AVX2, FMA, POPCNT and BMI1.
        let np = unsafe { first_pass_avx2(&self.ws.1, s, out, &mut self.pending) };
        let nt = unsafe { self.rounds_avx2(s, out, np) };
        self.tails(s, out, nt);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,popcnt,bmi1")]
    unsafe fn fill_avx512(&mut self, s: &mut Lanes, out: &mut [f32]) {
        // SAFETY: this function runs only where `Isa::detect` found AVX-512.
        let np = unsafe { first_pass_avx512(&self.ws.1, s, out, &mut self.pending) };
        let nt = unsafe { self.rounds_avx512(s, out, np) };
        self.tails(s, out, nt);
    }

    /// [`KinfNormals::rounds`] on 16 queued misses per vector: the same lane steps, tests and
    /// queue order (compress-stores keep lane order; accepted values are scattered to their
    /// distinct slots). The exp is `exp_neg` op for op.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,popcnt,bmi1")]
    unsafe fn rounds_avx512(&mut self, s: &mut Lanes, out: &mut [f32], mut np: usize) -> usize {
        use std::arch::x86_64::*;
        let t = tables();
        let t32 = tables32();
        // SAFETY (loads): each reads 16 values inside a 128-entry table.
        let ld = |p: *const f32, q: usize| unsafe { _mm512_loadu_ps(p.add(16 * q)) };
        let ws: [__m512; 8] = std::array::from_fn(|q| ld(self.ws.1.as_ptr(), q));
        let wu: [__m512; 8] = std::array::from_fn(|q| ld(t32.wu.as_ptr(), q));
        let ft: [__m512; 8] = std::array::from_fn(|q| ld(t32.f.as_ptr(), q));
        let fd: [__m512; 8] = std::array::from_fn(|q| ld(t32.fd.as_ptr(), q));
        let kt: [__m512; 8] = std::array::from_fn(|q| ld(t.k.as_ptr() as *const f32, q));
        let mut st = lanes_load512(s);
        let look = |tab: &[__m512; 8], u: __m512i, m5: __mmask16, m6: __mmask16| {
            let a = _mm512_mask_blend_ps(
                m5,
                _mm512_permutex2var_ps(tab[0], u, tab[1]),
                _mm512_permutex2var_ps(tab[2], u, tab[3]),
            );
            let b = _mm512_mask_blend_ps(
                m5,
                _mm512_permutex2var_ps(tab[4], u, tab[5]),
                _mm512_permutex2var_ps(tab[6], u, tab[7]),
            );
            _mm512_mask_blend_ps(m6, a, b)
        };
        let f = _mm512_set1_ps;
        let mut nt = 0usize;
        while np > 0 {
            let mut nn = 0usize;
            for g0 in (0..np).step_by(LANES) {
                let live: u16 = if np - g0 >= LANES {
                    0xffff
                } else {
                    (1u16 << (np - g0)) - 1
                };
                let v = lanes_next512(&mut st);
                let redraw = lanes_next512(&mut st);
                // SAFETY: the queues hold np + 16 entries.
                let slot =
                    unsafe { _mm512_loadu_si512(self.pending.slot.as_ptr().add(g0) as *const _) };
                let u =
                    unsafe { _mm512_loadu_si512(self.pending.word.as_ptr().add(g0) as *const _) };
                let m5 = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x20));
                let m6 = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x40));
                let i0 = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f));
                let m = _mm512_srli_epi32::<8>(u);
                let mf = _mm512_cvtepi32_ps(m);
                let kk = _mm512_castps_si512(look(&kt, u, m5, m6));
                let fast = _mm512_cmplt_epu32_mask(m, kk);
                let x = _mm512_mul_ps(mf, look(&wu, u, m5, m6));
                let v01 = _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_add_epi32(
                        _mm512_srli_epi32::<8>(v),
                        _mm512_set1_epi32(1),
                    )),
                    f(1.0 / (1u32 << 24) as f32),
                );
                let y = _mm512_add_ps(
                    look(&ft, u, m5, m6),
                    _mm512_mul_ps(v01, look(&fd, u, m5, m6)),
                );
                // exp_neg(0.5 * (x * x)), op for op.
                let z = _mm512_mul_ps(f(0.5), _mm512_mul_ps(x, x));
                let n = _mm512_cvttps_epi32(_mm512_add_ps(
                    _mm512_mul_ps(z, f(std::f32::consts::LOG2_E)),
                    f(0.5),
                ));
                let nf = _mm512_cvtepi32_ps(n);
                let r = _mm512_add_ps(
                    _mm512_sub_ps(_mm512_mul_ps(nf, f(0.693_145_75)), z),
                    _mm512_mul_ps(nf, f(1.428_606_8e-6)),
                );
                let mut p = f(1.0 / 720.0);
                for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                    p = _mm512_add_ps(f(c), _mm512_mul_ps(r, p));
                }
                let two_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_sub_epi32(
                    _mm512_set1_epi32(127),
                    n,
                )));
                let e = _mm512_mul_ps(p, two_n);
                let wedge = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, e);
                let tail = !fast & i0 & live;
                let acc = (fast | (!i0 & wedge)) & live;
                let retry = live & !acc & !tail;
                let val = _mm512_or_si512(
                    _mm512_castps_si512(_mm512_mul_ps(mf, look(&ws, u, m5, m6))),
                    _mm512_and_si512(
                        _mm512_slli_epi32::<24>(u),
                        _mm512_set1_epi32(0x8000_0000u32 as i32),
                    ),
                );
                assert!(nt + LANES <= self.tail.slot.len() && nn + LANES <= self.next.slot.len());
                // SAFETY: every live slot is < out.len() (the first pass queued only slots of
                // `out`; rounds only carry them over); the compress-stores stay within the
                // queues (asserted).
                unsafe {
                    _mm512_mask_i32scatter_ps::<4>(
                        out.as_mut_ptr(),
                        acc,
                        slot,
                        _mm512_castsi512_ps(val),
                    );
                    _mm512_storeu_si512(
                        self.tail.slot.as_mut_ptr().add(nt) as *mut _,
                        _mm512_maskz_compress_epi32(tail, slot),
                    );
                    _mm512_storeu_si512(
                        self.tail.word.as_mut_ptr().add(nt) as *mut _,
                        _mm512_maskz_compress_epi32(tail, u),
                    );
                    _mm512_storeu_si512(
                        self.next.slot.as_mut_ptr().add(nn) as *mut _,
                        _mm512_maskz_compress_epi32(retry, slot),
                    );
                    _mm512_storeu_si512(
                        self.next.word.as_mut_ptr().add(nn) as *mut _,
                        _mm512_maskz_compress_epi32(retry, redraw),
                    );
                }
                nt += tail.count_ones() as usize;
                nn += retry.count_ones() as usize;
            }
            std::mem::swap(&mut self.pending, &mut self.next);
            np = nn;
        }
        lanes_store512(&st, s);
        nt
    }

    /// [`KinfNormals::rounds`] on AVX2, 16 queued misses per group as two 8-lane halves: the
    /// same lane steps, tests and queue order as the portable rounds (left-packs keep lane
    /// order), table lookups by gathers, accepted values written lane by lane (AVX2 has no
    /// scatter). The exp is `exp_neg` op for op.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,popcnt,bmi1")]
    unsafe fn rounds_avx2(&mut self, s: &mut Lanes, out: &mut [f32], mut np: usize) -> usize {
        use std::arch::x86_64::*;
        let t = tables();
        let t32 = tables32();
        let ws = self.ws.1;
        let mut st = lanes_load256(s);
        let f = _mm256_set1_ps;
        let low7 = _mm256_set1_epi32(0x7f);
        let mut nt = 0usize;
        while np > 0 {
            let mut nn = 0usize;
            for g0 in (0..np).step_by(LANES) {
                // One step of all 16 lanes for the values, one for the redraws.
                let v2 = [lanes_next256(&mut st, 0), lanes_next256(&mut st, 1)];
                let redraw2 = [lanes_next256(&mut st, 0), lanes_next256(&mut st, 1)];
                for h in 0..2 {
                    let (v, redraw) = (v2[h], redraw2[h]);
                    let live = (np - g0).saturating_sub(8 * h).min(8);
                    let live_bits = (1u32 << live) - 1;
                    // SAFETY: the queues hold np + 16 entries.
                    let (slot, u) = unsafe {
                        (
                            _mm256_loadu_si256(
                                self.pending.slot.as_ptr().add(g0 + 8 * h) as *const __m256i
                            ),
                            _mm256_loadu_si256(
                                self.pending.word.as_ptr().add(g0 + 8 * h) as *const __m256i
                            ),
                        )
                    };
                    // Lanes past `live` may hold any word; masking the index keeps every gather
                    // inside the 128-entry tables, and their results are never used.
                    let i = _mm256_and_si256(u, low7);
                    // SAFETY: every index is < 128, inside each table.
                    let (kk, wu, ft, fd, wsi) = unsafe {
                        (
                            _mm256_i32gather_epi32::<4>(t.k.as_ptr() as *const i32, i),
                            _mm256_i32gather_ps::<4>(t32.wu.as_ptr(), i),
                            _mm256_i32gather_ps::<4>(t32.f.as_ptr(), i),
                            _mm256_i32gather_ps::<4>(t32.fd.as_ptr(), i),
                            _mm256_i32gather_ps::<4>(ws.as_ptr(), i),
                        )
                    };
                    let bits = |m: __m256i| _mm256_movemask_ps(_mm256_castsi256_ps(m)) as u32;
                    let i0 = bits(_mm256_cmpeq_epi32(i, _mm256_setzero_si256()));
                    let m = _mm256_srli_epi32::<8>(u);
                    let mf = _mm256_cvtepi32_ps(m);
                    // m and k[i] are below 2^24: the signed compare is the unsigned one.
                    let fast = bits(_mm256_cmpgt_epi32(kk, m));
                    let x = _mm256_mul_ps(mf, wu);
                    let v01 = _mm256_mul_ps(
                        _mm256_cvtepi32_ps(_mm256_add_epi32(
                            _mm256_srli_epi32::<8>(v),
                            _mm256_set1_epi32(1),
                        )),
                        f(1.0 / (1u32 << 24) as f32),
                    );
                    let y = _mm256_add_ps(ft, _mm256_mul_ps(v01, fd));
                    // exp_neg(0.5 * (x * x)), op for op.
                    let z = _mm256_mul_ps(f(0.5), _mm256_mul_ps(x, x));
                    let n = _mm256_cvttps_epi32(_mm256_add_ps(
                        _mm256_mul_ps(z, f(std::f32::consts::LOG2_E)),
                        f(0.5),
                    ));
                    let nf = _mm256_cvtepi32_ps(n);
                    let r = _mm256_add_ps(
                        _mm256_sub_ps(_mm256_mul_ps(nf, f(0.693_145_75)), z),
                        _mm256_mul_ps(nf, f(1.428_606_8e-6)),
                    );
                    let mut p = f(1.0 / 720.0);
                    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                        p = _mm256_add_ps(f(c), _mm256_mul_ps(r, p));
                    }
                    let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_sub_epi32(
                        _mm256_set1_epi32(127),
                        n,
                    )));
                    let e = _mm256_mul_ps(p, two_n);
                    let wedge = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(y, e)) as u32;
                    let tail = !fast & i0 & live_bits;
                    let acc = (fast | (!i0 & wedge)) & live_bits;
                    let retry = live_bits & !acc & !tail;
                    let val = _mm256_or_si256(
                        _mm256_castps_si256(_mm256_mul_ps(mf, wsi)),
                        _mm256_and_si256(
                            _mm256_slli_epi32::<24>(u),
                            _mm256_set1_epi32(0x8000_0000u32 as i32),
                        ),
                    );
                    let (mut slots, mut vals) = ([0u32; 8], [0f32; 8]);
                    // SAFETY: two 8-lane stores into 8-word arrays.
                    unsafe {
                        _mm256_storeu_si256(slots.as_mut_ptr() as *mut __m256i, slot);
                        _mm256_storeu_si256(vals.as_mut_ptr() as *mut __m256i, val);
                    }
                    // Branch-free (as the portable rounds): a loop over the accepted lanes'
                    // bits mispredicted on most groups.
                    for l in 0..live {
                        let o = &mut out[slots[l] as usize];
                        *o = if (acc >> l) & 1 == 1 { vals[l] } else { *o };
                    }
                    assert!(nt + 8 <= self.tail.slot.len() && nn + 8 <= self.next.slot.len());
                    let pack = |m: u32| {
                        // SAFETY: one 8-word row of the table.
                        unsafe { _mm256_loadu_si256(PACK8[m as usize].as_ptr() as *const __m256i) }
                    };
                    let (pt, pr) = (pack(tail), pack(retry));
                    // SAFETY: the assert bounds the four 8-word stores.
                    unsafe {
                        _mm256_storeu_si256(
                            self.tail.slot.as_mut_ptr().add(nt) as *mut __m256i,
                            _mm256_permutevar8x32_epi32(slot, pt),
                        );
                        _mm256_storeu_si256(
                            self.tail.word.as_mut_ptr().add(nt) as *mut __m256i,
                            _mm256_permutevar8x32_epi32(u, pt),
                        );
                        _mm256_storeu_si256(
                            self.next.slot.as_mut_ptr().add(nn) as *mut __m256i,
                            _mm256_permutevar8x32_epi32(slot, pr),
                        );
                        _mm256_storeu_si256(
                            self.next.word.as_mut_ptr().add(nn) as *mut __m256i,
                            _mm256_permutevar8x32_epi32(redraw, pr),
                        );
                    }
                    nt += tail.count_ones() as usize;
                    nn += retry.count_ones() as usize;
                }
            }
            std::mem::swap(&mut self.pending, &mut self.next);
            np = nn;
        }
        lanes_store256(&st, s);
        nt
    }

    /// First pass (`first`: returns how many misses it queued), then the queued misses.
    #[inline(always)]
    fn fill_body(
        &mut self,
        s: &mut Lanes,
        out: &mut [f32],
        first: impl Fn(&[f32; LAYERS], &mut Lanes, &mut [f32], &mut Queue) -> usize,
    ) {
        let np = first(&self.ws.1, s, out, &mut self.pending);
        self.resolve(s, out, np);
    }

    /// Resolves the queued misses 16 at a time: a group draws one lane step for the wedge test's
    /// uniforms and one for redraws. A word that hits its inner rectangle is accepted; a base-layer
    /// miss goes to the tail queue; otherwise the wedge test accepts it or the redraw is queued
    /// for the next round. Tails are drawn last, in order, one lane step per attempt.
    /// Branch-free per group (selects and unconditional writes at running indices).
    #[inline(always)]
    fn resolve(&mut self, s: &mut Lanes, out: &mut [f32], np: usize) {
        let nt = self.rounds(s, out, np);
        self.tails(s, out, nt);
    }

    /// The rounds of [`KinfNormals::resolve`]; returns the number of queued tails.
    #[inline(always)]
    fn rounds(&mut self, s: &mut Lanes, out: &mut [f32], mut np: usize) -> usize {
        let t = tables();
        let t32 = tables32();
        let ws = &self.ws.1;
        let mut nt = 0usize;
        while np > 0 {
            let mut nn = 0usize;
            for g0 in (0..np).step_by(LANES) {
                let live = (np - g0).min(LANES);
                let v = lanes_next(s);
                let redraw = lanes_next(s);
                let mut slot = [0u32; LANES];
                let mut u = [0u32; LANES];
                slot[..live].copy_from_slice(&self.pending.slot[g0..g0 + live]);
                u[..live].copy_from_slice(&self.pending.word[g0..g0 + live]);
                let mut acc = [false; LANES];
                let mut tail = [false; LANES];
                let mut val = [0f32; LANES];
                for l in 0..LANES {
                    let (i, m) = ((u[l] & 0x7f) as usize, u[l] >> 8);
                    let fast = m < t.k[i];
                    let x = (m as f32) * t32.wu[i];
                    let y = t32.f[i] + u01(v[l]) * t32.fd[i];
                    let wedge = y < exp_neg(0.5 * (x * x));
                    tail[l] = !fast & (i == 0);
                    acc[l] = fast | ((i != 0) & wedge);
                    val[l] = with_sign((m as f32) * ws[i], u[l]);
                }
                for l in 0..live {
                    let o = &mut out[slot[l] as usize];
                    *o = if acc[l] { val[l] } else { *o };
                    self.tail.put(nt, slot[l], u[l]);
                    nt += tail[l] as usize;
                    self.next.put(nn, slot[l], redraw[l]);
                    nn += (!acc[l] & !tail[l]) as usize;
                }
            }
            std::mem::swap(&mut self.pending, &mut self.next);
            np = nn;
        }
        nt
    }

    /// The tails of [`KinfNormals::resolve`] (~2e-4 of the draws), scalar.
    fn tails(&mut self, s: &mut Lanes, out: &mut [f32], nt: usize) {
        let scale = self.ws.0 as f32;
        for (&slot, &u) in self.tail.slot[..nt].iter().zip(&self.tail.word[..nt]) {
            // Beyond R (Marsaglia 1964): x = -ln(v1) / R, accepted when -2 ln(v2) >= x^2.
            loop {
                let w = lanes_next(s);
                let x = -ln01(u01(w[0])) / R as f32;
                let y = -ln01(u01(w[1]));
                if y + y >= x * x {
                    out[slot as usize] = with_sign((R as f32 + x) * scale, u);
                    break;
                }
            }
        }
    }
}

/// A queue of misses: output slots and their words, written by index.
#[derive(Default)]
struct Queue {
    slot: Vec<u32>,
    word: Vec<u32>,
}

impl Queue {
    fn reserve(&mut self, len: usize) {
        if self.slot.len() < len {
            self.slot.resize(len, 0);
            self.word.resize(len, 0);
        }
    }

    #[inline(always)]
    fn put(&mut self, i: usize, slot: u32, word: u32) {
        self.slot[i] = slot;
        self.word[i] = word;
    }
}

/// Portable first pass: 16 draws per lane step (the last step's unused words are dropped);
/// every draw is written as if it hit its inner rectangle, misses are queued in slot order.
#[inline(always)]
fn first_pass_portable(
    ws: &[f32; LAYERS],
    s: &mut Lanes,
    out: &mut [f32],
    pending: &mut Queue,
) -> usize {
    let k = &tables().k;
    let mut np = 0;
    for (g, chunk) in out.chunks_mut(LANES).enumerate() {
        let u = lanes_next(s);
        let mut miss = [false; LANES];
        for (l, v) in chunk.iter_mut().enumerate() {
            let (i, m) = ((u[l] & 0x7f) as usize, u[l] >> 8);
            *v = with_sign((m as f32) * ws[i], u[l]);
            miss[l] = m >= k[i];
        }
        for l in 0..chunk.len() {
            pending.put(np, (g * LANES + l) as u32, u[l]);
            np += miss[l] as usize;
        }
    }
    np
}

/// The first pass with the lanes in four zmm registers and the 128-entry tables in eight: a
/// lookup is four two-table permutes (32 entries each, indexed by the word's low 5 bits) and
/// three blends on bits 5 and 6 (gathers were slower on this Xeon).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,popcnt,bmi1")]
unsafe fn first_pass_avx512(
    ws: &[f32; LAYERS],
    s: &mut Lanes,
    out: &mut [f32],
    pending: &mut Queue,
) -> usize {
    use std::arch::x86_64::*;
    let k = &tables().k;
    // SAFETY (loads): each reads 16 values inside a 128-entry table.
    let wv: [__m512; 8] =
        std::array::from_fn(|q| unsafe { _mm512_loadu_ps(ws.as_ptr().add(16 * q)) });
    let kv: [__m512i; 8] =
        std::array::from_fn(|q| unsafe { _mm512_loadu_si512(k.as_ptr().add(16 * q) as *const _) });
    let mut st = lanes_load512(s);
    let bit5 = _mm512_set1_epi32(0x20);
    let bit6 = _mm512_set1_epi32(0x40);
    let sign = _mm512_set1_epi32(0x8000_0000u32 as i32);
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut np = 0usize;
    let mut g = 0usize;
    while g * LANES < out.len() {
        let rest = out.len() - g * LANES;
        let u = lanes_next512(&mut st);

        let m5 = _mm512_test_epi32_mask(u, bit5);
        let m6 = _mm512_test_epi32_mask(u, bit6);
        let k01 = _mm512_mask_blend_epi32(
            m5,
            _mm512_permutex2var_epi32(kv[0], u, kv[1]),
            _mm512_permutex2var_epi32(kv[2], u, kv[3]),
        );
        let k23 = _mm512_mask_blend_epi32(
            m5,
            _mm512_permutex2var_epi32(kv[4], u, kv[5]),
            _mm512_permutex2var_epi32(kv[6], u, kv[7]),
        );
        let kk = _mm512_mask_blend_epi32(m6, k01, k23);
        let w01 = _mm512_mask_blend_ps(
            m5,
            _mm512_permutex2var_ps(wv[0], u, wv[1]),
            _mm512_permutex2var_ps(wv[2], u, wv[3]),
        );
        let w23 = _mm512_mask_blend_ps(
            m5,
            _mm512_permutex2var_ps(wv[4], u, wv[5]),
            _mm512_permutex2var_ps(wv[6], u, wv[7]),
        );
        let ww = _mm512_mask_blend_ps(m6, w01, w23);
        let m = _mm512_srli_epi32::<8>(u);
        let x = _mm512_mul_ps(_mm512_cvtepi32_ps(m), ww);
        let v = _mm512_or_si512(
            _mm512_castps_si512(x),
            _mm512_and_si512(_mm512_slli_epi32::<24>(u), sign),
        );
        let live: u16 = if rest >= LANES {
            0xffff
        } else {
            (1u16 << rest) - 1
        };
        // SAFETY: lanes < `rest` lie inside `out`; the masked store touches only those.
        unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().add(g * LANES) as *mut _, live, v) };
        let miss = _mm512_cmpge_epu32_mask(m, kk) & live;
        // Queue the missed lanes' slots and words in lane order, without a branch (a third of
        // the steps have a miss, so a branch here mispredicted often): compress and store whole
        // vectors; the queue has a vector of slack.
        let slots = _mm512_add_epi32(_mm512_set1_epi32((g * LANES) as i32), iota);
        assert!(np + LANES <= pending.slot.len() && np + LANES <= pending.word.len());
        // SAFETY: the assert bounds both 16-word stores.
        unsafe {
            _mm512_storeu_si512(
                pending.slot.as_mut_ptr().add(np) as *mut _,
                _mm512_maskz_compress_epi32(miss, slots),
            );
            _mm512_storeu_si512(
                pending.word.as_mut_ptr().add(np) as *mut _,
                _mm512_maskz_compress_epi32(miss, u),
            );
        }
        np += miss.count_ones() as usize;
        g += 1;
    }
    lanes_store512(&st, s);
    np
}

/// For each 8-bit lane mask, the indices of its set lanes in order, then zeros: a left-pack
/// (compress) of eight 32-bit lanes with one `vpermd`, which AVX2 lacks as an instruction.
#[cfg(target_arch = "x86_64")]
static PACK8: [[u32; 8]; 256] = {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut j, mut l) = (0, 0);
        while l < 8 {
            if (m >> l) & 1 == 1 {
                t[m][j] = l as u32;
                j += 1;
            }
            l += 1;
        }
        m += 1;
    }
    t
};

/// The first pass on AVX2: the 16 lanes as two 8-lane halves, table lookups by gathers (the
/// 128-entry tables do not fit in registers as they do with AVX-512), misses queued in lane
/// order by a left-pack per half. Same words, values and queue as `first_pass_portable`, which
/// the compiler does not vectorize (its lookups and the queue's running index stay scalar; it
/// ran at ~4x this kernel's time on a Sapphire Rapids Xeon).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,popcnt,bmi1")]
unsafe fn first_pass_avx2(
    ws: &[f32; LAYERS],
    s: &mut Lanes,
    out: &mut [f32],
    pending: &mut Queue,
) -> usize {
    use std::arch::x86_64::*;
    let k = &tables().k;
    let mut st = lanes_load256(s);
    let low7 = _mm256_set1_epi32(0x7f);
    let sign = _mm256_set1_epi32(0x8000_0000u32 as i32);
    let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut np = 0usize;
    let mut g = 0usize;
    while g * LANES < out.len() {
        let rest = out.len() - g * LANES;
        for h in 0..2 {
            let u = lanes_next256(&mut st, h);

            let i = _mm256_and_si256(u, low7);
            // SAFETY: every index is < 128, inside both tables.
            let (w, kk) = unsafe {
                (
                    _mm256_i32gather_ps::<4>(ws.as_ptr(), i),
                    _mm256_i32gather_epi32::<4>(k.as_ptr() as *const i32, i),
                )
            };
            let m = _mm256_srli_epi32::<8>(u);
            let x = _mm256_mul_ps(_mm256_cvtepi32_ps(m), w);
            let v = _mm256_or_si256(
                _mm256_castps_si256(x),
                _mm256_and_si256(_mm256_slli_epi32::<24>(u), sign),
            );
            let base = g * LANES + 8 * h;
            let live = (rest.saturating_sub(8 * h)).min(8);
            if live == 8 {
                // SAFETY: base + 8 <= out.len().
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(base) as *mut __m256i, v) };
            } else if live > 0 {
                let lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(live as i32), iota);
                // SAFETY: the mask writes only lanes < live, inside `out`.
                unsafe { _mm256_maskstore_epi32(out.as_mut_ptr().add(base) as *mut i32, lanes, v) };
            }
            // m and k[i] are below 2^24: the signed compare is the unsigned one.
            let hit = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, m))) as u32;
            let miss = !hit & ((1u32 << live) - 1);
            // SAFETY: one 8-word row of the table.
            let perm =
                unsafe { _mm256_loadu_si256(PACK8[miss as usize].as_ptr() as *const __m256i) };
            let slots = _mm256_add_epi32(_mm256_set1_epi32(base as i32), iota);
            assert!(np + 8 <= pending.slot.len() && np + 8 <= pending.word.len());
            // SAFETY: the assert bounds both 8-word stores.
            unsafe {
                _mm256_storeu_si256(
                    pending.slot.as_mut_ptr().add(np) as *mut __m256i,
                    _mm256_permutevar8x32_epi32(slots, perm),
                );
                _mm256_storeu_si256(
                    pending.word.as_mut_ptr().add(np) as *mut __m256i,
                    _mm256_permutevar8x32_epi32(u, perm),
                );
            }
            np += miss.count_ones() as usize;
        }
        g += 1;
    }
    lanes_store256(&st, s);
    np
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

    fn kinf_draws(isa: Isa, seed: u64, n: usize, len: usize, scale: f64) -> Vec<f32> {
        let mut rng = crate::rng_for(seed, 3);
        let mut g = KinfNormals::new(isa);
        let mut xs = vec![0f32; n];
        let mut words = [0u32; SEED_WORDS];
        for c in xs.chunks_mut(len) {
            rng.fill(&mut words);
            g.fill(&words, c, scale);
        }
        xs
    }

    /// Same bits on every ISA path (forced portable vs AVX2 vs AVX-512), for lengths with and
    /// without a partial last lane step.
    #[test]
    fn k_inf_generator_is_identical_on_every_isa() {
        for (len, scale) in [
            (99 * 63, 1.0 / 63f64.sqrt()),
            (29, 1.0),
            (16, 0.5),
            (1000, 1.0),
            (1, 1.0),
        ] {
            let want = kinf_draws(Isa::Portable, 5, 300_000, len, scale);
            for isa in Isa::available() {
                let got = kinf_draws(isa, 5, 300_000, len, scale);
                assert!(
                    want.iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} len {len}"
                );
            }
        }
    }

    #[test]
    fn exp_and_ln_are_accurate() {
        let mut z = 0f32;
        while z < 6.0 {
            let rel = (exp_neg(z) as f64 / (-(z as f64)).exp() - 1.0).abs();
            assert!(rel < 5e-7, "exp(-{z}): {rel}");
            z += 0.001;
        }
        for w in (0..1u32 << 24).step_by(997) {
            let u = u01(w << 8);
            let err = (ln01(u) as f64 - (u as f64).ln()).abs();
            assert!(err < 2e-6 * (1.0 + (u as f64).ln().abs()), "ln({u})");
        }
    }

    /// The K = inf generator against N(0, 1) on 4 M draws: mean, variance, kurtosis, the CDF on
    /// a grid, and the 1e-5 and 1 - 1e-5 quantiles (+-4.2649; the estimate's sd is ~0.035 here).
    #[test]
    fn k_inf_generator_moments_and_tails() {
        let n = 4_000_000usize;
        let xs = kinf_draws(Isa::detect(), 2024, n, 99 * 63, 1.0);
        let mean = xs.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
        let var = xs.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let m4 = xs.iter().map(|v| (*v as f64 - mean).powi(4)).sum::<f64>() / n as f64;
        let kurtosis = m4 / (var * var);
        // Standard errors: mean 5e-4, variance 7e-4, kurtosis 2.4e-3.
        assert!(mean.abs() < 0.0025, "mean {mean}");
        assert!((var - 1.0).abs() < 0.0035, "variance {var}");
        assert!((kurtosis - 3.0).abs() < 0.015, "kurtosis {kurtosis}");
        let mut sorted = xs.clone();
        sorted.sort_by(f32::total_cmp);
        let mut x = -4.5;
        while x <= 4.5 {
            let p = phi(x);
            let count = sorted.partition_point(|v| (*v as f64) < x) as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (count - n as f64 * p).abs() < 5.0 * sd + 1.0,
                "CDF at {x}: {} vs {p}",
                count / n as f64
            );
            x += 0.125;
        }
        let k = n / 100_000;
        let (lo, hi) = (sorted[k] as f64, sorted[n - 1 - k] as f64);
        assert!((lo + 4.2649).abs() < 0.15, "1e-5 quantile {lo}");
        assert!((hi - 4.2649).abs() < 0.15, "1 - 1e-5 quantile {hi}");
        // Beyond the base layer's edge R = 3.44 (the tail path): P(|x| > 3.5) = 4.65e-4.
        let beyond = sorted.iter().filter(|v| v.abs() > 3.5).count() as f64;
        let expect = 4.6525e-4 * n as f64;
        assert!(
            (beyond - expect).abs() < 5.0 * expect.sqrt(),
            "{beyond} beyond 3.5, expected {expect}"
        );
        // Neighbouring draws (same lane, next step; next lane) are uncorrelated.
        for lag in [1usize, 16] {
            let c = xs
                .iter()
                .zip(&xs[lag..])
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum::<f64>()
                / n as f64;
            assert!(c.abs() < 0.0025, "lag-{lag} correlation {c}");
        }
    }
}
