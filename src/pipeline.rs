//! THE loop: sample → label → transform → train → evaluate, driven by a [`Config`]. Plugins never
//! call each other; this module wires them, writes every result atomically, and is the only place that
//! knows the order of the steps.
//!
//! Outputs of `stiffx run` (in `--out`, default `runs/<system>-<transform>-<sampler>-<labeller>-s<seed>`):
//! `config.toml` (the resolved config), `checkpoint.json` (best-validation weights, normalisation,
//! fitted transform, config), `loss_curve.csv`, `label_bias.csv`, `per_eps.csv`, `metrics.json`, and
//! for a mass-action network `reactions.json` (its learned reactions, [`Weights::reactions`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Precision};
use crate::config::{Config, Weighting};
use crate::error::{Error, Result};
use crate::io::{write_atomic, write_csv, write_json};
use crate::labeller::exact_labels;
use crate::metrics::{
    EigenErrors, EnsembleMetrics, EpsMetrics, Summary, WindowMetrics, period_rel, rollout_l2, rollout_rel,
};
use crate::model::{Normalizer, Weights};
use crate::sampler::{Origin, SampleSet};
use crate::spectral::{Ensemble, JacobianMode, LearnedField, LearnedRhs, eigenvalues};
use crate::train::{Dataset, EpochRecord, TrainObserver, Trained, train};
use crate::transform::{TargetTransform, forward_all};

/// Run-time options that are not part of the experiment (where, on what, how loud).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory (`None`: write nothing).
    pub out: Option<PathBuf>,
    /// Backend for training and evaluation.
    pub backend: Backend,
    /// Precision of the evaluation device (training is f32).
    pub eval_precision: Precision,
    /// Jacobian mode for the spectral evaluation.
    pub jacobian: JacobianMode,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Write PNG figures (per run; a sweep's report figures).
    pub figures: bool,
    /// The run's name in figure legends (default: the output directory's name).
    pub label: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: None,
            backend: Backend::default_compiled().unwrap_or(Backend::Flex),
            eval_precision: Precision::F64,
            jacobian: JacobianMode::Forward,
            progress: false,
            figures: true,
            label: None,
        }
    }
}

/// Everything needed to rebuild the learned RHS and reproduce its metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format tag, `stiffx-checkpoint-1`.
    pub format: String,
    /// The experiment; `config.transform` holds the *fitted* transform.
    pub config: Config,
    /// Input standardisation (training statistics).
    pub normalizer: Normalizer,
    /// Best-validation weights.
    pub weights: Weights,
    /// Epoch of the weights.
    pub epoch: usize,
    /// Validation loss of the weights.
    #[serde(with = "crate::io::float")]
    pub val_loss: f64,
}

const FORMAT: &str = "stiffx-checkpoint-1";

impl Checkpoint {
    /// Reads and checks a checkpoint file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: String| Error::Checkpoint { path: path.to_path_buf(), message: m };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| bad(format!("not a stiffx checkpoint: {e}")))?;
        if ck.format != FORMAT {
            return Err(bad(format!("format `{}`, expected `{FORMAT}`", ck.format)));
        }
        ck.weights.check().map_err(bad)?;
        let d = ck.config.system.dim();
        let first = &ck.weights.layers[0];
        let last = &ck.weights.layers[ck.weights.layers.len() - 1];
        if first.d_in != d + 1
            || last.d_out != d
            || ck.normalizer.mean.len() != d + 1
            || ck.normalizer.std.len() != d + 1
            || !(ck.normalizer.state_scale.is_empty() || ck.normalizer.state_scale.len() == d)
            || ck.normalizer.state_scale.iter().any(|c| !(c.is_finite() && *c > 0.0))
        {
            return Err(bad(format!("network/normaliser shapes do not match the system's dimension {d}")));
        }
        ck.config.validate().map_err(|e| bad(format!("invalid config inside: {e}")))?;
        Ok(ck)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}

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

