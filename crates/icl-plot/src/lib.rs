//! Figures for the report: a small declarative layer over plotters.
//!
//! A [`Figure`] is a grid of [`Panel`]s; a panel has two [`Axis`] (linear or log10) and a list of
//! [`Layer`]s (lines, points, error bars, bands, bars, boxes, violins, reference lines, text).
//! The same figure renders to PNG ([`Figure::save_png`]) and SVG ([`Figure::save_svg`]).
//!
//! Text uses a bundled DejaVu Sans (fonts/, Bitstream Vera license) registered with plotters'
//! `ab_glyph` font table, so rendering needs neither fontconfig nor system fonts, and the same
//! input gives the same bytes on every machine.
//!
//! Log axes are drawn by plotting log10 of the data on a linear coordinate with tick positions
//! computed here: one coordinate type for every panel, and tick labels we control.

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;
use std::path::Path;
use std::sync::Once;

pub use plotters::style::RGBColor;

/// The font family every text element uses; [`register_fonts`] maps it to the bundled font.
pub const FONT_FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Register the bundled font for every style plotters may ask for. Idempotent; every render
/// function calls it, so callers never need to.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ] {
            // The bytes are compiled in, so failure is a build defect, not a runtime condition.
            assert!(
                plotters::style::register_font(FONT_FAMILY, style, DEJAVU_SANS).is_ok(),
                "bundled DejaVuSans.ttf is not a valid font"
            );
        }
    });
}

/// A colour palette (matplotlib's tab10), so figures look familiar next to the paper's.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Palette colour `i` (wraps around).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub const BLACK_: RGBColor = RGBColor(0, 0, 0);
pub const DARK: RGBColor = RGBColor(30, 30, 30);
pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// How an axis maps data to the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// log10 axis; non-positive values are not drawn.
    Log10,
}

impl Scale {
    fn fwd(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log10 => {
                if v > 0.0 {
                    v.log10()
                } else {
                    f64::NAN
                }
            }
        }
    }
    fn inv(self, t: f64) -> f64 {
        match self {
            Scale::Linear => t,
            Scale::Log10 => 10f64.powf(t),
        }
    }
}

/// One axis: its label, scale and an optional fixed data range (else fitted to the layers).
#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub range: Option<(f64, f64)>,
    /// Label only whole numbers (counts, run indices).
    pub integer: bool,
}

impl Axis {
    pub fn linear(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            scale: Scale::Linear,
            range: None,
            integer: false,
        }
    }
    pub fn log10(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            scale: Scale::Log10,
            range: None,
            integer: false,
        }
    }
    /// Ticks at whole numbers only (linear axes).
    pub fn integer(mut self) -> Self {
        self.integer = true;
        self
    }
    /// Fix the visible range (data units, before any log).
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
}

/// Point marker shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Cross,
}

/// Five-number summary drawn as a box: whiskers at `min`/`max`, box from `q1` to `q3`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStat {
    pub x: f64,
    pub half_width: f64,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

impl BoxStat {
    /// Box of `samples` at position `x` (quantiles by linear interpolation, whiskers at the
    /// extremes). `None` when there are no finite samples.
    pub fn from_samples(x: f64, half_width: f64, samples: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Self {
            x,
            half_width,
            min: v[0],
            q1: quantile_sorted(&v, 0.25),
            median: quantile_sorted(&v, 0.5),
            q3: quantile_sorted(&v, 0.75),
            max: v[v.len() - 1],
        })
    }
}

/// A violin: a symmetric density outline around `x`; `profile` holds (y, half-width) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Violin {
    pub x: f64,
    pub profile: Vec<(f64, f64)>,
}

impl Violin {
    /// Gaussian kernel density of `samples` (Silverman's bandwidth), cut at the data's extremes
    /// like seaborn's `cut=0`, scaled so the widest point is `half_width`. Density is evaluated
    /// in the y axis' scale (log10 for a log axis), so the outline looks right on the page.
    pub fn from_samples(x: f64, half_width: f64, samples: &[f64], y_scale: Scale) -> Option<Self> {
        let t: Vec<f64> = samples
            .iter()
            .map(|&s| y_scale.fwd(s))
            .filter(|s| s.is_finite())
            .collect();
        if t.is_empty() {
            return None;
        }
        let n = t.len() as f64;
        let mean = t.iter().sum::<f64>() / n;
        let sd = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        let mut sorted = t.clone();
        sorted.sort_by(f64::total_cmp);
        let iqr = quantile_sorted(&sorted, 0.75) - quantile_sorted(&sorted, 0.25);
        let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
        let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
        if spread.is_nan() || spread <= 0.0 || hi <= lo {
            // All samples equal: a flat bar at that value.
            return Some(Self {
                x,
                profile: vec![(y_scale.inv(lo), half_width), (y_scale.inv(lo), half_width)],
            });
        }
        let bw = 0.9 * spread * n.powf(-0.2);
        const STEPS: usize = 80;
        let ys: Vec<f64> = (0..=STEPS)
            .map(|i| lo + (hi - lo) * i as f64 / STEPS as f64)
            .collect();
        let dens: Vec<f64> = ys
            .iter()
            .map(|y| {
                t.iter()
                    .map(|s| (-0.5 * ((y - s) / bw).powi(2)).exp())
                    .sum::<f64>()
            })
            .collect();
        let peak = dens.iter().cloned().fold(0.0, f64::max);
        let profile = ys
            .iter()
            .zip(&dens)
            .map(|(y, d)| (y_scale.inv(*y), half_width * d / peak))
            .collect();
        Some(Self { x, profile })
    }
}

