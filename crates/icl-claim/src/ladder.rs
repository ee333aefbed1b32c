//! The scale ladder: a claim whose runs span several context lengths N is judged at each N by
//! the same code, one rung per N. The claim row is the largest N's (the closest to the paper's
//! N = 100); every rung's number, interval and verdict go to `details.ladder`, which REPORT.md
//! shows as a "Trend with N" table, and the figure gains a panel of the number against N.
//!
//! With one N (the quick and ci profiles for most claims) nothing changes: the claim is the
//! rung's own, byte for byte.

use crate::claim::{Claim, Verdict};
use crate::frame::f64s;
use anyhow::Result;
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel};
use polars::prelude::*;
use serde_json::{json, Value};

/// The rule stated in every ladder's details (and REPORT.md).
pub const RULE: &str = "each N is judged by the same rules; the claim's verdict, number and interval are the largest N's (the closest to the paper's N = 100); the table gives every N";

/// The distinct context lengths of a summary frame, ascending (empty without an `N` column).
fn context_lengths(df: &DataFrame) -> Result<Vec<u64>> {
    if df.column("N").is_err() {
        return Ok(Vec::new());
    }
    crate::frame::context_lengths(df)
}

/// The rows of `df` whose `N` equals `n`.
fn rows_at(df: &DataFrame, n: u64) -> Result<DataFrame> {
    df.clone()
        .lazy()
        .filter(col("N").cast(DataType::Float64).eq(lit(n as f64)))
        .collect()
        .map_err(|e| anyhow::anyhow!("selecting the runs at N = {n}: {e}"))
}

/// Which rows of `df` have `N` equal to `n` (to split inputs paired with the summaries).
fn mask_at(df: &DataFrame, n: u64) -> Result<Vec<bool>> {
    Ok(f64s(df, "N")?.into_iter().map(|v| v == n as f64).collect())
}

/// A claim's analyses: one over all its runs, or one per context length N (ascending) when the
/// runs span several. [`Rungs::judge`] turns them into the claim row and figure.
#[derive(Debug, Clone)]
pub enum Rungs<A> {
    Whole(A),
    PerN(Vec<(u64, A)>),
}

impl<A> Rungs<A> {
    /// Judge each analysis with `judge`; several rungs are combined (see the module docs).
    pub fn judge(self, mut judge: impl FnMut(&A) -> (Claim, Figure)) -> (Claim, Figure) {
        match self {
            Rungs::Whole(a) => judge(&a),
            Rungs::PerN(rungs) => combine(rungs.iter().map(|(n, a)| (*n, judge(a))).collect()),
        }
    }
}