/// Per-eps, per-component error of `labels` against the exact RHS.
pub fn label_bias(cfg: &Config, set: &SampleSet, labels: &[f64]) -> Vec<LabelBias> {
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
                median_rel: crate::transform::median(&rel),
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

/// Network-space training and validation sets, the fitted normaliser and transform.
pub struct Prepared {
    /// Training split.
    pub train: Dataset,
    /// Validation split.
    pub val: Dataset,
    /// Input standardisation fitted on the training split.
    pub normalizer: Normalizer,
    /// Transform fitted on the training split.
    pub transform: Box<dyn TargetTransform>,
}

/// Step 3: seeded split, input standardisation and target transform, both fitted on the training split.
pub fn prepare(cfg: &Config, data: &Data) -> Result<Prepared> {
    let d = data.set.dim;
    let n = data.set.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(cfg.seed ^ 0x5711_7000));
    let n_val = ((n as f64) * cfg.train.val_fraction).round().max(1.0) as usize;
    if n_val >= n {
        return Err(Error::invalid(
            "train.val_fraction",
            cfg.train.val_fraction,
            format!("a fraction that leaves training samples out of {n}"),
        ));
    }
    let (val_idx, train_idx) = order.split_at(n_val);
    let rows = |idx: &[usize]| {
        let mut x = Vec::with_capacity(idx.len() * (d + 1));
        let mut y = Vec::with_capacity(idx.len() * d);
        let mut e = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(data.set.state(i));
            x.push(cfg.model.eps_input.feature(data.set.eps[i]));
            y.extend_from_slice(&data.labels[i * d..(i + 1) * d]);
            e.push(data.set.eps[i]);
        }
        (x, y, e)
    };
    let (mut xt, yt, et) = rows(train_idx);
    let (mut xv, yv, ev) = rows(val_idx);
    let map = cfg.model.state_input.map();
    let state_scale = match map {
        None => Vec::new(),
        Some(crate::model::StateMap::Asinh) => {
            crate::model::state_scales(&xt, d + 1, d, |i| cfg.model.state_quantile.of(i))
        }
        Some(crate::model::StateMap::Log) => crate::model::log_offsets(&xt, d + 1, d),
    };
    let state_map = map.unwrap_or_default();
    state_map.map_rows(&state_scale, &mut xt, d + 1);
    state_map.map_rows(&state_scale, &mut xv, d + 1);
    let normalizer = Normalizer { state_scale, state_map, ..Normalizer::fit(&xt, d + 1) };
    let mut transform = cfg.transform.clone();
    transform.fit(&yt, &et, d)?;
    let mut weights = match cfg.train.weighting {
        Weighting::Uniform => Vec::new(),
        Weighting::Relative => relative_weights(
            &data.set,
            &data.labels,
            transform.as_ref(),
            &(0..d).map(|k| cfg.train.weight_floor.of(k)).collect::<Vec<_>>(),
        ),
    };
    if !weights.is_empty() {
        // Mean weight 1 over the training split, so that losses stay on the scale of the unweighted ones.
        let mean =
            train_idx.iter().flat_map(|&i| &weights[i * d..(i + 1) * d]).sum::<f64>() / (train_idx.len() * d) as f64;
        weights.iter_mut().for_each(|v| *v /= mean);
    }
    let (gt, gv) = (forward_all(transform.as_ref(), &yt, &et, d), forward_all(transform.as_ref(), &yv, &ev, d));
    let pairs = cfg.train.difference > 0.0;
    let (pt, pv) =
        if pairs { (partners(&data.set, train_idx), partners(&data.set, val_idx)) } else { Default::default() };
    let (wt, wv) = if pairs {
        let rms = difference_rms(&pt, &gt, d);
        let (mut wt, mut wv) = (
            difference_weights(&pt, &gt, d, &rms, cfg.train.difference_floor),
            difference_weights(&pv, &gv, d, &rms, cfg.train.difference_floor),
        );
        scale_to_mean(&mut wt, &mut wv, pt.iter().filter(|p| **p != u32::MAX).count() * d, cfg.train.difference);
        (wt, wv)
    } else {
        Default::default()
    };
    let to_ds = |idx: &[usize], x: &[f64], g: &[f64], partner: Vec<u32>, pair_weights: Vec<f64>| Dataset {
        inputs: normalizer.apply(x),
        targets: g.to_vec(),
        // Rows `idx` of the weights; none (uniform) stays none.
        weights: if weights.is_empty() {
            Vec::new()
        } else {
            idx.iter().flat_map(|&i| &weights[i * d..(i + 1) * d]).copied().collect()
        },
        partner,
        pair_weights,
        d_in: d + 1,
        d_out: d,
        ..Default::default()
    };
    let mut train = to_ds(train_idx, &xt, &gt, pt, wt);
    let mut val = to_ds(val_idx, &xv, &gv, pv, wv);
    if cfg.train.jacobian > 0.0 {
        let label = |idx: &[usize]| {
            jacobian_labels(cfg.system.as_ref(), &data.set, &data.labels, idx, &normalizer, transform.as_ref())
        };
        let ((jt, ht), (jv, hv)) = (label(train_idx), label(val_idx));
        if !ht.iter().any(|h| *h) {
            return Err(Error::invalid(
                "train.jacobian",
                cfg.train.jacobian,
                "0 when the training samples hold no trajectory points to label (a cloud with sampler.keep_base = false)",
            ));
        }
        if let Some(e) = jt.iter().chain(&jv).position(|v| !v.is_finite()) {
            return Err(Error::Unsupported(format!(
                "train.jacobian: the system's Jacobian in network space is not finite at a trajectory point (entry {e})"
            )));
        }
        let scale = jacobian_medians(&jt, &ht, d);
        let (mut wt, mut wv) = (
            jacobian_weights(&jt, &ht, d, &scale, cfg.train.jacobian_floor),
            jacobian_weights(&jv, &hv, d, &scale, cfg.train.jacobian_floor),
        );
        scale_to_mean(&mut wt, &mut wv, ht.iter().filter(|h| **h).count() * d * d, cfg.train.jacobian);
        (train.jacobian, train.jacobian_weights, train.jac_axes) = (jt, wt, d);
        (val.jacobian, val.jacobian_weights, val.jac_axes) = (jv, wv, d);
    }
    Ok(Prepared { train, val, normalizer, transform })
}

/// Scales both splits' loss weights so that the training split's `entries` labelled weights (the
/// others are 0) average `target`; all 0 when they sum to 0.
fn scale_to_mean(train: &mut [f64], val: &mut [f64], entries: usize, target: f64) {
    let mean = train.iter().sum::<f64>() / entries.max(1) as f64;
    let s = if mean > 0.0 { target / mean } else { 0.0 };
    train.iter_mut().chain(val.iter_mut()).for_each(|w| *w *= s);
}

/// Jacobian labels of the rows `idx` in network space ([`Dataset::jacobian`]: `idx.len() × d × d`,
/// axis-major) and which rows carry them (trajectory points; cloud samples do not). With the network
/// input `u_j = (φ_j(x_j) − μ_j)/σ_j` ([`Normalizer`]) and target `G_k = T_k(F_k)`,
///
/// ```text
/// ∂G_k/∂u_j = T_k'(F_k) · ∂F_k/∂x_j · ∂x_j/∂u_j,   T_k'(F_k) = 1 / (T⁻¹)_k'(G_k),   ∂x_j/∂u_j = σ_j / φ_j'(x_j),
/// ```
///
/// `∂F/∂x` from [`StiffSystem::jacobian`](crate::system::StiffSystem::jacobian), `F` the labels (exact:
/// `train.jacobian` requires the `direct` labeller).
pub fn jacobian_labels(
    system: &dyn crate::system::StiffSystem,
    set: &SampleSet,
    labels: &[f64],
    idx: &[usize],
    normalizer: &Normalizer,
    transform: &dyn TargetTransform,
) -> (Vec<f64>, Vec<bool>) {
    let d = set.dim;
    let mut out = vec![0.0; idx.len() * d * d];
    let mut has = vec![false; idx.len()];
    for (r, &i) in idx.iter().enumerate() {
        if !matches!(set.origin[i], Origin::Trajectory { .. }) {
            continue;
        }
        has[r] = true;
        let (x, eps) = (set.state(i), set.eps[i]);
        let jac = system.jacobian(x, eps);
        let slopes = normalizer.state_slopes(x);
        for k in 0..d {
            let g = transform.forward(k, labels[i * d + k], eps);
            let dg = 1.0 / transform.inverse_derivative(k, g, eps);
            for j in 0..d {
                out[(r * d + j) * d + k] = dg * jac[(k, j)] * normalizer.std[j] / slopes[j];
            }
        }
    }
    (out, has)
}