/// Quantile of sorted data by linear interpolation between order statistics (numpy's default,
/// "type 7"). `+inf` entries (runs censored at the end of training) sort last: a quantile that
/// needs them is `+inf`, one below them is exact. The one definition: `icl_claim::stats`
/// re-exports it (this is the lowest crate the claim library and the box plots share).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let i = h.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let frac = h - i as f64;
    if frac == 0.0 {
        return sorted[i];
    }
    if sorted[j].is_infinite() || sorted[i].is_infinite() {
        return f64::INFINITY;
    }
    sorted[i] + frac * (sorted[j] - sorted[i])
}

/// What a layer draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Line(Vec<(f64, f64)>),
    Points(Vec<(f64, f64)>),
    /// (x, y, low, high): a marker at y with a vertical bar from low to high.
    ErrorBars(Vec<(f64, f64, f64, f64)>),
    VLine(f64),
    HLine(f64),
    /// (x, low, high): a shaded band between two curves.
    Band(Vec<(f64, f64, f64)>),
    /// (left, right, height): bars from the axis floor.
    Bars(Vec<(f64, f64, f64)>),
    Boxes(Vec<BoxStat>),
    Violins(Vec<Violin>),
    Text {
        x: f64,
        y: f64,
        text: String,
    },
}

/// One drawable layer with its style. Build with the constructors, refine with the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub kind: Kind,
    pub color: RGBColor,
    pub label: Option<String>,
    /// Line width or marker radius in pixels (text: font size).
    pub size: u32,
    pub dashed: bool,
    pub filled: bool,
    pub marker: Marker,
    /// Fill opacity for bands, bars, violins and boxes.
    pub opacity: f64,
}

impl Layer {
    fn new(kind: Kind, size: u32) -> Self {
        Self {
            kind,
            color: color(0),
            label: None,
            size,
            dashed: false,
            filled: true,
            marker: Marker::Circle,
            opacity: 0.3,
        }
    }
    pub fn line(points: Vec<(f64, f64)>) -> Self {
        Self::new(Kind::Line(points), 2)
    }
    pub fn points(points: Vec<(f64, f64)>) -> Self {
        Self::new(Kind::Points(points), 3)
    }
    pub fn error_bars(bars: Vec<(f64, f64, f64, f64)>) -> Self {
        Self::new(Kind::ErrorBars(bars), 4)
    }
    pub fn vline(x: f64) -> Self {
        Self::new(Kind::VLine(x), 2)
    }
    pub fn hline(y: f64) -> Self {
        Self::new(Kind::HLine(y), 1)
    }
    pub fn band(rows: Vec<(f64, f64, f64)>) -> Self {
        Self::new(Kind::Band(rows), 1)
    }
    pub fn bars(bars: Vec<(f64, f64, f64)>) -> Self {
        let mut l = Self::new(Kind::Bars(bars), 1);
        l.opacity = 0.6;
        l
    }
    pub fn boxes(boxes: Vec<BoxStat>) -> Self {
        Self::new(Kind::Boxes(boxes), 1)
    }
    pub fn violins(violins: Vec<Violin>) -> Self {
        Self::new(Kind::Violins(violins), 1)
    }
    pub fn text(x: f64, y: f64, text: impl Into<String>) -> Self {
        let mut l = Self::new(
            Kind::Text {
                x,
                y,
                text: text.into(),
            },
            14,
        );
        l.color = BLACK_;
        l
    }
    pub fn color(mut self, c: RGBColor) -> Self {
        self.color = c;
        self
    }
    pub fn label(mut self, s: impl Into<String>) -> Self {
        self.label = Some(s.into());
        self
    }
    pub fn size(mut self, px: u32) -> Self {
        self.size = px;
        self
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn hollow(mut self) -> Self {
        self.filled = false;
        self
    }
    pub fn marker(mut self, m: Marker) -> Self {
        self.marker = m;
        self
    }
    pub fn opacity(mut self, a: f64) -> Self {
        self.opacity = a.clamp(0.0, 1.0);
        self
    }

    /// Data extents this layer asks the axes to show, in transformed coordinates.
    fn extents(&self, xs: Scale, ys: Scale, out_x: &mut Vec<f64>, out_y: &mut Vec<f64>) {
        let mut px = |v: f64| out_x.push(xs.fwd(v));
        match &self.kind {
            Kind::Line(p) | Kind::Points(p) => {
                p.iter().for_each(|&(x, _)| px(x));
                out_y.extend(p.iter().map(|&(_, y)| ys.fwd(y)));
            }
            Kind::ErrorBars(b) => {
                b.iter().for_each(|&(x, ..)| px(x));
                for &(_, y, lo, hi) in b {
                    out_y.extend([ys.fwd(y), ys.fwd(lo), ys.fwd(hi)]);
                }
            }
            Kind::VLine(x) => px(*x),
            Kind::HLine(y) => out_y.push(ys.fwd(*y)),
            Kind::Band(r) => {
                r.iter().for_each(|&(x, ..)| px(x));
                for &(_, lo, hi) in r {
                    out_y.extend([ys.fwd(lo), ys.fwd(hi)]);
                }
            }
            Kind::Bars(b) => {
                for &(l, r, _) in b {
                    px(l);
                    px(r);
                }
                out_y.extend(b.iter().map(|&(_, _, h)| ys.fwd(h)));
                if ys == Scale::Linear && !b.is_empty() {
                    out_y.push(0.0);
                }
            }
            Kind::Boxes(b) => {
                for s in b {
                    px(s.x - s.half_width);
                    px(s.x + s.half_width);
                    out_y.extend([ys.fwd(s.min), ys.fwd(s.max)]);
                }
            }
            Kind::Violins(v) => {
                for s in v {
                    let w = s.profile.iter().map(|p| p.1).fold(0.0, f64::max);
                    px(s.x - w);
                    px(s.x + w);
                    out_y.extend(s.profile.iter().map(|p| ys.fwd(p.0)));
                }
            }
            Kind::Text { .. } => {}
        }
    }
}

/// Where a panel's legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    None,
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
    MiddleRight,
    MiddleLeft,
}

