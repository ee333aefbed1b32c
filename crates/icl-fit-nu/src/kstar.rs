//! K* per group (e.g. per N) over a K sweep, and the slope of log K* against log N, with a
//! seeded bootstrap over seeds. K* itself is [`icl_claim::kstar`]'s, the one definition every
//! claim uses.

use icl_claim::stats::{self, LineFit};
use std::collections::BTreeMap;

pub use icl_claim::kstar::{fit_kstar, KstarFit, KstarSettings, Point};

/// Resample runs with replacement within each K value (a stratified bootstrap: the K grid is a
/// design choice, the seeds are the random part).
pub fn resample_within_k(rng: &mut rand_chacha::ChaCha8Rng, points: &[Point]) -> Vec<Point> {
    let mut by_k: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for p in points {
        by_k.entry(p.0.to_bits()).or_default().push(*p);
    }
    by_k.values()
        .flat_map(|g| stats::resample(rng, g))
        .collect()
}

/// The scaling of K* with N.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScalingFit {
    /// (N, K* fit) for every group.
    pub per_n: Vec<(f64, KstarFit)>,
    /// Slope of log K* vs log N over the valid groups.
    pub line: Option<LineFit>,
    pub low: f64,
    pub high: f64,
    pub level: f64,
    /// Bootstrap replicates in which at least two groups gave a valid K*.
    pub n_boot_ok: usize,
    /// Per-N percentile interval of K* over the bootstrap (NaN where too few valid replicates).
    pub kstar_low: Vec<f64>,
    pub kstar_high: Vec<f64>,
}

/// Fit K* per N and the log-log slope; bootstrap over seeds within each (N, K) cell.
pub fn fit_scaling(
    groups: &BTreeMap<u64, Vec<Point>>,
    s: KstarSettings,
    n_boot: usize,
    seed: u64,
    level: f64,
) -> ScalingFit {
    let per_n: Vec<(f64, KstarFit)> = groups
        .iter()
        .map(|(n, pts)| (*n as f64, fit_kstar(pts, s)))
        .collect();
    let line = slope_of(
        &per_n
            .iter()
            .map(|(n, f)| (*n, f.valid.then_some(f.kstar)))
            .collect::<Vec<_>>(),
    );
    let mut rng = stats::rng(seed, 0x6b73); // "ks"
    let mut slopes = Vec::new();
    let mut ks: Vec<Vec<f64>> = vec![Vec::new(); per_n.len()];
    for _ in 0..n_boot {
        let mut row = Vec::new();
        for (i, (n, pts)) in groups.iter().enumerate() {
            let f = fit_kstar(&resample_within_k(&mut rng, pts), s);
            if f.valid {
                ks[i].push(f.kstar.log10());
            }
            row.push((*n as f64, f.valid.then_some(f.kstar)));
        }
        if let Some(l) = slope_of(&row) {
            slopes.push(l.slope);
        }
    }
    let (low, high) = if slopes.len() >= 20 {
        stats::percentile_interval(&slopes, level)
    } else {
        (f64::NAN, f64::NAN)
    };
    let iv = |v: &Vec<f64>, hi: bool| {
        if v.len() >= 20 {
            let (a, b) = stats::percentile_interval(v, level);
            10f64.powf(if hi { b } else { a })
        } else {
            f64::NAN
        }
    };
    ScalingFit {
        kstar_low: ks.iter().map(|v| iv(v, false)).collect(),
        kstar_high: ks.iter().map(|v| iv(v, true)).collect(),
        per_n,
        line,
        low,
        high,
        level,
        n_boot_ok: slopes.len(),
    }
}

/// log10 K* against log10 N over the groups with a K*.
pub fn slope_of(rows: &[(f64, Option<f64>)]) -> Option<LineFit> {
    let (x, y): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter_map(|(n, k)| k.map(|k| (n.log10(), k.log10())))
        .unzip();
    stats::linear_fit(&x, &y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Runs whose ICL accuracy jumps from ~0.5 to ~1 around K* (a steep logistic in log10 K plus
    /// seed noise), on a log-spaced K grid.
    fn sweep(kstar: f64, seeds: u64, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Point> {
        let mut pts = Vec::new();
        for i in 0..12 {
            let k = 10f64.powf(2.0 + 2.0 * i as f64 / 11.0);
            for _ in 0..seeds {
                let p = icl_claim::sigmoid::logistic(8.0 * (k.log10() - kstar.log10()));
                pts.push((k, 0.5 + 0.5 * p + rng.random_range(-0.03..0.03)));
            }
        }
        pts
    }

    #[test]
    fn slope_of_power_law_with_interval() {
        // K* = 3 N^(1/0.7).
        let mut r = stats::rng(3, 0);
        let mut groups = BTreeMap::new();
        for n in [20u64, 28, 40, 56] {
            groups.insert(n, sweep(3.0 * (n as f64).powf(1.0 / 0.7), 3, &mut r));
        }
        let s = fit_scaling(&groups, KstarSettings::default(), 200, 4, 0.95);
        let line = s.line.unwrap();
        assert!((line.slope - 1.0 / 0.7).abs() < 0.1, "{line:?}");
        assert!(
            s.low < 1.0 / 0.7 && 1.0 / 0.7 < s.high,
            "{} {}",
            s.low,
            s.high
        );
        assert!(s.n_boot_ok > 150);
        for (i, (n, f)) in s.per_n.iter().enumerate() {
            assert!(f.valid);
            assert!(
                s.kstar_low[i] <= f.kstar * 1.05 && s.kstar_high[i] >= f.kstar * 0.95,
                "N={n}"
            );
        }
        // Deterministic.
        let t = fit_scaling(&groups, KstarSettings::default(), 200, 4, 0.95);
        assert_eq!((s.low, s.high), (t.low, t.high));
    }
}
