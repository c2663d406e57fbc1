//! Loss weights and labels of the three weighted losses, in network space: per-group relative weights
//! (`train.weighting = "relative"`), the weights of the difference pairs (`train.difference`: a cloud
//! sample and its base point), and the Jacobian labels and their weights (`train.jacobian`):
//!
//! ```text
//! ∂G_k/∂u_j = T_k'(F_k) · ∂F_k/∂x_j · ∂x_j/∂u_j
//! ```

use crate::model::Normalizer;
use crate::plugins::sampler::{Origin, SampleSet};
use crate::plugins::transform::TargetTransform;

/// Scales both splits' loss weights so that the training split's `entries` labelled weights (the
/// others are 0) average `target`; all 0 when they sum to 0.
pub fn scale_to_mean(train: &mut [f64], val: &mut [f64], entries: usize, target: f64) {
    let mean = train.iter().sum::<f64>() / entries.max(1) as f64;
    let s = if mean > 0.0 { target / mean } else { 0.0 };
    train.iter_mut().chain(val.iter_mut()).for_each(|w| *w *= s);
}

/// Jacobian labels of the rows `idx` in network space (`Dataset::jacobian`: `idx.len() × d × d`,
/// axis-major) and which rows carry them (trajectory points; cloud samples do not). With the network
/// input `u_j = (φ_j(x_j) − μ_j)/σ_j` ([`Normalizer`]) and target `G_k = T_k(F_k)`,
///
/// ```text
/// ∂G_k/∂u_j = T_k'(F_k) · ∂F_k/∂x_j · ∂x_j/∂u_j,   T_k'(F_k) = 1 / (T⁻¹)_k'(G_k),   ∂x_j/∂u_j = σ_j / φ_j'(x_j),
/// ```
///
/// `∂F/∂x` from [`StiffSystem::jacobian`](crate::plugins::system::StiffSystem::jacobian), `F` the labels (exact:
/// `train.jacobian` requires the `direct` labeller).
pub fn jacobian_labels(
    system: &dyn crate::plugins::system::StiffSystem,
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
    let median = |v: Vec<f64>| (!v.is_empty()).then(|| crate::stats::median(&v));
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

/// Difference-loss partners of the rows `idx` of a split (see `Dataset::partner`): a cloud sample's
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
/// where a component hardly changes (see `train.difference`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::transform::{Asinh, Identity};

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