/// One chart: axes, layers, legend.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub layers: Vec<Layer>,
    pub legend: Legend,
}

impl Panel {
    pub fn new(title: impl Into<String>, x: Axis, y: Axis) -> Self {
        Self {
            title: title.into(),
            x,
            y,
            layers: Vec::new(),
            legend: Legend::UpperLeft,
        }
    }
    pub fn layer(mut self, l: Layer) -> Self {
        self.layers.push(l);
        self
    }
    pub fn push(&mut self, l: Layer) {
        self.layers.push(l);
    }
    pub fn legend(mut self, pos: Legend) -> Self {
        self.legend = pos;
        self
    }

    /// The visible (transformed) ranges: the fixed range if given, else the layers' extents
    /// padded by 5%.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let (mut xv, mut yv) = (Vec::new(), Vec::new());
        for l in &self.layers {
            l.extents(self.x.scale, self.y.scale, &mut xv, &mut yv);
        }
        (axis_range(&self.x, &xv), axis_range(&self.y, &yv))
    }
}

fn axis_range(axis: &Axis, vals: &[f64]) -> (f64, f64) {
    if let Some((lo, hi)) = axis.range {
        let (a, b) = (axis.scale.fwd(lo), axis.scale.fwd(hi));
        if a.is_finite() && b.is_finite() && b > a {
            return (a, b);
        }
    }
    let finite = vals.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            0.5
        };
        let pad = if axis.scale == Scale::Log10 { 0.5 } else { pad };
        return (lo - pad, hi + pad);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// A "nice" step (1, 2 or 5 times a power of ten) near `span / target`.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn linear_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let step = nice_step(hi - lo, target);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// Tick positions (transformed) and light grid positions for one axis.
fn ticks(scale: Scale, lo: f64, hi: f64, integer: bool) -> (Vec<f64>, Vec<f64>) {
    match scale {
        Scale::Linear => {
            let (t, step) = linear_ticks(lo, hi, 6);
            if integer && step < 1.0 {
                return (
                    ((lo.ceil() as i64)..=(hi.floor() as i64))
                        .map(|k| k as f64)
                        .collect(),
                    Vec::new(),
                );
            }
            // One light grid line halfway between labelled ticks.
            let half = step / 2.0;
            let light = ((lo / half).ceil() as i64..=(hi / half).floor() as i64)
                .filter(|k| k % 2 != 0)
                .map(|k| k as f64 * half)
                .collect();
            (t, light)
        }
        Scale::Log10 => {
            let decades: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
                .map(|k| k as f64)
                .collect();
            let mut light = Vec::new();
            for k in (lo.floor() as i64)..=(hi.ceil() as i64) {
                for m in 2..10 {
                    let v = k as f64 + (m as f64).log10();
                    if v >= lo && v <= hi {
                        light.push(v);
                    }
                }
            }
            if decades.len() >= 3 {
                // Thin decades so at most ~7 labels show.
                let every = decades.len().div_ceil(7);
                let bold: Vec<f64> = decades.iter().copied().step_by(every).collect();
                return (bold, light);
            }
            // Fewer than three decades visible: label 1-2-5 multiples, else plain linear ticks.
            let mut bold = Vec::new();
            for k in (lo.floor() as i64)..=(hi.ceil() as i64) {
                for m in [1.0f64, 2.0, 5.0] {
                    let v = k as f64 + m.log10();
                    if v >= lo - 1e-12 && v <= hi + 1e-12 {
                        bold.push(v);
                    }
                }
            }
            if bold.len() < 3 {
                let (t, _) = linear_ticks(10f64.powf(lo), 10f64.powf(hi), 5);
                bold = t.into_iter().filter(|v| *v > 0.0).map(f64::log10).collect();
            }
            (bold, light)
        }
    }
}