/// Per entry `(j, k)` (axis-major, `d × d`), the median of the nonzero `|J_jk|` over the labelled rows:
/// the scale of the Jacobian loss's floor. An entry that is zero throughout (an exact structural zero,
/// e.g. Robertson's `∂y3'/∂y1`) takes the median over output `k`'s nonzero entries, so that its
/// learned slope is pulled to 0 on the scale of the output's other slopes; 1 if there are none.
pub fn jacobian_medians(jac: &[f64], has: &[bool], d: usize) -> Vec<f64> {
    let rows = || has.iter().enumerate().filter(|(_, h)| **h).map(|(r, _)| r);
    let nonzero = |v: Vec<f64>| -> Vec<f64> { v.into_iter().filter(|x| *x > 0.0).collect() };
    let median = |v: Vec<f64>| (!v.is_empty()).then(|| crate::transform::median(&v));
    (0..d * d)
        .map(|e| {
            median(nonzero(rows().map(|r| jac[r * d * d + e].abs()).collect()))
                .or_else(|| {
                    let k = e % d;
                    median(nonzero(rows().flat_map(|r| (0..d).map(move |j| jac[(r * d + j) * d + k].abs())).collect()))
                })
                .unwrap_or(1.0)
        })
        .collect()
}

/// Unscaled Jacobian-loss weights `ω_rjk = 1 / max(J_rjk², (floor · scale_jk)²)` (0 on rows without
/// labels): each entry's squared error becomes a relative one, floored at `floor` times the entry's
/// typical magnitude ([`jacobian_medians`]). The pipeline scales them to mean `λ_J` over the training
/// split's labelled entries.
pub fn jacobian_weights(jac: &[f64], has: &[bool], d: usize, scale: &[f64], floor: f64) -> Vec<f64> {
    let mut w = vec![0.0; jac.len()];
    for (r, _) in has.iter().enumerate().filter(|(_, h)| **h) {
        for e in 0..d * d {
            let v = jac[r * d * d + e];
            w[r * d * d + e] = 1.0 / v.powi(2).max((floor * scale[e]).powi(2));
        }
    }
    w
}

/// Difference-loss partners of the rows `idx` of a split (see [`Dataset::partner`]): a cloud sample's
/// partner is the row of its base trajectory point when that point is in the same split.
pub fn partners(set: &SampleSet, idx: &[usize]) -> Vec<u32> {
    let mut base_row = std::collections::HashMap::new();
    for (r, &i) in idx.iter().enumerate() {
        if let Origin::Trajectory { traj, index } = set.origin[i] {
            base_row.insert((traj, index), r as u32);
        }
    }
    idx.iter()
        .map(|&i| match set.origin[i] {
            Origin::Cloud { traj, index, .. } => base_row.get(&(traj, index)).copied().unwrap_or(u32::MAX),
            Origin::Trajectory { .. } => u32::MAX,
        })
        .collect()
}

/// Per component, the RMS over all pairs of the change `Δy = y_row − y_partner` of the (transformed)
/// targets `g` (`n × d`).
pub fn difference_rms(partner: &[u32], g: &[f64], d: usize) -> Vec<f64> {
    let mut sum = vec![0.0; d];
    let mut count = 0usize;
    for (i, &p) in partner.iter().enumerate().filter(|(_, p)| **p != u32::MAX) {
        for k in 0..d {
            sum[k] += (g[i * d + k] - g[p as usize * d + k]).powi(2);
        }
        count += 1;
    }
    sum.iter().map(|s| (s / count.max(1) as f64).sqrt()).collect()
}

/// Unscaled difference-loss weights `ω_ik = 1 / max(Δy_ik², (floor · rms_k)²)`, `n × d` (0 for rows
/// without a partner): the squared error of the change `Δy` becomes a squared relative error, floored
/// where a component hardly changes (see [`TrainConfig::difference`](crate::config::TrainConfig::difference)).
/// A component that never changes (`rms_k = 0`) gets weight 0.
pub fn difference_weights(partner: &[u32], g: &[f64], d: usize, rms: &[f64], floor: f64) -> Vec<f64> {
    let mut w = vec![0.0; partner.len() * d];
    for (i, &p) in partner.iter().enumerate().filter(|(_, p)| **p != u32::MAX) {
        for k in 0..d {
            let m2 = (g[i * d + k] - g[p as usize * d + k]).powi(2).max((floor * rms[k]).powi(2));
            w[i * d + k] = if m2 > 0.0 { 1.0 / m2 } else { 0.0 };
        }
    }
    w
}

