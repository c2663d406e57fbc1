//! PNG figures: a small declarative layer over [`plotters`] — a figure is a grid of [`Panel`]s, a
//! panel a set of [`Series`] (lines, dashed lines or markers, optionally with ± error bars) on
//! linear, logarithmic or categorical axes — and the builders of the paper's figures (Figs. 2–10)
//! from the data stiffx writes.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`src/figures/DejaVuSans.ttf`, Bitstream
//! Vera licence in `DejaVuSans-LICENSE.txt`), so figures render the same on machines without system
//! fonts. Images are rendered into memory, encoded with `png` and written atomically.

pub mod paper;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};

static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is a valid TrueType file compiled into the binary; failure here is a build defect.
        for family in ["sans-serif", "serif", "monospace"] {
            let ok = plotters::style::register_font(family, FontStyle::Normal, FONT).is_ok();
            assert!(ok, "the embedded DejaVu Sans font does not parse");
        }
    });
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear axis.
    Linear,
    /// Base-10 logarithmic axis; points with values ≤ 0 are left out.
    Log,
}

/// One axis of a panel.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Axis label.
    pub label: String,
    /// Scale.
    pub scale: Scale,
    /// Categorical tick labels: the axis runs over `0..n` and integer positions get these names.
    pub categories: Option<Vec<String>>,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear, categories: None }
    }
    /// A logarithmic axis.
    pub fn log(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Log, categories: None }
    }
    /// A categorical axis with one position per name.
    pub fn categorical(label: impl Into<String>, names: Vec<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear, categories: Some(names) }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Solid line (split at non-finite points).
    Line,
    /// Dashed line.
    Dashed,
    /// Filled circles.
    Circle,
    /// Triangles.
    Triangle,
    /// Crosses.
    Cross,
}

/// A data series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry (empty: not in the legend).
    pub label: String,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Optional ± error (one per point), drawn as vertical error bars.
    pub err: Option<Vec<f64>>,
    /// Index into the colour palette.
    pub color: usize,
    /// Drawing style.
    pub mark: Mark,
}

impl Series {
    /// A series without error bars.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize, mark: Mark) -> Self {
        Self { label: label.into(), points, err: None, color, mark }
    }
}

/// One panel (a chart) of a figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Series, drawn in order.
    pub series: Vec<Series>,
}

/// The colour palette (matplotlib's tab10, so that config colours match the paper's Fig. 9).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Formats a tick value compactly: plain for moderate magnitudes, scientific otherwise.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-2..1e4).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// Most decades a logarithmic axis spans: values further than this below the largest one are left out
/// (drawn as gaps). A learned eigenvalue of 1e-323 next to 1e5 would otherwise ask for a 330-decade axis,
/// whose tick search in plotters runs for minutes; nothing below 1e-20 of a panel's largest value is
/// readable on a picture anyway.
const MAX_LOG_DECADES: f64 = 20.0;

/// Data range of one axis over all series (finite values; positive ones on a log axis, at most
/// [`MAX_LOG_DECADES`] below the largest), padded.
fn range(panel: &Panel, axis: &Axis, pick: impl Fn(&(f64, f64)) -> f64, with_err: bool) -> (f64, f64) {
    if let Some(c) = &axis.categories {
        return (-0.5, c.len().max(1) as f64 - 0.5);
    }
    let log = axis.scale == Scale::Log;
    let mut all = Vec::new();
    for s in &panel.series {
        for (i, p) in s.points.iter().enumerate() {
            let v = pick(p);
            let e = if with_err { s.err.as_ref().map_or(0.0, |e| e[i].abs()) } else { 0.0 };
            all.extend([v - e, v, v + e].into_iter().filter(|w| w.is_finite() && (!log || *w > 0.0)));
        }
    }
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let floor = if log { hi * 10f64.powf(-MAX_LOG_DECADES) } else { f64::NEG_INFINITY };
    let lo = all.iter().copied().filter(|w| *w >= floor).fold(f64::INFINITY, f64::min);
    if !hi.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // Whole decades, so that the axis always carries labelled powers of ten.
        // (nudged outwards: plotters starts its labels at ceil(log10(lo)), which rounding can skip).
        (10f64.powf((lo / 1.2).log10().floor()) * (1.0 - 1e-9), 10f64.powf((hi * 1.2).log10().ceil()) * (1.0 + 1e-9))
    } else {
        let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 * lo.abs().max(1.0) };
        (lo - pad, hi + pad)
    }
}

type DrawResult = std::result::Result<(), String>;

