//! Parameters of the four models: names, shapes, optimizer groups, PyTorch-default initialization
//! drawn from a seeded host RNG, and plain SGD with per-group L2.
//!
//! Names follow the authors' PyTorch `state_dict` (`to_embedding.0.weight`, `qkv.weight`,
//! `mlp.0.weight`, ...), so a checkpoint loads into their modules as it is. `qkv.weight` is
//! `[3E, E]`: rows `0..E` are W_Q, `E..2E` W_K, `2E..3E` W_V (PyTorch's `chunk(3)` order).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fast::isa::Isa;
use crate::params::{ModelKind, TrainParams};

/// RNG stream of the initial weights (seeded by the run seed). The streams 1..=7 of the same seed
/// belong to icl-datagen (items, labels, training sequences, test sets).
pub const STREAM_INIT: u64 = 16;
/// RNG stream of the minimal model's beta0 when it is drawn (kept apart from the weights so a
/// given seed has the same MLP whether beta0 is set or drawn).
pub const STREAM_BETA0: u64 = 17;

/// Optimizer group: each has its own L2 strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Attention + LayerNorm (transformers); beta and w (minimal model).
    Attn,
    /// Every MLP weight and bias.
    Mlp,
}

/// How a tensor starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// U(-b, b): PyTorch's Linear default, b = 1/sqrt(fan_in) for weight and bias.
    Uniform(f64),
    Const(f64),
    /// The minimal model's beta0: a given value or N(0, 1) from the seed.
    Beta0(Option<f64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub group: Group,
    pub init: Init,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Shape of a model: kind plus the three sizes that determine every tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub kind: ModelKind,
    /// Item dimension D.
    pub d: usize,
    /// MLP hidden width.
    pub width: usize,
}

impl Arch {
    pub fn from_params(p: &TrainParams) -> Self {
        Arch {
            kind: p.model,
            d: p.d,
            width: p.width,
        }
    }

    /// Token dimension E = D + 2.
    pub fn e(&self) -> usize {
        self.d + 2
    }

    /// The tensors of the model, in PyTorch's module registration order (which is also the
    /// order the initial values are drawn in).
    pub fn specs(&self, beta0: Option<f64>) -> Vec<ParamSpec> {
        let (d, e, h) = (self.d, self.e(), self.width);
        let mut v = Vec::new();
        let ln = |v: &mut Vec<ParamSpec>| {
            v.push(spec(
                "to_embedding.0.weight",
                &[e],
                Group::Attn,
                Init::Const(1.0),
            ));
            v.push(spec(
                "to_embedding.0.bias",
                &[e],
                Group::Attn,
                Init::Const(0.0),
            ));
        };
        match self.kind {
            ModelKind::Transformer => {
                ln(&mut v);
                v.push(spec("qkv.weight", &[3 * e, e], Group::Attn, uni(e)));
                mlp(&mut v, "mlp", e, h, 1);
            }
            ModelKind::TwoLayer => {
                ln(&mut v);
                v.push(spec("qkv.0.weight", &[3 * e, e], Group::Attn, uni(e)));
                v.push(spec("qkv.1.weight", &[3 * e, e], Group::Attn, uni(e)));
                mlp(&mut v, "mlp.0", e, h, e);
                mlp(&mut v, "mlpoutput", e, h, 1);
            }
            ModelKind::Minimal => {
                v.push(spec("beta", &[1], Group::Attn, Init::Beta0(beta0)));
                v.push(spec("w", &[1], Group::Attn, Init::Const(0.0)));
                mlp(&mut v, "phi", d, h, 1);
            }
            ModelKind::MlpOnly => mlp(&mut v, "mlp", d, h, 1),
        }
        v
    }
}

fn spec(name: &str, shape: &[usize], group: Group, init: Init) -> ParamSpec {
    ParamSpec {
        name: name.to_string(),
        shape: shape.to_vec(),
        group,
        init,
    }
}

fn uni(fan_in: usize) -> Init {
    Init::Uniform(1.0 / (fan_in as f64).sqrt())
}

/// Linear(din, h) - ReLU - Linear(h, h) - ReLU - Linear(h, dout), as `prefix.{0,2,4}.{weight,bias}`.
fn mlp(v: &mut Vec<ParamSpec>, prefix: &str, din: usize, h: usize, dout: usize) {
    for (i, (fi, fo)) in [(din, h), (h, h), (h, dout)].into_iter().enumerate() {
        let k = 2 * i;
        v.push(spec(
            &format!("{prefix}.{k}.weight"),
            &[fo, fi],
            Group::Mlp,
            uni(fi),
        ));
        v.push(spec(
            &format!("{prefix}.{k}.bias"),
            &[fo],
            Group::Mlp,
            uni(fi),
        ));
    }
}

/// A model's parameters (or gradients): one f32 buffer per tensor, in [`Arch::specs`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub arch: Arch,
    pub specs: Vec<ParamSpec>,
    pub data: Vec<Vec<f32>>,
}