/// Loss weights of `train.weighting = "relative"`, `n × dim`: the squared error of sample `i`,
/// component `k`, in transformed space becomes a squared relative error of `F`,
///
/// ```text
/// w_ik = ( (T⁻¹)'(G_ik) / m_g(i),k )²,    m_gk = max( RMS_{j ∈ g} F_jk ,  floor_k · RMS_all F_k ),
/// ```
///
/// since `δF = (T⁻¹)'(G) δG` to first order. The group `g(i)` is the sample's base trajectory point
/// and the cloud around it ([`Origin`]): the cloud's offsets change `F` on the
/// scale of the base point's velocity (spectral offsets by construction), so one magnitude per group
/// keeps the fast directions' `ΔF` in the loss while every group, early or late, counts its relative
/// error equally. For the `asinh` transform `(T⁻¹)'(G) = √(s² + F²)`: weight ≈ 1 where `|F| ≫ s` (the
/// log-like region already measures relative errors) and `(s/m)²` where `|F| ≪ s`.
pub fn relative_weights(set: &SampleSet, labels: &[f64], transform: &dyn TargetTransform, floor: &[f64]) -> Vec<f64> {
    use std::collections::HashMap;
    let d = set.dim;
    let n = set.len();
    let key = |o: &Origin| match *o {
        Origin::Trajectory { traj, index } | Origin::Cloud { traj, index, .. } => (traj, index),
    };
    let mut groups: HashMap<(u32, u32), (usize, Vec<f64>)> = HashMap::new();
    let mut global = vec![0.0; d];
    for i in 0..n {
        let g = groups.entry(key(&set.origin[i])).or_insert_with(|| (0, vec![0.0; d]));
        g.0 += 1;
        for k in 0..d {
            let f2 = labels[i * d + k].powi(2);
            g.1[k] += f2;
            global[k] += f2;
        }
    }
    let global: Vec<f64> = global.iter().map(|s| (s / n.max(1) as f64).sqrt()).collect();
    let mut w = vec![0.0; n * d];
    for i in 0..n {
        let (count, sums) = &groups[&key(&set.origin[i])];
        for k in 0..d {
            // A component that is zero throughout the data carries no signal to weigh: weight 1.
            if global[k] == 0.0 {
                w[i * d + k] = 1.0;
                continue;
            }
            let m = (sums[k] / *count as f64).sqrt().max(floor[k] * global[k]);
            let g = transform.forward(k, labels[i * d + k], set.eps[i]);
            w[i * d + k] = (transform.inverse_derivative(k, g, set.eps[i]) / m).powi(2);
        }
    }
    w
}

/// Per-eps metrics plus the two headline summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Metrics at every evaluated stiffness value.
    pub per_eps: Vec<EpsMetrics>,
    /// Metrics at `eval.reference_eps` (the paper's Table 1 setting).
    pub reference: EpsMetrics,
    /// Means over the evaluated grid.
    pub grid_mean: Summary,
    /// Seconds spent.
    pub seconds: f64,
}

/// Reference trajectories, learned rollouts and learned/reference eigenvalues along them.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    /// Stiffness values (one per trajectory).
    pub eps: Vec<f64>,
    /// Output times.
    pub times: Vec<f64>,
    /// Reference states, `m × (N+1) × d`.
    pub reference: Vec<f64>,
    /// Learned rollouts, same layout.
    pub learned: Vec<f64>,
    /// Learned eigenvalues along the reference, `m × (N+1)` lists.
    pub learned_eigs: Vec<Vec<nalgebra::Complex<f64>>>,
    /// Reference eigenvalues, same layout.
    pub reference_eigs: Vec<Vec<nalgebra::Complex<f64>>>,
}