/// Format a tick value compactly: integers plainly up to 1e5, otherwise scientific.
pub fn format_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            format!("{v}")
        };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        // "1.50e5" -> "1.5e5", "1.00e-4" -> "1e-4"
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Tick label of a transformed coordinate: plain numbers on linear axes; on log axes plain
/// within [0.01, 10000) and `1e4`, `2e5`... outside, so decades read alike.
fn format_tick(scale: Scale, t: f64) -> String {
    let v = scale.inv(t);
    if scale == Scale::Log10 && v > 0.0 && !(0.01..10_000.0).contains(&v) {
        let k = v.log10().floor();
        let m = (v / 10f64.powf(k) * 100.0).round() / 100.0;
        let (m, k) = if m >= 10.0 {
            (m / 10.0, k + 1.0)
        } else {
            (m, k)
        };
        let ms = format_number(m);
        return if ms == "1" {
            format!("1e{k}")
        } else {
            format!("{ms}e{k}")
        };
    }
    format_number(v)
}

/// A grid of panels with an optional overall title.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: Option<String>,
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel_size: (u32, u32),
}

impl Figure {
    pub fn new(title: impl Into<String>) -> Self {
        let t: String = title.into();
        Self {
            title: if t.is_empty() { None } else { Some(t) },
            panels: Vec::new(),
            columns: 2,
            panel_size: (560, 420),
        }
    }
    pub fn panel(mut self, p: Panel) -> Self {
        self.panels.push(p);
        self
    }
    pub fn columns(mut self, c: usize) -> Self {
        self.columns = c.max(1);
        self
    }
    pub fn panel_size(mut self, w: u32, h: u32) -> Self {
        self.panel_size = (w, h);
        self
    }

    const TITLE_H: u32 = 36;

    /// Total size in pixels.
    pub fn size(&self) -> (u32, u32) {
        let cols = self.columns.min(self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(cols).max(1);
        let title = if self.title.is_some() {
            Self::TITLE_H
        } else {
            0
        };
        (
            self.panel_size.0 * cols as u32,
            self.panel_size.1 * rows as u32 + title,
        )
    }

    /// Draw onto any plotters drawing area.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        register_fonts();
        if self.panels.is_empty() {
            bail!("figure has no panels");
        }
        root.fill(&WHITE).map_err(pe)?;
        let body = match &self.title {
            Some(t) => {
                let (top, rest) = root.split_vertically(Self::TITLE_H);
                let (w, _) = top.dim_in_pixel();
                let style = TextStyle::from((FONT_FAMILY, 20).into_font()).pos(
                    text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Center),
                );
                top.draw_text(t, &style, ((w / 2) as i32, (Self::TITLE_H / 2) as i32))
                    .map_err(pe)?;
                rest
            }
            None => root.clone(),
        };
        let cols = self.columns.min(self.panels.len());
        let rows = self.panels.len().div_ceil(cols);
        let cells = body.split_evenly((rows, cols));
        for (p, cell) in self.panels.iter().zip(cells.iter()) {
            draw_panel(p, cell).with_context(|| format!("panel `{}`", p.title))?;
        }
        Ok(())
    }

    /// Render to a PNG file.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        {
            let root = BitMapBackend::new(path, self.size()).into_drawing_area();
            self.draw(&root)?;
            root.present()
                .map_err(pe)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Render to an SVG file.
    pub fn save_svg(&self, path: &Path) -> Result<()> {
        {
            let root = SVGBackend::new(path, self.size()).into_drawing_area();
            self.draw(&root)?;
            root.present()
                .map_err(pe)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Render both formats.
    pub fn save(&self, png: &Path, svg: &Path) -> Result<()> {
        self.save_png(png)?;
        self.save_svg(svg)
    }
}

fn pe<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// A linear f64 axis whose tick positions are given (bold ticks carry labels, light ones are
/// grid lines only). plotters' `WithKeyPoints<RangedCoordf64>` would do, but it loses the value
/// formatter the mesh requires.
struct Ticked {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let frac = (v - self.lo) / (self.hi - self.lo);
        let len = (limit.1 - limit.0) as f64;
        if !frac.is_finite() {
            return limit.0;
        }
        // Clamp far-out values so off-canvas geometry never overflows i32.
        limit.0 + (len * frac.clamp(-10.0, 10.0) + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

type Coord = Cartesian2d<Ticked, Ticked>;

fn draw_panel<DB: DrawingBackend>(p: &Panel, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let ((x0, x1), (y0, y1)) = p.ranges();
    let (xt, xl) = ticks(p.x.scale, x0, x1, p.x.integer);
    let (yt, yl) = ticks(p.y.scale, y0, y1, p.y.integer);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT_FAMILY, 17))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(62)
        .build_cartesian_2d(
            Ticked {
                lo: x0,
                hi: x1,
                bold: xt,
                light: xl,
            },
            Ticked {
                lo: y0,
                hi: y1,
                bold: yt,
                light: yl,
            },
        )
        .map_err(pe)?;
    let (xs, ys) = (p.x.scale, p.y.scale);
    let xf = move |v: &f64| format_tick(xs, *v);
    let yf = move |v: &f64| format_tick(ys, *v);
    chart
        .configure_mesh()
        .x_desc(p.x.label.as_str())
        .y_desc(p.y.label.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style((FONT_FAMILY, 13))
        .axis_desc_style((FONT_FAMILY, 15))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(pe)?;

    let mut any_label = false;
    for l in &p.layers {
        any_label |= l.label.is_some();
        draw_layer(&mut chart, l, xs, ys, (x0, x1), (y0, y1))?;
    }
    let pos = match p.legend {
        Legend::None => None,
        Legend::UpperLeft => Some(SeriesLabelPosition::UpperLeft),
        Legend::UpperRight => Some(SeriesLabelPosition::UpperRight),
        Legend::LowerLeft => Some(SeriesLabelPosition::LowerLeft),
        Legend::LowerRight => Some(SeriesLabelPosition::LowerRight),
        Legend::MiddleRight => Some(SeriesLabelPosition::MiddleRight),
        Legend::MiddleLeft => Some(SeriesLabelPosition::MiddleLeft),
    };
    if let (true, Some(pos)) = (any_label, pos) {
        chart
            .configure_series_labels()
            .position(pos)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT_FAMILY, 12))
            .draw()
            .map_err(pe)?;
    }
    Ok(())
}

