//! The label-count floor: what an ICL-test accuracy threshold must clear to mean "copying".
//!
//! In a standard ICL-test sequence (N - 1 context tokens, then the query) exactly one context
//! token is the query's match and carries the query's label; the other N - 2 carry fair,
//! independent labels. Predicting the majority label of the N - 1 context labels therefore
//! scores above chance without reading the match's item at all:
//!
//!   floor(N) = P(M > (N - 3) / 2) + P(M = (N - 3) / 2) / 2,   M ~ Binomial(N - 2, 1/2)
//!
//! (ties, possible for odd N, broken by a coin). 0.75 at N = 4, 0.656 at 8, 0.605 at 16, 0.540
//! at 100. A threshold that separates copying from not copying must sit at least
//! [`FLOOR_MARGIN`] above it, so that counting alone can neither cross it upward (acquisition,
//! t_ICL, end of a plateau) nor keep a run above it that has stopped copying (loss of ICL).
//! This is the one place the rule is written; every claim with an accuracy threshold prints
//! the floor for its N beside the threshold through [`floor_check`].

use crate::claim::Check;

/// How far above the count floor an accuracy threshold must sit (about 5 binomial standard
/// deviations of a 2000-sequence test set's accuracy at the floor).
pub const FLOOR_MARGIN: f64 = 0.05;

/// Accuracy of "predict the context's majority label" on the standard ICL test with N tokens
/// per sequence (query included). `n < 2` has no context: 0.5.
pub fn count_floor(n: u64) -> f64 {
    if n < 3 {
        // N = 2: the context is the match alone, and the count copies its label.
        return if n == 2 { 1.0 } else { 0.5 };
    }
    let others = n - 2;
    // P(M = m) for M ~ Bin(others, 1/2), in logs to stay finite for large N.
    let ln_half = -(others as f64) * std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64; // ln C(others, m), built up from m = 0
    let mut p = 0.0;
    for m in 0..=others {
        if m > 0 {
            ln_choose += ((others - m + 1) as f64).ln() - (m as f64).ln();
        }
        let pm = (ln_choose + ln_half).exp();
        // The match adds one vote for the query's label: majority right iff m + 1 > others - m.
        let (votes_for, votes_against) = (m + 1, others - m);
        if votes_for > votes_against {
            p += pm;
        } else if votes_for == votes_against {
            p += pm / 2.0;
        }
    }
    p
}

/// Whether an accuracy threshold tells copying from counting at context length N.
pub fn clears_floor(threshold: f64, n: u64) -> bool {
    threshold >= count_floor(n) + FLOOR_MARGIN - 1e-12
}

/// The highest count floor over the context lengths `ns` (0.5, chance, when there are none):
/// what a default threshold must clear for every run.
pub fn highest_floor(ns: &[u64]) -> f64 {
    ns.iter().map(|&n| count_floor(n)).fold(0.5, f64::max)
}

/// `[{N, floor}]` for the distinct context lengths in `ns`, for a claim's details.
pub fn floors_json(ns: &[u64]) -> serde_json::Value {
    let mut ns = ns.to_vec();
    ns.sort_unstable();
    ns.dedup();
    serde_json::Value::Array(
        ns.iter()
            .map(|&n| serde_json::json!({"N": n, "floor": count_floor(n)}))
            .collect(),
    )
}

/// The check every accuracy-threshold claim carries: `threshold` (named `what`) against the
/// count floor at each context length the claim's runs use. Fails if any N is too small for the
/// threshold; the claim then cannot tell copying from counting and is inconclusive there.
pub fn floor_check(what: &str, threshold: f64, ns: &[u64]) -> Check {
    let pairs: Vec<(f64, u64)> = ns.iter().map(|&n| (threshold, n)).collect();
    floor_check_each(what, &pairs)
}

/// [`floor_check`] for thresholds that differ per run: every (threshold, N) pair must clear the
/// floor of its N. The check's value is the largest threshold.
pub fn floor_check_each(what: &str, pairs: &[(f64, u64)]) -> Check {
    let mut ns: Vec<u64> = pairs.iter().map(|p| p.1).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut ts: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    let floors: Vec<String> = ns
        .iter()
        .map(|&n| format!("N = {n}: {:.3}", count_floor(n)))
        .collect();
    Check {
        name: format!("{what}_clear_of_count_floor"),
        pass: !pairs.is_empty() && pairs.iter().all(|&(t, n)| clears_floor(t, n)),
        value: ts.last().copied(),
        rule: format!(
            "the {what} threshold {} sits at least {FLOOR_MARGIN} above the label-count floor (accuracy of predicting the context's majority label; {}), so counting alone cannot pass for copying",
            ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" / "),
            if floors.is_empty() { "no N in the data".to_string() } else { floors.join(", ") }
        ),
    }
}

/// The default "ICL lost" threshold at context length N: halfway between the acquisition
/// threshold (copying) and the count floor (counting), so a run that falls back to counting is
/// lost, and test-set noise around either level does not flip the call.
pub fn lose_threshold(acquire: f64, n: u64) -> f64 {
    (acquire + count_floor(n)) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_matches_the_issue_table_and_a_direct_count() {
        for (n, want) in [
            (4, 0.75),
            (8, 0.656),
            (16, 0.605),
            (24, 0.584),
            (32, 0.572),
            (64, 0.550),
            (100, 0.540),
        ] {
            assert!(
                (count_floor(n) - want).abs() < 0.0015,
                "N = {n}: {} vs {want}",
                count_floor(n)
            );
        }
        // Exact at N = 8: P(Bin(6, 1/2) >= 3) = 42/64.
        assert!((count_floor(8) - 42.0 / 64.0).abs() < 1e-12);
        // Odd N has ties: N = 5, others 3: m >= 2 wins (4/8), m = 1 ties (3/8 / 2).
        assert!((count_floor(5) - (4.0 / 8.0 + 3.0 / 16.0)).abs() < 1e-12);
        // Brute force over all label patterns at N = 9.
        let others = 7u32;
        let mut right = 0.0;
        for bits in 0u32..(1 << others) {
            let m = bits.count_ones() as i32;
            let margin = m + 1 - (others as i32 - m);
            right += if margin > 0 {
                1.0
            } else if margin == 0 {
                0.5
            } else {
                0.0
            };
        }
        assert!((count_floor(9) - right / f64::from(1u32 << others)).abs() < 1e-12);
        // Large N stays finite and tends to 1/2.
        assert!(count_floor(100_000) > 0.5 && count_floor(100_000) < 0.51);
    }

    #[test]
    fn rule_and_check() {
        assert!(
            clears_floor(0.95, 8)
                && clears_floor(0.71, 8)
                && !clears_floor(0.6, 8)
                && !clears_floor(0.7, 8)
        );
        assert!(clears_floor(0.6, 100) && !clears_floor(0.6, 16));
        let c = floor_check("plateau", 0.6, &[8, 8]);
        assert!(!c.pass && c.rule.contains("N = 8: 0.656"), "{}", c.rule);
        assert!(floor_check("acquisition", 0.95, &[8, 16, 32]).pass);
        assert!(!floor_check("acquisition", 0.95, &[]).pass);
        let t = lose_threshold(0.9, 8);
        assert!(clears_floor(t, 8) && t < 0.9);
    }
}