/// Step 5: RK4 rollouts (eq. 17) from the system's test initial states and eigenvalue errors (eq. 18)
/// along the reference trajectories, at each of `eps_list`.
pub fn evaluate(
    ck: &Checkpoint,
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<(Evaluation, Traces)> {
    let t0 = Instant::now();
    let rhs = learned_rhs(ck, device, precision)?;
    let (mut ev, tr) = evaluate_field(&ck.config, &rhs, eps_list, mode)?;
    ev.seconds = t0.elapsed().as_secs_f64();
    Ok((ev, tr))
}

/// The trained network of a checkpoint as a [`LearnedRhs`] on `device`, with its config's eps input and
/// invariant projection.
pub fn learned_rhs(ck: &Checkpoint, device: &Device, precision: Precision) -> Result<LearnedRhs> {
    let cfg = &ck.config;
    let sys = cfg.system.as_ref();
    LearnedRhs::new(
        &ck.weights,
        ck.normalizer.clone(),
        cfg.transform.clone(),
        sys.dim(),
        device.clone(),
        precision.dtype(),
    )?
    .with_eps_input(cfg.model.eps_input)
    .with_invariants(if cfg.model.project_invariants { sys.invariants() } else { Vec::new() }, &cfg.model.eliminate)
}

/// [`evaluate`] for any learned field (one network or an [`Ensemble`]): `cfg` gives the system, the
/// evaluation times, integrator and reference settings.
pub fn evaluate_field(
    cfg: &Config,
    field: &dyn LearnedField,
    eps_list: &[f64],
    mode: JacobianMode,
) -> Result<(Evaluation, Traces)> {
    let t0 = Instant::now();
    let sys = cfg.system.as_ref();
    let d = sys.dim();
    let mut eps_all: Vec<f64> = eps_list.to_vec();
    if !eps_all.contains(&cfg.eval.reference_eps) {
        eps_all.push(cfg.eval.reference_eps);
    }
    for &e in &eps_all {
        sys.check_param(e)?;
    }
    let inits = sys.test_initial_states();
    let times = cfg.eval.times();
    let steps = times.len() - 1;
    let x0: Vec<f64> = inits.iter().flatten().copied().collect();
    let mut tr = Traces { times: times.clone(), ..Default::default() };
    for &e in &eps_all {
        let r = crate::ode::solve_at_with(
            sys,
            e,
            &x0,
            &times,
            cfg.eval.reference_rtol,
            cfg.eval.reference_atol,
            false,
            cfg.eval.reference_method,
        )?;
        tr.reference.extend(r);
        tr.eps.extend(std::iter::repeat_n(e, inits.len()));
    }
    if field.dim() != d {
        return Err(crate::Error::invalid(
            "checkpoint",
            format!("a network of dimension {}", field.dim()),
            format!("a network of the system's dimension {d}"),
        ));
    }
    let x0_all: Vec<f64> = eps_all.iter().flat_map(|_| x0.iter().copied()).collect();
    tr.learned = match cfg.eval.integrator {
        crate::config::Integrator::Rk4 => field.rollout_rk4(&x0_all, &tr.eps, cfg.eval.dt, steps),
        crate::config::Integrator::Bdf => {
            field.rollout_bdf(&x0_all, &tr.eps, &times, cfg.eval.rollout_rtol, cfg.eval.rollout_atol)
        }
    };
    let pts_eps: Vec<f64> = tr.eps.iter().flat_map(|&e| std::iter::repeat_n(e, steps + 1)).collect();
    let jac = field.jacobian(&tr.reference, &pts_eps, mode);
    tr.learned_eigs = eigenvalues(&jac, d);
    tr.reference_eigs =
        (0..pts_eps.len()).map(|p| sys.reference_eigenvalues(&tr.reference[p * d..(p + 1) * d], pts_eps[p])).collect();
    let per_traj = (steps + 1) * d;
    let zeros = sys.invariants().len();
    let mut per_eps = Vec::new();
    for (ei, &e) in eps_all.iter().enumerate() {
        let mut errs = EigenErrors::default();
        let (mut rolls, mut rels, mut periods) = (Vec::new(), Vec::new(), Vec::new());
        for t in ei * inits.len()..(ei + 1) * inits.len() {
            let range = t * per_traj..(t + 1) * per_traj;
            let (learned, reference) = (&tr.learned[range.clone()], &tr.reference[range]);
            let l2 = rollout_l2(learned, reference, d);
            rolls.push(if l2.is_finite() { l2 } else { f64::INFINITY });
            let rel = rollout_rel(learned, reference, d);
            rels.push(if rel.is_finite() { rel } else { f64::INFINITY });
            periods.extend(period_rel(learned, reference, &times, d));
            for p in t * (steps + 1)..(t + 1) * (steps + 1) {
                errs.add(&tr.learned_eigs[p], &tr.reference_eigs[p], zeros);
                let learned = nalgebra::DMatrix::from_row_slice(d, d, &jac[p * d * d..(p + 1) * d * d]);
                let exact = sys.jacobian(&tr.reference[p * d..(p + 1) * d], e);
                errs.add_angle(crate::metrics::subspace_angle(
                    &crate::sampler::fast_eigenvectors(&learned, &tr.learned_eigs[p], 1),
                    &crate::sampler::fast_eigenvectors(&exact, &tr.reference_eigs[p], 1),
                ));
            }
        }
        per_eps.push(EpsMetrics::new(e, &rolls, &rels, &periods, &errs));
    }
    let reference =
        per_eps.iter().find(|m| m.eps == cfg.eval.reference_eps).cloned().expect("reference eps was evaluated");
    let listed: Vec<EpsMetrics> = per_eps.iter().filter(|m| eps_list.contains(&m.eps)).cloned().collect();
    let grid_mean = Summary::mean(&listed);
    Ok((Evaluation { per_eps: listed, reference, grid_mean, seconds: t0.elapsed().as_secs_f64() }, tr))
}

/// Evaluates the deep ensemble of `cks` ([`Ensemble`]: the mean of their fields, with the first
/// checkpoint's system and evaluation settings) like [`evaluate`], and measures what the members'
/// spread says about the learned spectrum ([`EnsembleMetrics`]: one row per eps of `eps_list`, and for
/// log-spaced evaluations one per decade of t, every eps pooled).
pub fn evaluate_ensemble(
    cks: &[Checkpoint],
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<(Evaluation, Traces, Vec<EnsembleMetrics>, Vec<EnsembleMetrics>)> {
    let t0 = Instant::now();
    let ens = Ensemble::new(cks.iter().map(|ck| learned_rhs(ck, device, precision)).collect::<Result<_>>()?)?;
    let cfg = &cks[0].config;
    let (mut ev, tr) = evaluate_field(cfg, &ens, eps_list, mode)?;
    let n_t = tr.times.len();
    let pts_eps: Vec<f64> = tr.eps.iter().flat_map(|&e| std::iter::repeat_n(e, n_t)).collect();
    let member_eigs: Vec<_> =
        ens.member_jacobians(&tr.reference, &pts_eps, mode).iter().map(|j| eigenvalues(j, ens.dim())).collect();
    let zeros = cfg.system.invariants().len();
    // The listed eps only (the evaluation adds the reference eps when it is not listed).
    let keep: Vec<usize> = (0..tr.eps.len()).filter(|&t| eps_list.contains(&tr.eps[t])).collect();
    let pick = |v: &[Vec<nalgebra::Complex<f64>>]| -> Vec<Vec<nalgebra::Complex<f64>>> {
        keep.iter().flat_map(|t| v[t * n_t..(t + 1) * n_t].iter().cloned()).collect()
    };
    let (spread, windows) = crate::metrics::ensemble_metrics(
        &tr.times,
        &keep.iter().map(|&t| tr.eps[t]).collect::<Vec<_>>(),
        &member_eigs.iter().map(|m| pick(m)).collect::<Vec<_>>(),
        &pick(&tr.learned_eigs),
        &pick(&tr.reference_eigs),
        zeros,
    );
    // Decades of t only for log-spaced evaluations.
    let windows = if cfg.eval.spacing == crate::ode::Spacing::Log { windows } else { Vec::new() };
    ev.seconds = t0.elapsed().as_secs_f64();
    Ok((ev, tr, spread, windows))
}

/// Everything a run produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    /// `stiffx` version.
    pub version: String,
    /// Seed.
    pub seed: u64,
    /// Backend used.
    pub backend: String,
    /// Training precision (`train.precision`); written only when it is not the default f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub train_precision: Precision,
    /// One-line descriptions of the plugins used.
    pub system: String,
    /// Sampler description.
    pub sampler: String,
    /// Labeller description.
    pub labeller: String,
    /// Fitted transform description.
    pub transform: String,
    /// Jacobian mode of the evaluation.
    pub jacobian: JacobianMode,
    /// Training samples.
    pub n_train: usize,
    /// Validation samples.
    pub n_val: usize,
    /// Best validation loss (transformed space).
    #[serde(with = "crate::io::float")]
    pub best_val_loss: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Rows of the loss curve: Adam epochs run, then L-BFGS rounds (`train.lbfgs`).
    pub epochs: usize,
    /// Training throughput.
    #[serde(with = "crate::io::float")]
    pub train_samples_per_sec: f64,
    /// Seconds: sampling, labelling, training, evaluation.
    pub seconds: Timings,
    /// Label error against exact labels.
    pub label_bias: Vec<LabelBias>,
    /// For log-spaced evaluations, the eigenvalue errors per decade of time pooled over eps, then over
    /// all points ([`pool_windows`](crate::metrics::pool_windows)); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::metrics::PooledWindow>,
    /// Spectral and rollout metrics.
    pub eval: Evaluation,
}

/// Wall-clock split of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Sampling.
    pub sample: f64,
    /// Labelling.
    pub label: f64,
    /// Training.
    pub train: f64,
    /// Evaluation.
    pub eval: f64,
}