fn draw_layer<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Coord>,
    l: &Layer,
    xs: Scale,
    ys: Scale,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<()> {
    let t = |x: f64, y: f64| -> Option<(f64, f64)> {
        let (a, b) = (xs.fwd(x), ys.fwd(y));
        (a.is_finite() && b.is_finite()).then_some((a, b))
    };
    let c = l.color;
    let stroke = ShapeStyle {
        color: c.to_rgba(),
        filled: false,
        stroke_width: l.size,
    };
    let fill = c.mix(l.opacity).filled();
    let label = l.label.clone();
    // Attach the legend entry to the series just drawn.
    macro_rules! legend {
        ($anno:expr, $elem:expr) => {
            if let Some(s) = &label {
                $anno.label(s.clone()).legend($elem);
            }
        };
    }
    // Legend sample of a line: dashed when the line is (two dashes), else solid.
    let dashed = l.dashed;
    let line_legend = move |(x, y): (i32, i32)| {
        let (a, b) = if dashed {
            ((0, 8), (12, 20))
        } else {
            ((0, 10), (10, 20))
        };
        EmptyElement::at((x, y))
            + PathElement::new(vec![(a.0, 0), (a.1, 0)], stroke)
            + PathElement::new(vec![(b.0, 0), (b.1, 0)], stroke)
    };
    match &l.kind {
        Kind::Line(pts) => {
            let pts: Vec<(f64, f64)> = pts.iter().filter_map(|&(x, y)| t(x, y)).collect();
            let anno = if l.dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts, 8, 5, stroke))
                    .map_err(pe)?
            } else {
                chart
                    .draw_series(LineSeries::new(pts, stroke))
                    .map_err(pe)?
            };
            legend!(anno, line_legend);
        }
        Kind::Points(pts) => {
            let pts: Vec<(f64, f64)> = pts.iter().filter_map(|&(x, y)| t(x, y)).collect();
            let style = if l.filled {
                c.mix(0.8).filled()
            } else {
                c.stroke_width(2)
            };
            draw_markers(chart, pts, l.size as i32, l.marker, style, label)?;
        }
        Kind::ErrorBars(bars) => {
            let cap = 0.006 * (xr.1 - xr.0);
            let mut paths = Vec::new();
            let mut dots = Vec::new();
            for &(x, y, lo, hi) in bars {
                let (Some(a), Some(b)) = (t(x, lo), t(x, hi)) else {
                    continue;
                };
                paths.push(vec![a, b]);
                paths.push(vec![(a.0 - cap, a.1), (a.0 + cap, a.1)]);
                paths.push(vec![(b.0 - cap, b.1), (b.0 + cap, b.1)]);
                if let Some(p) = t(x, y) {
                    dots.push(p);
                }
            }
            let s2 = ShapeStyle {
                stroke_width: 2,
                ..stroke
            };
            chart
                .draw_series(paths.into_iter().map(|p| PathElement::new(p, s2)))
                .map_err(pe)?;
            draw_markers(chart, dots, l.size as i32, l.marker, c.filled(), label)?;
        }
        Kind::VLine(x) => {
            let xv = xs.fwd(*x);
            if xv.is_finite() {
                let pts = vec![(xv, yr.0), (xv, yr.1)];
                let anno = if l.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 8, 5, stroke))
                        .map_err(pe)?
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, stroke))
                        .map_err(pe)?
                };
                legend!(anno, line_legend);
            }
        }
        Kind::HLine(y) => {
            let yv = ys.fwd(*y);
            if yv.is_finite() {
                let pts = vec![(xr.0, yv), (xr.1, yv)];
                let anno = if l.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 8, 5, stroke))
                        .map_err(pe)?
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, stroke))
                        .map_err(pe)?
                };
                legend!(anno, line_legend);
            }
        }
        Kind::Band(rows) => {
            let mut upper: Vec<(f64, f64)> = Vec::new();
            let mut lower: Vec<(f64, f64)> = Vec::new();
            for &(x, lo, hi) in rows {
                if let (Some(a), Some(b)) = (t(x, lo), t(x, hi)) {
                    lower.push(a);
                    upper.push(b);
                }
            }
            if upper.len() >= 2 {
                let mut poly = upper;
                poly.extend(lower.into_iter().rev());
                let anno = chart
                    .draw_series(std::iter::once(Polygon::new(poly, fill)))
                    .map_err(pe)?;
                legend!(anno, move |(x, y): (i32, i32)| Rectangle::new(
                    [(x, y - 5), (x + 20, y + 5)],
                    fill
                ));
            }
        }
        Kind::Bars(bars) => {
            let base = if ys == Scale::Linear {
                0f64.clamp(yr.0, yr.1)
            } else {
                yr.0
            };
            let rects: Vec<[(f64, f64); 2]> = bars
                .iter()
                .filter_map(|&(a, b, h)| {
                    let (x0, x1, y) = (xs.fwd(a), xs.fwd(b), ys.fwd(h));
                    (x0.is_finite() && x1.is_finite() && y.is_finite())
                        .then_some([(x0, base), (x1, y)])
                })
                .collect();
            chart
                .draw_series(rects.iter().map(|r| Rectangle::new(*r, c.stroke_width(1))))
                .map_err(pe)?;
            let anno = chart
                .draw_series(rects.iter().map(|r| Rectangle::new(*r, fill)))
                .map_err(pe)?;
            legend!(anno, move |(x, y): (i32, i32)| Rectangle::new(
                [(x, y - 5), (x + 20, y + 5)],
                fill
            ));
        }
        Kind::Boxes(boxes) => {
            let mut rects = Vec::new();
            let mut paths = Vec::new();
            for b in boxes {
                let (xa, xb, xm) = (
                    xs.fwd(b.x - b.half_width),
                    xs.fwd(b.x + b.half_width),
                    xs.fwd(b.x),
                );
                let [lo, q1, md, q3, hi] = [b.min, b.q1, b.median, b.q3, b.max].map(|v| ys.fwd(v));
                if ![xa, xb, xm, lo, q1, md, q3, hi]
                    .iter()
                    .all(|v| v.is_finite())
                {
                    continue;
                }
                rects.push([(xa, q1), (xb, q3)]);
                paths.push(vec![(xm, lo), (xm, q1)]);
                paths.push(vec![(xm, q3), (xm, hi)]);
                paths.push(vec![(xa, md), (xb, md)]);
            }
            chart
                .draw_series(rects.iter().map(|r| Rectangle::new(*r, fill)))
                .map_err(pe)?;
            chart
                .draw_series(rects.iter().map(|r| Rectangle::new(*r, c.stroke_width(1))))
                .map_err(pe)?;
            let s2 = ShapeStyle {
                stroke_width: 2,
                ..stroke
            };
            let anno = chart
                .draw_series(paths.into_iter().map(|p| PathElement::new(p, s2)))
                .map_err(pe)?;
            legend!(anno, move |(x, y): (i32, i32)| Rectangle::new(
                [(x, y - 5), (x + 20, y + 5)],
                fill
            ));
        }
        Kind::Violins(vs) => {
            let mut polys = Vec::new();
            for v in vs {
                let xc = xs.fwd(v.x);
                let right: Vec<(f64, f64)> = v
                    .profile
                    .iter()
                    .filter_map(|&(y, w)| {
                        let (a, b) = (xs.fwd(v.x + w), ys.fwd(y));
                        (a.is_finite() && b.is_finite()).then_some((a, b))
                    })
                    .collect();
                if right.is_empty() || !xc.is_finite() {
                    continue;
                }
                // Mirror around the centre in transformed x.
                let mut poly = right.clone();
                poly.extend(right.iter().rev().map(|&(a, b)| (2.0 * xc - a, b)));
                polys.push(poly);
            }
            chart
                .draw_series(polys.iter().map(|p| Polygon::new(p.clone(), fill)))
                .map_err(pe)?;
            let anno = chart
                .draw_series(polys.iter().map(|p| {
                    let mut closed = p.clone();
                    closed.push(p[0]);
                    PathElement::new(closed, c.stroke_width(1))
                }))
                .map_err(pe)?;
            legend!(anno, move |(x, y): (i32, i32)| Rectangle::new(
                [(x, y - 5), (x + 20, y + 5)],
                fill
            ));
        }
        Kind::Text { x, y, text } => {
            if let Some(p) = t(*x, *y) {
                let style = (FONT_FAMILY, l.size).into_font().color(&c);
                chart
                    .draw_series(std::iter::once(Text::new(text.clone(), p, style)))
                    .map_err(pe)?;
            }
        }
    }
    Ok(())
}