/// Draws one panel on axes `x` and `y`; on a log axis, values below its lower end (the
/// [`MAX_LOG_DECADES`] cut made by [`range`]) are gaps like non-positive ones.
fn draw_panel<DB, X, Y>(area: &DrawingArea<DB, Shift>, p: &Panel, x: X, y: Y) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let floor = (x.range().start, y.range().start);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let cats = p.x.categories.clone();
    let fx = move |v: &f64| match &cats {
        Some(c) => {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < c.len() {
                c[i as usize].clone()
            } else {
                String::new()
            }
        }
        None => tick(*v),
    };
    let fy = |v: &f64| tick(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(p.x.label.as_str())
        .y_desc(p.y.label.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(0, 0, 0).mix(0.04));
    if let Some(c) = &p.x.categories {
        mesh.x_labels(c.len() + 2);
    }
    // Few enough labels on a log axis that plotters labels powers of ten only (no overlapping 2…9).
    if p.x.scale == Scale::Log {
        mesh.x_labels(6);
    }
    if p.y.scale == Scale::Log {
        mesh.y_labels(6);
    }
    mesh.draw().map_err(e)?;
    let ok_x = |v: f64| v.is_finite() && (p.x.scale == Scale::Linear || (v > 0.0 && v >= floor.0));
    let ok_y = |v: f64| v.is_finite() && (p.y.scale == Scale::Linear || (v > 0.0 && v >= floor.1));
    let mut legend = false;
    for s in &p.series {
        let c = color(s.color);
        let style = c.stroke_width(2);
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|&(a, b)| ok_x(a) && ok_y(b)).collect();
        match s.mark {
            Mark::Line | Mark::Dashed => {
                // Split at gaps (non-finite or non-positive-on-log points) so that a diverged rollout
                // does not draw a spurious segment.
                let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for &(a, b) in &s.points {
                    if ok_x(a) && ok_y(b) {
                        segments.last_mut().expect("non-empty").push((a, b));
                    } else if !segments.last().expect("non-empty").is_empty() {
                        segments.push(Vec::new());
                    }
                }
                for seg in segments.into_iter().filter(|s| !s.is_empty()) {
                    if s.mark == Mark::Line {
                        chart.draw_series(LineSeries::new(seg, style)).map_err(e)?;
                    } else {
                        chart.draw_series(DashedLineSeries::new(seg, 7, 5, style)).map_err(e)?;
                    }
                }
            }
            Mark::Circle => {
                chart.draw_series(pts.iter().map(|&q| Circle::new(q, 4, c.filled()))).map_err(e)?;
            }
            Mark::Triangle => {
                chart.draw_series(pts.iter().map(|&q| TriangleMarker::new(q, 6, c.filled()))).map_err(e)?;
            }
            Mark::Cross => {
                chart.draw_series(pts.iter().map(|&q| Cross::new(q, 5, style))).map_err(e)?;
            }
        }
        if let Some(err) = &s.err {
            // Vertical bar in data coordinates with 10-px caps (plotters' ErrorBar would also draw a
            // circle over the series' own marker).
            let style = c.stroke_width(2);
            for (&(a, b), &d) in s.points.iter().zip(err).filter(|((a, b), d)| ok_x(*a) && ok_y(*b) && **d > 0.0) {
                let lo = if p.y.scale == Scale::Log && b - d <= 0.0 { b / 100.0 } else { b - d };
                let cap = |y: f64| EmptyElement::at((a, y)) + PathElement::new(vec![(-5, 0), (5, 0)], style);
                chart.draw_series([PathElement::new(vec![(a, lo), (a, b + d)], style)]).map_err(e)?;
                chart.draw_series([cap(lo), cap(b + d)]).map_err(e)?;
            }
        }
        if !s.label.is_empty() {
            // An empty series carries the legend entry.
            legend = true;
            let mark = s.mark;
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(e)?
                .label(s.label.as_str())
                .legend(move |(lx, ly)| match mark {
                    Mark::Line => PathElement::new(vec![(lx, ly), (lx + 18, ly)], c.stroke_width(2)).into_dyn(),
                    Mark::Dashed => plotters::element::DashedPathElement::new(
                        vec![(lx, ly), (lx + 20, ly)],
                        6,
                        3,
                        c.stroke_width(2),
                    )
                    .into_dyn(),
                    _ => Circle::new((lx + 9, ly), 4, c.filled()).into_dyn(),
                });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0, 0, 0).mix(0.3))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

fn draw_any<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult {
    let (x0, x1) = range(p, &p.x, |q| q.0, false);
    let (y0, y1) = range(p, &p.y, |q| q.1, true);
    match (p.x.scale, p.y.scale) {
        (Scale::Linear, Scale::Linear) => draw_panel(area, p, lin(x0..x1), lin(y0..y1)),
        (Scale::Linear, Scale::Log) => draw_panel(area, p, lin(x0..x1), log(y0..y1)),
        (Scale::Log, Scale::Linear) => draw_panel(area, p, log(x0..x1), lin(y0..y1)),
        (Scale::Log, Scale::Log) => draw_panel(area, p, log(x0..x1), log(y0..y1)),
    }
}