struct RunObserver<'a> {
    out: Option<&'a Path>,
    template: Checkpoint,
    curve: Vec<EpochRecord>,
    bar: ProgressBar,
}

impl TrainObserver for RunObserver<'_> {
    fn on_start(&mut self, init: &Weights, val_loss: f64) -> Result<()> {
        if let Some(out) = self.out {
            self.template.weights = init.clone();
            self.template.val_loss = val_loss;
            self.template.save(&out.join("checkpoint.json"))?;
        }
        Ok(())
    }
    fn on_epoch(&mut self, rec: &EpochRecord, improved: bool, best: &Weights) -> Result<()> {
        self.curve.push(rec.clone());
        self.bar.set_message(format!("train {:.3e}  val {:.3e}", rec.train_loss, rec.val_loss));
        self.bar.inc(1);
        if let Some(out) = self.out {
            if improved {
                self.template.weights = best.clone();
                self.template.epoch = rec.epoch;
                self.template.val_loss = rec.val_loss;
                self.template.save(&out.join("checkpoint.json"))?;
            }
            write_csv(&out.join("loss_curve.csv"), &self.curve)?;
        }
        Ok(())
    }
}

/// A progress bar on stderr (hidden when `progress` is false), prefixed with `what`.
pub(crate) fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_prefix(what.to_string());
    b
}

/// Runs the whole pipeline for one config.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunMetrics> {
    cfg.validate()?;
    if opts.progress {
        eprintln!("sampling and labelling …");
    }
    let data = generate(cfg)?;
    run_with_data(cfg, opts, &data)
}

/// Runs training and evaluation on already generated data (sweeps share datasets between runs).
pub fn run_with_data(cfg: &Config, opts: &RunOptions, data: &Data) -> Result<RunMetrics> {
    cfg.validate()?;
    cfg.train.precision.check_training(opts.backend)?;
    let device = opts.backend.device()?;
    let out = opts.out.as_deref();
    if let Some(o) = out {
        write_atomic(&o.join("config.toml"), cfg.to_toml().as_bytes())?;
    }
    let say = |m: &str| {
        if opts.progress {
            eprintln!("{m}");
        }
    };
    say(&format!(
        "  {} samples ({:.1} s sampling, {:.1} s labelling)",
        data.set.len(),
        data.sample_secs,
        data.label_secs
    ));
    if let Some(o) = out {
        write_csv(&o.join("label_bias.csv"), &data.bias)?;
    }
    let prep = prepare(cfg, data)?;
    let d = cfg.system.dim();
    let init = Weights::init(d + 1, cfg.model.hidden as usize, cfg.model.width as usize, d, cfg.seed)
        .with_activation(cfg.model.activation);
    let init = if cfg.model.mass_action() { init.with_mass_action() } else { init };
    let mut fitted = cfg.clone();
    fitted.transform = prep.transform.clone();
    let template = Checkpoint {
        format: FORMAT.into(),
        config: fitted,
        normalizer: prep.normalizer.clone(),
        weights: init.clone(),
        epoch: 0,
        val_loss: f64::INFINITY,
    };
    let rows = cfg.train.epochs as usize + cfg.train.lbfgs_rounds();
    let mut obs = RunObserver { out, template, curve: Vec::new(), bar: bar(opts.progress, rows as u64, "train") };
    let t_train = Instant::now();
    let mut train_cfg = cfg.train.clone();
    if train_cfg.shards == 0 {
        train_cfg.shards = opts.backend.default_shards();
    }
    let trained: Trained = train(&init, &prep.train, &prep.val, &train_cfg, cfg.seed, &device, &mut obs)?;
    obs.bar.finish_and_clear();
    let train_secs = t_train.elapsed().as_secs_f64();
    let mut ck = obs.template;
    ck.weights = trained.best.clone();
    ck.epoch = trained.best_epoch;
    ck.val_loss = trained.best_val_loss;
    if let Some(o) = out {
        ck.save(&o.join("checkpoint.json"))?;
        if let Some(r) = ck.weights.reactions(&ck.normalizer) {
            write_json(&o.join("reactions.json"), &r)?;
        }
    }
    say("evaluating …");
    let (eval, traces) = evaluate(&ck, &cfg.eval_eps(), &device, opts.eval_precision, opts.jacobian)?;
    let windows = match out {
        Some(o) => {
            write_traces(&o.join("traces.csv"), &traces, d)?;
            write_time_windows(o, cfg, &traces)?
        }
        None => window_metrics(cfg, &traces),
    };
    let curve = std::mem::take(&mut obs.curve);
    let metrics = RunMetrics {
        version: env!("CARGO_PKG_VERSION").into(),
        seed: cfg.seed,
        backend: opts.backend.to_string(),
        train_precision: cfg.train.precision,
        system: format!("{:?}", cfg.system).chars().take(200).collect(),
        sampler: cfg.sampler.describe(),
        labeller: cfg.labeller.describe(),
        transform: prep.transform.describe(),
        jacobian: opts.jacobian,
        n_train: prep.train.len(),
        n_val: prep.val.len(),
        best_val_loss: trained.best_val_loss,
        best_epoch: trained.best_epoch,
        epochs: trained.curve.len(),
        train_samples_per_sec: trained.samples_per_sec,
        seconds: Timings { sample: data.sample_secs, label: data.label_secs, train: train_secs, eval: eval.seconds },
        label_bias: data.bias.clone(),
        windows: crate::metrics::pool_windows(&windows),
        eval,
    };
    if let Some(o) = out {
        if opts.figures {
            let label = opts
                .label
                .clone()
                .unwrap_or_else(|| o.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned()));
            write_run_figures(&o.join("figures"), cfg, &label, &curve, &traces, &metrics.eval.per_eps)?;
        }
        write_outputs(o, &metrics)?;
    }
    Ok(metrics)
}

