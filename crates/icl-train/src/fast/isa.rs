//! Run-time choice of the instruction set for the element-wise kernels (the crate is built for
//! baseline x86-64; `gemm` dispatches on its own). Each hot entry point is compiled three times
//! (AVX-512, AVX2+FMA, baseline) around one `#[inline(always)]` body. The bodies sum in a fixed
//! 16-lane order and Rust never contracts a*b+c into an FMA, so all three give identical bits.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

/// Set by [`force_baseline`]: every engine built afterwards uses the portable kernels.
static FORCE_BASELINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Forces the portable kernels for engines built from now on (`on`), or lets [`Isa::detect`]
/// choose again. For tests that compare the ISA paths' bits within one machine.
#[doc(hidden)]
pub fn force_baseline(on: bool) {
    FORCE_BASELINE.store(on, std::sync::atomic::Ordering::SeqCst);
}

impl Isa {
    pub fn detect() -> Self {
        if FORCE_BASELINE.load(std::sync::atomic::Ordering::SeqCst) {
            return Isa::Baseline;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f")
                && has!("avx512vl")
                && has!("avx512bw")
                && has!("avx512dq")
                && has!("avx2")
                && has!("fma")
            {
                return Isa::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// Defines `$v4` and `$v3`: `unsafe` methods that run `self.$body::<K>(args)` compiled with AVX-512
/// (K = `simd::Avx512`) and with AVX2+FMA (K = `simd::Avx2`). Call them through [`dispatch!`].
macro_rules! isa_methods {
    ($body:ident, $v4:ident, $v3:ident, ($($a:ident : $t:ty),*) $(-> $r:ty)?) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
        unsafe fn $v4(&mut self, $($a: $t),*) $(-> $r)? {
            self.$body::<$crate::fast::simd::Avx512>($($a),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $v3(&mut self, $($a: $t),*) $(-> $r)? {
            self.$body::<$crate::fast::simd::Avx2>($($a),*)
        }
    };
}

/// `dispatch!(isa, self.body / v4 / v3 (args))`: the variant for `isa`.
macro_rules! dispatch {
    ($isa:expr, $s:ident . $body:ident / $v4:ident / $v3:ident ($($a:expr),*)) => {
        match $isa {
            // SAFETY: `Isa::detect` found these features on this CPU.
            #[cfg(target_arch = "x86_64")]
            $crate::fast::isa::Isa::Avx512 => unsafe { $s.$v4($($a),*) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            $crate::fast::isa::Isa::Avx2 => unsafe { $s.$v3($($a),*) },
            _ => $s.$body::<$crate::fast::simd::Scalar>($($a),*),
        }
    };
}

pub(crate) use {dispatch, isa_methods};