/// Analyse `items`, each tagged with its run's N, at each distinct N (ascending), or once as a
/// whole when they hold fewer than two N.
pub fn by_n<T, A, F>(items: Vec<(u64, T)>, mut analyze: F) -> Result<Rungs<A>>
where
    T: Clone,
    F: FnMut(Vec<T>) -> Result<A>,
{
    let mut ns: Vec<u64> = items.iter().map(|(n, _)| *n).collect();
    ns.sort_unstable();
    ns.dedup();
    if ns.len() < 2 {
        return Ok(Rungs::Whole(analyze(
            items.into_iter().map(|(_, t)| t).collect(),
        )?));
    }
    let rungs = ns
        .iter()
        .map(|&n| {
            let at_n = items
                .iter()
                .filter(|(m, _)| *m == n)
                .map(|(_, t)| t.clone())
                .collect();
            Ok((n, analyze(at_n)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Rungs::PerN(rungs))
}

/// The same for a summary frame: `analyze(rows, mask)` gets the rows at one N and which rows of
/// `df` they are (to subset inputs paired with the summaries), or `df` itself and `None` when it
/// holds fewer than two N (or no `N` column).
pub fn by_n_frame<A, F>(df: &DataFrame, mut analyze: F) -> Result<Rungs<A>>
where
    F: FnMut(&DataFrame, Option<&[bool]>) -> Result<A>,
{
    match context_lengths(df)?.as_slice() {
        ns @ [_, _, ..] => Ok(Rungs::PerN(
            ns.iter()
                .map(|&n| Ok((n, analyze(&rows_at(df, n)?, Some(&mask_at(df, n)?))?)))
                .collect::<Result<Vec<_>>>()?,
        )),
        _ => Ok(Rungs::Whole(analyze(df, None)?)),
    }
}

/// "reproduced at N = 16, 32; partly at N = 8" (verdicts in the order of their first rung).
pub fn verdicts_by_n(rungs: &[(u64, Verdict)]) -> String {
    let mut groups: Vec<(Verdict, Vec<u64>)> = Vec::new();
    for &(n, v) in rungs {
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, ns)) => ns.push(n),
            None => groups.push((v, vec![n])),
        }
    }
    groups
        .iter()
        .map(|(v, ns)| {
            let ns: Vec<String> = ns.iter().map(u64::to_string).collect();
            format!("{} at N = {}", v.as_str(), ns.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One claim from its rungs (ascending N): see the module docs.
pub fn combine(mut rungs: Vec<(u64, (Claim, Figure))>) -> (Claim, Figure) {
    if rungs.len() == 1 {
        return rungs.pop().expect("one rung").1;
    }
    let rows: Vec<Value> = rungs
        .iter()
        .map(|(n, (c, _))| {
            let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
            json!({"N": n, "value": num(c.value), "low": num(c.low), "high": num(c.high),
                   "verdict": c.verdict.as_str(), "runs": c.n_runs})
        })
        .collect();
    let total_runs: i64 = rungs.iter().map(|(_, (c, _))| c.n_runs).sum();
    let by_n: Vec<(u64, Verdict)> = rungs.iter().map(|(n, (c, _))| (*n, c.verdict)).collect();
    let summary = verdicts_by_n(&by_n);
    let (top_n, (mut claim, mut figure)) = rungs.pop().expect("several rungs");
    let panel = trend_panel(&claim.unit, &rows, &by_n);
    let mut details: Value = serde_json::from_str(&claim.details).unwrap_or_else(|_| json!({}));
    if let Value::Object(o) = &mut details {
        o.insert(
            "ladder".into(),
            json!({"axis": "N", "headline_N": top_n, "rule": RULE, "verdicts": summary, "rows": rows}),
        );
    }
    claim.details = details.to_string();
    claim.n_runs = total_runs;
    figure.title = Some(match figure.title.take() {
        Some(t) => format!("{t} (N = {top_n}; trend over N in the last panel)"),
        None => format!("N = {top_n}; trend over N in the last panel"),
    });
    figure.panels.push(panel);
    (claim, figure)
}

/// The claim's number against N with its interval, one marker per verdict.
fn trend_panel(unit: &str, rows: &[Value], by_n: &[(u64, Verdict)]) -> Panel {
    let get = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    // A number spanning a decade or more (K*) reads on a log axis.
    let vals: Vec<f64> = rows
        .iter()
        .map(|r| get(r, "value"))
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let y = if lo > 0.0 && hi / lo >= 5.0 {
        Axis::log10(unit)
    } else {
        Axis::linear(unit)
    };
    let mut p = Panel::new(
        "trend with context length N",
        Axis::log10("context length N"),
        y,
    );
    let bars: Vec<(f64, f64, f64, f64)> = rows
        .iter()
        .filter(|r| {
            get(r, "value").is_finite() && get(r, "low").is_finite() && get(r, "high").is_finite()
        })
        .map(|r| (get(r, "N"), get(r, "value"), get(r, "low"), get(r, "high")))
        .collect();
    if !bars.is_empty() {
        p.push(Layer::error_bars(bars).color(color(0)));
    }
    let verdicts = [
        Verdict::Reproduced,
        Verdict::Partly,
        Verdict::Not,
        Verdict::Inconclusive,
    ];
    let markers = [
        Marker::Circle,
        Marker::Square,
        Marker::Cross,
        Marker::Triangle,
    ];
    for (i, v) in verdicts.iter().enumerate() {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .zip(by_n)
            .filter(|(r, (_, w))| w == v && get(r, "value").is_finite())
            .map(|(r, _)| (get(r, "N"), get(r, "value")))
            .collect();
        if !pts.is_empty() {
            p.push(
                Layer::points(pts)
                    .color(color(i + 1))
                    .marker(markers[i])
                    .size(5)
                    .label(v.as_str()),
            );
        }
    }
    p.legend(Legend::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(v: f64, verdict: Verdict, runs: i64) -> Claim {
        Claim {
            claim: "C9".into(),
            figure: "Fig 6c".into(),
            statement: "s".into(),
            paper_value: "p".into(),
            value: v,
            low: v - 0.1,
            high: v + 0.1,
            unit: "fraction".into(),
            profile: "full".into(),
            verdict,
            n_runs: runs,
            details: r#"{"checks":[]}"#.into(),
        }
    }

    #[test]
    fn one_rung_is_the_rung_itself() {
        let c = claim(0.5, Verdict::Partly, 3);
        let (out, _) = combine(vec![(8, (c.clone(), Figure::new("f")))]);
        assert_eq!(out, c);
    }

    #[test]
    fn several_rungs_take_the_largest_n_and_tabulate_all() {
        let (out, fig) = combine(vec![
            (8, (claim(0.0, Verdict::Not, 30), Figure::new("a"))),
            (16, (claim(0.4, Verdict::Reproduced, 30), Figure::new("b"))),
            (32, (claim(0.5, Verdict::Reproduced, 30), Figure::new("c"))),
        ]);
        assert_eq!(out.value, 0.5);
        assert_eq!(out.verdict, Verdict::Reproduced);
        assert_eq!(out.n_runs, 90);
        let d: Value = serde_json::from_str(&out.details).unwrap();
        assert_eq!(
            d["ladder"]["verdicts"],
            "not reproduced at N = 8; reproduced at N = 16, 32"
        );
        assert_eq!(d["ladder"]["rows"].as_array().unwrap().len(), 3);
        assert_eq!(d["ladder"]["rows"][0]["N"], 8);
        assert_eq!(fig.panels.len(), 1, "the trend panel");
        assert!(fig.title.unwrap().starts_with("c (N = 32"));
    }
}