fn log(r: std::ops::Range<f64>) -> LogCoord<f64> {
    r.log_scale().into()
}

fn lin(r: std::ops::Range<f64>) -> plotters::coord::types::RangedCoordf64 {
    r.into()
}

/// Renders `panels` on a grid with `cols` columns (each panel `panel_size` pixels) under a figure
/// title, and writes the PNG atomically to `path`.
pub fn render(path: &Path, title: &str, panels: &[Panel], cols: usize, panel_size: (u32, u32)) -> Result<()> {
    register_font();
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let head = if title.is_empty() { 0 } else { 36 };
    // Wide enough for the title (about 11 px per character at 22 px).
    let min_w = 11 * title.chars().count() as u32 + 40;
    let (w, h) = ((panel_size.0 * cols as u32).max(min_w), panel_size.1 * rows as u32 + head);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let fail = |m: String| Error::io(path, std::io::Error::other(format!("drawing the figure: {m}")));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let body = if title.is_empty() {
            root.clone()
        } else {
            root.titled(title, ("sans-serif", 22)).map_err(|e| fail(e.to_string()))?
        };
        let areas = body.split_evenly((rows, cols));
        for (a, p) in areas.iter().zip(panels) {
            draw_any(a, p).map_err(fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut wr = enc.write_header().map_err(|e| fail(e.to_string()))?;
        wr.write_image_data(&buf).map_err(|e| fail(e.to_string()))?;
    }
    crate::io::write_atomic(path, &png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_axis_kind_to_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let pts: Vec<(f64, f64)> = (1..50).map(|i| (i as f64 * 0.1, (i as f64 * 0.1).exp())).collect();
        let mut panels = Vec::new();
        for (x, y) in [(Scale::Linear, Scale::Linear), (Scale::Linear, Scale::Log), (Scale::Log, Scale::Log)] {
            panels.push(Panel {
                title: format!("{x:?}/{y:?}"),
                x: Axis { label: "x".into(), scale: x, categories: None },
                y: Axis { label: "y".into(), scale: y, categories: None },
                series: vec![
                    Series::new("line", pts.clone(), 0, Mark::Line),
                    Series { err: Some(vec![0.5; 3]), ..Series::new("err", pts[..3].to_vec(), 1, Mark::Circle) },
                    Series::new("", vec![(1.0, f64::NAN), (2.0, -1.0)], 2, Mark::Dashed),
                ],
            });
        }
        panels.push(Panel {
            title: "categorical".into(),
            x: Axis::categorical("config", vec!["a".into(), "b".into()]),
            y: Axis::log("err"),
            series: vec![Series::new("m", vec![(0.0, 1e-3), (1.0, 2e-1)], 3, Mark::Triangle)],
        });
        let path = dir.path().join("f.png");
        render(&path, "test figure", &panels, 2, (300, 240)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // The picture is not blank: some pixels are neither white nor black (the coloured series).
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        let mut img = vec![0; r.output_buffer_size()];
        r.next_frame(&mut img).unwrap();
        let coloured = img.chunks(3).filter(|p| p[0] != p[1] || p[1] != p[2]).count();
        assert!(coloured > 500, "{coloured} coloured pixels");
    }

    #[test]
    fn log_axes_span_at_most_max_log_decades() {
        // A denormal learned eigenvalue beside 1e5 (seen in an OREGO run: the figure took minutes).
        let panel = Panel {
            title: "eig".into(),
            x: Axis::linear("t"),
            y: Axis::log("-Re λ"),
            series: vec![Series::new("l", vec![(0.0, 1e-323), (1.0, 1e-3), (2.0, 1.4e5)], 0, Mark::Dashed)],
        };
        let (lo, hi) = range(&panel, &panel.y, |q| q.1, true);
        let decades = (hi / lo).log10();
        assert!(decades <= MAX_LOG_DECADES + 2.0 && lo < 1e-3 && hi > 1.4e5, "{lo:e} … {hi:e}");
        // Within the cut nothing changes: 1e-3 … 1.4e5 gives whole decades around the data.
        let mut narrow = panel.clone();
        narrow.series[0].points.remove(0);
        let (lo, hi) = range(&narrow, &narrow.y, |q| q.1, true);
        assert!((lo / 1e-4 - 1.0).abs() < 1e-6 && (hi / 1e6 - 1.0).abs() < 1e-6, "{lo:e} … {hi:e}");
        let dir = tempfile::tempdir().unwrap();
        render(&dir.path().join("eig.png"), "eig", &[panel], 1, (300, 240)).unwrap();
    }

    #[test]
    fn ticks_are_compact() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(1e-5), "1e-5");
        assert_eq!(tick(0.0), "0");
    }
}