impl Params {
    /// PyTorch-default initialization from the run seed.
    pub fn init(arch: Arch, seed: u64, beta0: Option<f64>) -> Self {
        let specs = arch.specs(beta0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(STREAM_INIT);
        let data = specs
            .iter()
            .map(|s| match s.init {
                Init::Uniform(b) => (0..s.numel())
                    .map(|_| ((2.0 * rng.random::<f64>() - 1.0) * b) as f32)
                    .collect(),
                Init::Const(c) => vec![c as f32; s.numel()],
                Init::Beta0(Some(b)) => vec![b as f32; s.numel()],
                Init::Beta0(None) => {
                    let mut r = ChaCha8Rng::seed_from_u64(seed);
                    r.set_stream(STREAM_BETA0);
                    let z: f64 = r.sample(rand_distr::StandardNormal);
                    vec![z as f32; s.numel()]
                }
            })
            .collect();
        Params { arch, specs, data }
    }

    /// Zeros with the same layout (a gradient buffer).
    pub fn zeros_like(&self) -> Self {
        Params {
            arch: self.arch,
            specs: self.specs.clone(),
            data: self.data.iter().map(|t| vec![0.0; t.len()]).collect(),
        }
    }

    pub fn numel(&self) -> usize {
        self.data.iter().map(Vec::len).sum()
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// The tensor called `name` (panics on an unknown name: names are fixed by [`Arch::specs`]).
    pub fn get(&self, name: &str) -> &[f32] {
        let i = self
            .index(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        &self.data[i]
    }

    pub fn get_mut(&mut self, name: &str) -> &mut [f32] {
        let i = self
            .index(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        &mut self.data[i]
    }

    pub fn fill(&mut self, v: f32) {
        for t in &mut self.data {
            t.fill(v);
        }
    }

    /// Checks that `other` has this layout.
    pub fn same_layout(&self, other: &Params) -> bool {
        self.specs == other.specs
            && self
                .data
                .iter()
                .zip(&other.data)
                .all(|(a, b)| a.len() == b.len())
    }
}

/// Plain SGD with L2 in PyTorch's form: theta <- theta - lr * (g + lambda * theta), computed in f32
/// in that order (as `torch.optim.SGD` with `weight_decay`), lambda per [`Group`].
pub fn sgd_step(params: &mut Params, grads: &Params, lr: f64, wd_attn: f64, wd_mlp: f64) {
    debug_assert!(params.same_layout(grads));
    match Isa::detect() {
        // SAFETY: the CPU has these features (just detected).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { sgd_v4(params, grads, lr, wd_attn, wd_mlp) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { sgd_v3(params, grads, lr, wd_attn, wd_mlp) },
        _ => sgd_body(params, grads, lr, wd_attn, wd_mlp),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn sgd_v4(params: &mut Params, grads: &Params, lr: f64, wd_attn: f64, wd_mlp: f64) {
    sgd_body(params, grads, lr, wd_attn, wd_mlp)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sgd_v3(params: &mut Params, grads: &Params, lr: f64, wd_attn: f64, wd_mlp: f64) {
    sgd_body(params, grads, lr, wd_attn, wd_mlp)
}

#[inline(always)]
fn sgd_body(params: &mut Params, grads: &Params, lr: f64, wd_attn: f64, wd_mlp: f64) {
    let lr = lr as f32;
    for ((p, g), s) in params.data.iter_mut().zip(&grads.data).zip(&params.specs) {
        let wd = match s.group {
            Group::Attn => wd_attn,
            Group::Mlp => wd_mlp,
        } as f32;
        for (p, g) in p.iter_mut().zip(g) {
            let d = *g + wd * *p;
            *p -= lr * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_init() {
        let arch = Arch {
            kind: ModelKind::Transformer,
            d: 63,
            width: 512,
        };
        let p = Params::init(arch, 3, None);
        assert_eq!(p.get("qkv.weight").len(), 195 * 65);
        assert_eq!(p.get("mlp.2.weight").len(), 512 * 512);
        assert!(p.get("to_embedding.0.weight").iter().all(|v| *v == 1.0));
        let b = 1.0 / 65f32.sqrt();
        let w = p.get("qkv.weight");
        assert!(w.iter().all(|v| v.abs() <= b));
        // U(-b, b) has variance b^2/3.
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var / (b as f64).powi(2) - 1.0 / 3.0).abs() < 0.02, "{var}");
        assert_eq!(p, Params::init(arch, 3, None));
        assert_ne!(p, Params::init(arch, 4, None));
    }

    #[test]
    fn beta0_set_or_drawn() {
        let arch = Arch {
            kind: ModelKind::Minimal,
            d: 8,
            width: 4,
        };
        assert_eq!(Params::init(arch, 1, Some(0.25)).get("beta"), &[0.25]);
        assert_eq!(Params::init(arch, 1, None).get("w"), &[0.0]);
        let draws: Vec<f32> = (0..400)
            .map(|s| Params::init(arch, s, None).get("beta")[0])
            .collect();
        let mean = draws.iter().sum::<f32>() / 400.0;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 400.0;
        assert!(
            mean.abs() < 0.2 && (var - 1.0).abs() < 0.25,
            "mean {mean} var {var}"
        );
        // The MLP does not depend on how beta0 was chosen.
        assert_eq!(
            Params::init(arch, 1, Some(3.0)).get("phi.0.weight"),
            Params::init(arch, 1, None).get("phi.0.weight")
        );
    }

    #[test]
    fn sgd_matches_pytorch_form() {
        let arch = Arch {
            kind: ModelKind::Minimal,
            d: 2,
            width: 1,
        };
        let mut p = Params::init(arch, 0, Some(2.0));
        let mut g = p.zeros_like();
        g.fill(1.0);
        let before = p.clone();
        sgd_step(&mut p, &g, 0.5, 0.1, 0.0);
        assert_eq!(p.get("beta")[0], 2.0 - 0.5 * (1.0 + 0.1 * 2.0));
        let i = p.index("phi.0.weight").unwrap();
        assert_eq!(p.data[i][0], before.data[i][0] - 0.5);
    }
}
