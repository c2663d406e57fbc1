//! Data diagnostics of the regression targets (paper sections 5.2–5.3, Figs. 2–5): sample skewness,
//! the Q-Q correlation `R` against a normal distribution, and histograms of `log10 |value|`.

use crate::stats::normal_quantile;

/// Sample skewness `m3 / m2^{3/2}` (population moments).
pub fn skewness(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for x in v {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    m2 /= n;
    m3 /= n;
    if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 }
}

/// Pearson correlation between the sorted sample and the normal quantiles at plotting positions
/// `(i - 0.5)/n` — the `R` of a normal Q-Q plot (1 = perfectly normal).
pub fn qq_correlation(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let q: Vec<f64> = (0..n).map(|i| normal_quantile((i as f64 + 0.5) / n as f64)).collect();
    pearson(&s, &q)
}

/// Pearson correlation coefficient.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa > 0.0 && sbb > 0.0 { sab / (saa * sbb).sqrt() } else { 0.0 }
}

/// Summary of one target component.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentStats {
    /// Which samples: `base` (trajectory points) or `all` (base + cloud).
    pub subset: String,
    /// Component name.
    pub name: String,
    /// Number of samples.
    pub n: usize,
    /// Skewness of the raw values.
    pub skew_raw: f64,
    /// Skewness of the transformed values.
    pub skew_transformed: f64,
    /// Q-Q correlation of the raw values.
    pub qq_raw: f64,
    /// Q-Q correlation of the transformed values.
    pub qq_transformed: f64,
}

impl ComponentStats {
    /// Statistics of one component before and after the transform.
    pub fn new(subset: &str, name: &str, raw: &[f64], transformed: &[f64]) -> Self {
        Self {
            subset: subset.into(),
            name: name.into(),
            n: raw.len(),
            skew_raw: skewness(raw),
            skew_transformed: skewness(transformed),
            qq_raw: qq_correlation(raw),
            qq_transformed: qq_correlation(transformed),
        }
    }
}

/// One bin of a histogram of `log10 |value|` (Figs. 2 and 4).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistBin {
    /// Subset (`base` or `all`).
    pub subset: String,
    /// Component name.
    pub name: String,
    /// `raw` or `transformed`.
    pub space: String,
    /// Lower edge of the bin in log10 |value|.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Fraction of the samples in the bin (density × width); values with |v| < 1e-12 are left out.
    pub fraction: f64,
}

/// Histogram of `log10 |v|` over `[-8, 4]` in `bins` equal bins.
pub fn log_histogram(subset: &str, name: &str, space: &str, v: &[f64], bins: usize) -> Vec<HistBin> {
    let (lo, hi) = (-8.0f64, 4.0f64);
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for x in v {
        let a = x.abs();
        if a < 1e-12 {
            continue;
        }
        let b = (((a.log10() - lo) / w).floor() as isize).clamp(0, bins as isize - 1) as usize;
        counts[b] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| HistBin {
            subset: subset.into(),
            name: name.into(),
            space: space.into(),
            lo: lo + i as f64 * w,
            hi: lo + (i + 1) as f64 * w,
            fraction: c as f64 / v.len().max(1) as f64,
        })
        .collect()
}

/// One point of a normal Q-Q plot (Figs. 3 and 5): a quantile of the standardized sample against
/// the normal quantile at the same probability.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QqPoint {
    /// Subset (`base` or `all`).
    pub subset: String,
    /// Component name.
    pub name: String,
    /// `raw` or `transformed`.
    pub space: String,
    /// Normal quantile `Φ⁻¹(p)`.
    pub normal: f64,
    /// Quantile `p` of `(v - mean)/std`.
    pub sample: f64,
}