/// One row of `traces.csv`: a point of a test trajectory with the reference and learned states and
/// the learned and reference eigenvalues (fastest first) along the reference (data of Figs. 7–8).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TraceRow {
    eps: f64,
    trajectory: usize,
    t: f64,
    component: usize,
    reference: f64,
    learned: f64,
    eig_index: usize,
    eig_learned_re: f64,
    eig_learned_im: f64,
    eig_reference_re: f64,
}

/// Writes the evaluation traces as a long-format CSV (one row per point, component and eigenvalue).
pub fn write_traces(path: &Path, tr: &Traces, d: usize) -> Result<()> {
    let np = tr.times.len();
    let mut rows = Vec::with_capacity(tr.eps.len() * np * d);
    for (j, &e) in tr.eps.iter().enumerate() {
        for (i, &t) in tr.times.iter().enumerate() {
            let p = j * np + i;
            for k in 0..d {
                let (l, r) = (&tr.learned_eigs[p][k], &tr.reference_eigs[p][k]);
                rows.push(TraceRow {
                    eps: e,
                    trajectory: j,
                    t,
                    component: k,
                    reference: tr.reference[p * d + k],
                    learned: tr.learned[p * d + k],
                    eig_index: k,
                    eig_learned_re: l.re,
                    eig_learned_im: l.im,
                    eig_reference_re: r.re,
                });
            }
        }
    }
    write_csv(path, &rows)
}

/// Reads a `traces.csv` written by [`write_traces`] back (the imaginary parts of the reference
/// eigenvalues are not stored and read as 0).
pub fn read_traces(path: &Path, d: usize) -> Result<Traces> {
    let bad = |m: String| Error::Checkpoint { path: path.into(), message: m };
    let mut rd = csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read traces: {e}")))?;
    let rows: Vec<TraceRow> =
        rd.deserialize().collect::<std::result::Result<_, _>>().map_err(|e| bad(format!("malformed traces: {e}")))?;
    if d == 0 || rows.is_empty() || !rows.len().is_multiple_of(d) {
        return Err(bad(format!("{} rows do not make whole points of dimension {d}", rows.len())));
    }
    let times: Vec<f64> = rows.iter().filter(|r| r.trajectory == 0 && r.component == 0).map(|r| r.t).collect();
    let np = times.len();
    let m = rows.len() / (np * d).max(1);
    if np == 0 || m * np * d != rows.len() {
        return Err(bad("trajectories of unequal length".into()));
    }
    let mut tr = Traces { times, ..Default::default() };
    for (idx, r) in rows.iter().enumerate() {
        let (p, k) = (idx / d, idx % d);
        if r.trajectory != p / np || r.component != k {
            return Err(bad(format!("row {} is out of order", idx + 2)));
        }
        if k == 0 {
            if p % np == 0 {
                tr.eps.push(r.eps);
            }
            tr.learned_eigs.push(Vec::with_capacity(d));
            tr.reference_eigs.push(Vec::with_capacity(d));
        }
        tr.reference.push(r.reference);
        tr.learned.push(r.learned);
        tr.learned_eigs[p].push(nalgebra::Complex::new(r.eig_learned_re, r.eig_learned_im));
        tr.reference_eigs[p].push(nalgebra::Complex::new(r.eig_reference_re, 0.0));
    }
    Ok(tr)
}

/// Writes a run's figures into `dir`: `loss.png` (Fig. 6), `trajectories.png` (Fig. 7, at the
/// reference eps), `eigenvalues.png` (Fig. 8, at the reference and the stiffest training eps) and
/// `errors_vs_eps.png` (Fig. 10).
pub fn write_run_figures(
    dir: &Path,
    cfg: &Config,
    label: &str,
    curve: &[EpochRecord],
    traces: &Traces,
    per_eps: &[EpsMetrics],
) -> Result<()> {
    use crate::figures::paper;
    let sys = cfg.system.as_ref();
    paper::loss_curves(&dir.join("loss.png"), &[(label.to_string(), cfg.seed, curve.to_vec())])?;
    let runs = [(label.to_string(), traces)];
    paper::trajectories(&dir.join("trajectories.png"), sys, &runs, cfg.eval.reference_eps)?;
    let mut eps = vec![cfg.eval.reference_eps];
    if let Some(stiffest) = sys.train_grid().into_iter().min_by(f64::total_cmp)
        && stiffest != cfg.eval.reference_eps
        && traces.eps.contains(&stiffest)
    {
        eps.push(stiffest);
    }
    paper::eigenvalues(&dir.join("eigenvalues.png"), sys, &runs, &eps)?;
    let curve = crate::metrics::eps_curve(label, &[per_eps], &sys.unseen_grid());
    paper::eps_curves(&dir.join("errors_vs_eps.png"), &sys.param_name(), &curve)
}

/// For log-spaced evaluations, writes `time_windows.csv`: the eigenvalue errors per decade of time and
/// eps ([`time_windows`](crate::metrics::time_windows)), and returns them (empty for uniform spacing,
/// where nothing is written).
pub fn write_time_windows(out: &Path, cfg: &Config, traces: &Traces) -> Result<Vec<WindowMetrics>> {
    let w = window_metrics(cfg, traces);
    if !w.is_empty() {
        write_csv(&out.join("time_windows.csv"), &w)?;
    }
    Ok(w)
}

