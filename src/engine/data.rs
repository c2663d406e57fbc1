//! Stage 1 of the run loop: sample the training grid and label it ([`generate`]), and the labels'
//! error against the exact RHS per eps and component ([`label_bias`]: median and maximum of
//! `|L − F| / |F|`, RMS of `|L − F|`).

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plugins::labeller::exact_labels;
use crate::plugins::sampler::SampleSet;

/// Label error against exact labels at one stiffness value and component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelBias {
    /// Stiffness value.
    pub eps: f64,
    /// State component.
    pub component: String,
    /// Median of `|L - F| / |F|` over the samples (points with `|F| > 1e-8 · max|F|`).
    pub median_rel: f64,
    /// Maximum of the same.
    pub max_rel: f64,
    /// Root-mean-square absolute error `|L - F|`.
    pub rms_abs: f64,
}

/// Per-eps, per-component error of `labels` against the exact RHS (none for a system without one).
pub fn label_bias(cfg: &Config, set: &SampleSet, labels: &[f64]) -> Vec<LabelBias> {
    if !cfg.system.has_reference() {
        // A data system: nothing to compare the labels with.
        return Vec::new();
    }
    let exact = exact_labels(cfg.system.as_ref(), set);
    let names = cfg.system.state_names();
    let d = set.dim;
    let mut grid: Vec<f64> = set.eps.clone();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let mut out = Vec::new();
    for &e in &grid {
        let idx: Vec<usize> = (0..set.len()).filter(|&i| set.eps[i] == e).collect();
        for k in 0..d {
            let fmax = idx.iter().map(|&i| exact[i * d + k].abs()).fold(0.0, f64::max);
            let mut rel: Vec<f64> = idx
                .iter()
                .filter(|&&i| exact[i * d + k].abs() > 1e-8 * fmax)
                .map(|&i| (labels[i * d + k] - exact[i * d + k]).abs() / exact[i * d + k].abs())
                .collect();
            rel.sort_by(f64::total_cmp);
            let rms = (idx.iter().map(|&i| (labels[i * d + k] - exact[i * d + k]).powi(2)).sum::<f64>()
                / idx.len().max(1) as f64)
                .sqrt();
            out.push(LabelBias {
                eps: e,
                component: names[k].clone(),
                median_rel: crate::stats::median(&rel),
                max_rel: rel.last().copied().unwrap_or(0.0),
                rms_abs: rms,
            });
        }
    }
    out
}

/// A labelled dataset in physical units.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Data {
    /// States and their origin.
    pub set: SampleSet,
    /// Labels, `n × d`.
    pub labels: Vec<f64>,
    /// Label error against the exact RHS.
    pub bias: Vec<LabelBias>,
    /// Seconds spent sampling.
    pub sample_secs: f64,
    /// Seconds spent labelling.
    pub label_secs: f64,
}

/// Steps 1–2: samples the training grid and labels it (seeded by `cfg.seed`).
pub fn generate(cfg: &Config) -> Result<Data> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let t0 = Instant::now();
    let set = cfg.sampler.sample(cfg.system.as_ref(), &cfg.system.train_grid(), &mut rng)?;
    let sample_secs = t0.elapsed().as_secs_f64();
    crate::interrupt::kill_point("data");
    let t1 = Instant::now();
    let labels = cfg.labeller.label(cfg.system.as_ref(), &set)?;
    let label_secs = t1.elapsed().as_secs_f64();
    if let Some(i) = labels.iter().position(|v| !v.is_finite()) {
        return Err(Error::Unsupported(format!(
            "labeller produced a non-finite label at sample {} (eps = {})",
            i / set.dim,
            set.eps[i / set.dim]
        )));
    }
    let bias = label_bias(cfg, &set, &labels);
    Ok(Data { set, labels, bias, sample_secs, label_secs })
}