/// `points` Q-Q points of `v` (standardized by its mean and standard deviation) at the plotting
/// positions `p_i = (i - 0.5)/points`.
pub fn qq_points(subset: &str, name: &str, space: &str, v: &[f64], points: usize) -> Vec<QqPoint> {
    if v.is_empty() {
        return Vec::new();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let mean = s.iter().sum::<f64>() / n;
    let sd = (s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt().max(f64::MIN_POSITIVE);
    (1..=points)
        .map(|i| {
            let p = (i as f64 - 0.5) / points as f64;
            let idx = ((p * n) as usize).min(s.len() - 1);
            QqPoint {
                subset: subset.into(),
                name: name.into(),
                space: space.into(),
                normal: normal_quantile(p),
                sample: (s[idx] - mean) / sd,
            }
        })
        .collect()
}

/// Every diagnostic of one dataset: statistics, histograms and Q-Q points per component, raw and
/// transformed, for the trajectory points alone (`base`) and for the whole dataset (`all`).
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// Skewness and Q-Q correlation per subset and component.
    pub stats: Vec<ComponentStats>,
    /// Histograms of `log10 |value|`.
    pub hist: Vec<HistBin>,
    /// Q-Q plot points.
    pub qq: Vec<QqPoint>,
    /// Description of the fitted transform.
    pub transform: String,
}

impl Diagnostics {
    /// Fits the config's transform on all labels of `data` and computes every diagnostic.
    pub fn of(cfg: &crate::config::Config, data: &crate::engine::data::Data) -> crate::error::Result<Self> {
        use crate::plugins::sampler::Origin;
        let d = data.set.dim;
        let mut t = cfg.transform.clone();
        t.fit(&data.labels, &data.set.eps, d)?;
        let tr = crate::plugins::transform::forward_all(t.as_ref(), &data.labels, &data.set.eps, d);
        let names = cfg.system.state_names();
        let mut out = Diagnostics { transform: t.describe(), ..Default::default() };
        for subset in ["base", "all"] {
            let keep: Vec<usize> = (0..data.set.len())
                .filter(|&i| subset == "all" || matches!(data.set.origin[i], Origin::Trajectory { .. }))
                .collect();
            for k in 0..d {
                let raw: Vec<f64> = keep.iter().map(|&i| data.labels[i * d + k]).collect();
                let tv: Vec<f64> = keep.iter().map(|&i| tr[i * d + k]).collect();
                out.stats.push(ComponentStats::new(subset, &names[k], &raw, &tv));
                for (space, v) in [("raw", &raw), ("transformed", &tv)] {
                    out.hist.extend(log_histogram(subset, &names[k], space, v, 48));
                    out.qq.extend(qq_points(subset, &names[k], space, v, 200));
                }
            }
        }
        Ok(out)
    }

    /// Markdown table of the statistics.
    pub fn markdown(&self, source: &str) -> String {
        let mut md = format!("# Target diagnostics\n\n{source}; transform {}.\n\n", self.transform);
        let mut t =
            crate::table::Table::new(["subset", "component", "n", "skew raw", "skew T", "Q-Q R raw", "Q-Q R T"]);
        for s in &self.stats {
            t.row([
                s.subset.to_string(),
                s.name.clone(),
                s.n.to_string(),
                format!("{:.2}", s.skew_raw),
                format!("{:.2}", s.skew_transformed),
                format!("{:.3}", s.qq_raw),
                format!("{:.3}", s.qq_transformed),
            ]);
        }
        md.push_str(&t.markdown());
        md
    }

    /// Writes `diagnostics.csv`, `histograms.csv`, `qq.csv` and `diagnostics.md` into `dir` (the
    /// figures: `figures::paper::diagnostics`).
    pub fn write(&self, dir: &std::path::Path, source: &str) -> crate::error::Result<()> {
        use crate::io::{write_atomic, write_csv};
        write_csv(&dir.join("diagnostics.csv"), &self.stats)?;
        write_csv(&dir.join("histograms.csv"), &self.hist)?;
        write_csv(&dir.join("qq.csv"), &self.qq)?;
        write_atomic(&dir.join("diagnostics.md"), self.markdown(source).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_known_values() {
        assert!((normal_quantile(0.75) - 0.674_489_750_196_081_7).abs() < 1e-8);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_6).abs() < 1e-7);
    }

    #[test]
    fn skew_and_qq() {
        let normal: Vec<f64> = (1..1000).map(|i| normal_quantile(i as f64 / 1000.0)).collect();
        assert!(skewness(&normal).abs() < 1e-6);
        assert!(qq_correlation(&normal) > 0.999);
        let expo: Vec<f64> = normal.iter().map(|x| x.exp()).collect();
        assert!(skewness(&expo) > 1.0 && qq_correlation(&expo) < 0.95);
    }

    #[test]
    fn qq_points_of_a_normal_sample_lie_on_the_identity() {
        let normal: Vec<f64> = (1..10_000).map(|i| 3.0 + 2.0 * normal_quantile(i as f64 / 10_000.0)).collect();
        let pts = qq_points("base", "y", "raw", &normal, 50);
        assert_eq!(pts.len(), 50);
        assert!(pts.iter().all(|p| (p.sample - p.normal).abs() < 0.05), "{pts:?}");
    }
}