/// The eigenvalue errors per decade of time and eps ([`time_windows`](crate::metrics::time_windows))
/// of a log-spaced evaluation; empty for uniform spacing.
pub fn window_metrics(cfg: &Config, traces: &Traces) -> Vec<WindowMetrics> {
    if cfg.eval.spacing != crate::ode::Spacing::Log {
        return Vec::new();
    }
    let zeros = cfg.system.invariants().len();
    crate::metrics::time_windows(&traces.times, &traces.eps, &traces.learned_eigs, &traces.reference_eigs, zeros)
}

/// Writes `metrics.json` and `per_eps.csv`.
pub fn write_outputs(out: &Path, m: &RunMetrics) -> Result<()> {
    write_csv(&out.join("per_eps.csv"), &m.eval.per_eps)?;
    write_json(&out.join("metrics.json"), m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{Asinh, Identity};

    /// Two groups a million apart in `|F|`, with a base point and two cloud points each, and a
    /// component that vanishes in the small group only.
    fn two_groups() -> (SampleSet, Vec<f64>) {
        let origin = |traj: u32, cloud: Option<bool>| match cloud {
            None => Origin::Trajectory { traj, index: 3 },
            Some(off) => Origin::Cloud { off, traj, index: 3 },
        };
        let set = SampleSet {
            dim: 2,
            x: vec![0.0; 12],
            eps: vec![0.5; 6],
            origin: vec![
                origin(0, None),
                origin(0, Some(true)),
                origin(0, Some(false)),
                origin(1, None),
                origin(1, Some(true)),
                origin(1, Some(true)),
            ],
            trajectories: Vec::new(),
        };
        let labels = vec![1.0, -2.0, 1.5, -1.0, 0.5, -3.0, 1e-6, 0.0, 2e-6, 0.0, -1e-6, 0.0];
        (set, labels)
    }

    #[test]
    fn difference_pairs_join_cloud_samples_to_their_base_point_in_the_same_split() {
        let (set, _) = two_groups();
        // Split {0, 1, 2, 4, 5} / {3}: group 1's base point (row 3) is held out.
        assert_eq!(partners(&set, &[5, 1, 0, 2, 4]), vec![u32::MAX, 2, u32::MAX, 2, u32::MAX]);
        assert_eq!(partners(&set, &[3, 4]), vec![u32::MAX, 0]);
        // Δy per component: rows 1, 2 against row 0.
        let g = [1.0, 0.0, 1.5, 0.0, 1.1, 0.0];
        let p = [u32::MAX, 0, 0];
        let rms = difference_rms(&p, &g, 2);
        assert!((rms[0] - ((0.25 + 0.01) / 2.0f64).sqrt()).abs() < 1e-12 && rms[1] == 0.0, "{rms:?}");
        let w = difference_weights(&p, &g, 2, &rms, 0.5);
        // 1/Δy² for Δy = 0.5; Δy = 0.1 is floored at 0.5·rms; a component that never changes: 0.
        assert!((w[2] - 4.0).abs() < 1e-9 && (w[4] - 1.0 / (0.25 * rms[0] * rms[0])).abs() < 1e-9, "{w:?}");
        assert_eq!((w[0], w[1], w[3], w[5]), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn relative_weights_turn_transformed_errors_into_relative_errors_per_group() {
        let (set, labels) = two_groups();
        let rms = |g: usize, k: usize| ((0..3).map(|j| labels[(3 * g + j) * 2 + k].powi(2)).sum::<f64>() / 3.0).sqrt();
        // Identity: w = 1/m², so a 1 % error of every label costs the same in both groups.
        let w = relative_weights(&set, &labels, &Identity {}, &[1e-9; 2]);
        for i in 0..6 {
            let m = rms(i / 3, 0);
            assert!((w[i * 2] * m * m - 1.0).abs() < 1e-12, "sample {i}: {}", w[i * 2]);
        }
        let cost =
            |g: usize| (0..3).map(|j| w[(3 * g + j) * 2] * (0.01 * labels[(3 * g + j) * 2]).powi(2)).sum::<f64>();
        assert!((cost(0) / cost(1) - 1.0).abs() < 1e-12, "{} vs {}", cost(0), cost(1));
        // Component 1 vanishes in group 1: its RMS is floored at floor × the global RMS.
        let global = ((0..6).map(|i| labels[i * 2 + 1].powi(2)).sum::<f64>() / 6.0).sqrt();
        assert!((w[3 * 2 + 1] * (1e-9 * global).powi(2) - 1.0).abs() < 1e-12);
        let w = relative_weights(&set, &labels, &Identity {}, &[1e-3; 2]);
        assert!((w[3 * 2 + 1] * (1e-3 * global).powi(2) - 1.0).abs() < 1e-12);
        // Per-component floors: each component's own.
        let w = relative_weights(&set, &labels, &Identity {}, &[1e-9, 1e-2]);
        assert!((w[3 * 2 + 1] * (1e-2 * global).powi(2) - 1.0).abs() < 1e-12);
        assert!((w[3 * 2] * rms(1, 0).powi(2) - 1.0).abs() < 1e-12);

        // asinh: w = (s² + F²)/m², the first-order map of δG to δF/m.
        let s = 0.1;
        let asinh = Asinh { scales: vec![s, s], ..Default::default() };
        let w = relative_weights(&set, &labels, &asinh, &[1e-9; 2]);
        for i in 0..6 {
            let (f, m) = (labels[i * 2], rms(i / 3, 0));
            assert!((w[i * 2] / ((s * s + f * f) / (m * m)) - 1.0).abs() < 1e-12);
            // Check against a finite perturbation: δF = 1e-6·m.
            let g = asinh.forward(0, f, 0.5);
            let dg = asinh.forward(0, f + 1e-6 * m, 0.5) - g;
            assert!((w[i * 2] * dg * dg / 1e-12 - 1.0).abs() < 1e-4, "sample {i}");
        }
    }
}