/// Point markers of one shape as one series (plotters' marker shapes are distinct types, so
/// each shape gets its own branch), with a legend entry when labelled.
fn draw_markers<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Coord>,
    pts: Vec<(f64, f64)>,
    r: i32,
    m: Marker,
    style: ShapeStyle,
    label: Option<String>,
) -> Result<()> {
    let cross_style = ShapeStyle {
        stroke_width: style.stroke_width.max(2),
        ..style
    };
    let anno = match m {
        Marker::Circle => chart.draw_series(pts.iter().map(|&p| Circle::new(p, r, style))),
        Marker::Square => chart.draw_series(
            pts.iter()
                .map(|&p| EmptyElement::at(p) + Rectangle::new([(-r, -r), (r, r)], style)),
        ),
        Marker::Triangle => {
            chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, r + 1, style)))
        }
        Marker::Cross => chart.draw_series(pts.iter().map(|&p| Cross::new(p, r, cross_style))),
    }
    .map_err(pe)?;
    if let Some(l) = label {
        let anno = anno.label(l);
        match m {
            Marker::Circle => anno.legend(move |(x, y)| Circle::new((x + 10, y), r, style)),
            Marker::Square => anno.legend(move |(x, y)| {
                EmptyElement::at((x + 10, y)) + Rectangle::new([(-r, -r), (r, r)], style)
            }),
            Marker::Triangle => {
                anno.legend(move |(x, y)| TriangleMarker::new((x + 10, y), r + 1, style))
            }
            Marker::Cross => anno.legend(move |(x, y)| Cross::new((x + 10, y), r, cross_style)),
        };
    }
    Ok(())
}

/// Histogram of `values` over [lo, hi) in `bins` equal bins, as (left, right, count) bars for
/// [`Layer::bars`]. Values outside the range (and NaN) are not counted.
pub fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let bins = bins.max(1);
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        if v >= lo && v < hi && w > 0.0 {
            let i = (((v - lo) / w) as usize).min(bins - 1);
            counts[i] += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (lo + i as f64 * w, lo + (i + 1) as f64 * w, c as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(format_number(1000.0), "1000");
        assert_eq!(format_number(10f64.powf(3.0)), "1000");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(150000.0), "1.5e5");
        assert_eq!(format_number(1e-4), "1e-4");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(2.5e4), "25000");
    }

    #[test]
    fn log_tick_labels() {
        assert_eq!(format_tick(Scale::Log10, 3.0), "1000");
        assert_eq!(format_tick(Scale::Log10, 4.0), "1e4");
        assert_eq!(format_tick(Scale::Log10, 5.0 + 2f64.log10()), "2e5");
        assert_eq!(format_tick(Scale::Log10, -3.0), "1e-3");
        assert_eq!(format_tick(Scale::Linear, 0.25), "0.25");
    }

    #[test]
    fn log_ticks_are_decades() {
        let (bold, light) = ticks(Scale::Log10, 2.6, 5.1, false);
        assert_eq!(bold, vec![3.0, 4.0, 5.0]);
        assert!(light.iter().any(|v| (v - 2f64.log10() - 3.0).abs() < 1e-12));
        // Within one decade: too few 1-2-5 ticks, so plain linear values.
        let (bold, _) = ticks(Scale::Log10, 3.1, 3.9, false);
        let vals: Vec<f64> = bold.iter().map(|v| (10f64.powf(*v)).round()).collect();
        assert_eq!(vals, vec![2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0]);
        // About 1.5 decades: 1-2-5 ticks.
        let (bold, _) = ticks(Scale::Log10, 2.9, 4.4, false);
        let vals: Vec<f64> = bold.iter().map(|v| (10f64.powf(*v)).round()).collect();
        assert_eq!(vals, vec![1000.0, 2000.0, 5000.0, 10000.0, 20000.0]);
        let (lin, _) = ticks(Scale::Linear, 0.0, 1.0, false);
        assert_eq!(lin.len(), 6);
        let (int, _) = ticks(Scale::Linear, 0.8, 3.2, true);
        assert_eq!(int, vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn histogram_counts() {
        let h = histogram(&[0.1, 0.2, 0.5, 0.99, 1.0, f64::NAN, -1.0], 0.0, 1.0, 2);
        assert_eq!(h, vec![(0.0, 0.5, 2.0), (0.5, 1.0, 2.0)]);
    }

    #[test]
    fn violin_and_box() {
        let s: Vec<f64> = (0..50)
            .map(|i| (i as f64 * 0.37).sin() * 3.0 + 10.0)
            .collect();
        let v = Violin::from_samples(5.0, 2.0, &s, Scale::Linear).unwrap();
        let wmax = v.profile.iter().map(|p| p.1).fold(0.0, f64::max);
        assert!((wmax - 2.0).abs() < 1e-12);
        let lo = v.profile.first().unwrap().0;
        let hi = v.profile.last().unwrap().0;
        let (mn, mx) = s
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        assert!(
            (lo - mn).abs() < 1e-9 && (hi - mx).abs() < 1e-9,
            "cut at the data's extremes"
        );
        let b = BoxStat::from_samples(1.0, 0.1, &[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!(
            (b.min, b.q1, b.median, b.q3, b.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        assert!(BoxStat::from_samples(0.0, 0.1, &[f64::NAN]).is_none());
    }

    fn demo() -> Figure {
        let xs: Vec<f64> = (0..20).map(|i| 500.0 * 1.4f64.powi(i)).collect();
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .map(|&k| (k, 0.5 + 0.5 / (1.0 + (-(k.log10() - 4.0) * 5.0).exp())))
            .collect();
        let a = Panel::new(
            "log x, all layer kinds",
            Axis::log10("K"),
            Axis::linear("accuracy").range(0.3, 1.05),
        )
        .layer(
            Layer::band(vec![(8000.0, 0.3, 1.05), (12000.0, 0.3, 1.05)])
                .color(GREY)
                .opacity(0.2)
                .label("band"),
        )
        .layer(Layer::line(pts.clone()).color(color(3)).label("line"))
        .layer(Layer::points(pts.clone()).hollow().label("points"))
        .layer(
            Layer::error_bars(
                pts.iter()
                    .map(|&(x, y)| (x, y, y - 0.02, y + 0.02))
                    .collect(),
            )
            .marker(Marker::Square)
            .label("errors"),
        )
        .layer(Layer::vline(1e4).dashed().color(DARK).label("K* = 1e4"))
        .layer(Layer::hline(0.5).dashed().color(GREY))
        .layer(Layer::text(1000.0, 0.95, "text ok"))
        .legend(Legend::LowerRight);
        let samples: Vec<f64> = (0..40).map(|i| 100.0 + (i as f64).powf(1.5)).collect();
        let b = Panel::new("violins, boxes, bars", Axis::linear("N"), Axis::linear("t"))
            .layer(Layer::violins(vec![Violin::from_samples(
                1.0,
                0.3,
                &samples,
                Scale::Linear,
            )
            .unwrap()]))
            .layer(
                Layer::boxes(vec![BoxStat::from_samples(1.0, 0.05, &samples).unwrap()]).color(DARK),
            )
            .layer(
                Layer::bars(vec![(2.0, 2.5, 150.0), (2.5, 3.0, 200.0)])
                    .color(color(2))
                    .label("bars"),
            )
            .layer(
                Layer::points(vec![(3.0, 120.0)])
                    .marker(Marker::Cross)
                    .label("cross"),
            )
            .layer(
                Layer::points(vec![(3.2, 130.0)])
                    .marker(Marker::Triangle)
                    .label("triangle"),
            );
        Figure::new("icl-plot self test").panel(a).panel(b)
    }

    #[test]
    fn renders_png_and_svg_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let fig = demo();
        let (p1, s1) = (dir.path().join("a.png"), dir.path().join("a.svg"));
        let (p2, s2) = (dir.path().join("b.png"), dir.path().join("b.svg"));
        fig.save(&p1, &s1).unwrap();
        fig.save(&p2, &s2).unwrap();
        let png = std::fs::read(&p1).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 20_000, "png size {}", png.len());
        assert_eq!(png, std::fs::read(&p2).unwrap());
        let svg = std::fs::read_to_string(&s1).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("icl-plot self test")
                && svg.contains("K* = 1e4")
        );
        assert_eq!(svg, std::fs::read_to_string(&s2).unwrap());
        if let Ok(keep) = std::env::var("ICL_PLOT_KEEP") {
            std::fs::copy(&p1, keep).unwrap();
        }
    }

    #[test]
    fn text_is_drawn_with_the_bundled_font() {
        // The title area of a figure with a title must contain dark (text) pixels; without a
        // usable font plotters would fail or draw nothing.
        let fig = Figure::new("Title").panel(
            Panel::new("p", Axis::linear("x"), Axis::linear("y"))
                .layer(Layer::points(vec![(0.0, 0.0)])),
        );
        let (w, h) = fig.size();
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            fig.draw(&root).unwrap();
            root.present().unwrap();
        }
        let dark = buf[..(w * 36 * 3) as usize]
            .chunks(3)
            .filter(|p| p[0] < 100)
            .count();
        assert!(dark > 30, "title text pixels: {dark}");
    }
}
