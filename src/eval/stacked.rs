//! Several trained networks of one shape evaluated together: their Jacobians and RHSs at the same
//! points in one stacked pass ([`StackedMlp`]: one batched product per layer for all `M` networks),
//! used by the deep ensemble ([`Ensemble`]) and by runs trained together (`--together`, whose spectral
//! evaluations share the reference trajectories).
//!
//! Member `m` keeps its own standardisation, state input map, target transform and invariant
//! projection; only the network passes are stacked. With member `m`'s standardised inputs
//! `H_m = ((x − μ_m)/σ_m, ε̃_m)` and the `d` input tangents `e_i / σ_{m,i}`,
//!
//! ```text
//! (A, Ȧ_1 … Ȧ_d) = stacked forward-mode pass of ([H_1 … H_M], [e_i/σ_{1,i} … e_i/σ_{M,i}]),
//! J_m = P_m · D_m(A_m) · [Ȧ_1,m … Ȧ_d,m] · diag(φ'_m(x))
//! ```
//!
//! (`D_m` the transform's chain rule, `φ'_m` the state map's slopes, `P_m` the projection), which is
//! what [`LearnedRhs::jacobian`] computes for each member alone, up to the rounding of the batched
//! products (`tests::stacked_jacobians_equal_one_by_one`).

use burn::tensor::Tensor;

use super::spectral::{CHUNK, JacobianMode, LearnedField, LearnedRhs};
use crate::error::Result;
use crate::model::{StackedMlp, tensor2_as, to_f64};

/// The members' networks stacked into one [`StackedMlp`] on the first member's device and float type,
/// or `None` when they cannot be (fewer than two, different layer shapes or activations, a mass-action
/// network, different devices or float types): then they are evaluated one by one.
pub fn stack(members: &[LearnedRhs]) -> Option<StackedMlp> {
    let first = members.first()?;
    if members.len() < 2 || members.iter().any(|m| m.dtype != first.dtype || m.device != first.device) {
        return None;
    }
    let weights: Vec<_> = members.iter().map(|m| m.mlp.weights()).collect();
    StackedMlp::from_members(&weights.iter().collect::<Vec<_>>(), &first.device, first.dtype).ok()
}

/// Every member's network outputs `a` and network Jacobians `∂a/∂x` (before the physical chain rule)
/// at the `n` points, point-major: `[n, M, d]` and `[n, M, d, d]`.
fn net_pass(members: &[LearnedRhs], net: &StackedMlp, x: &[f64], eps: &[f64], tangents: bool) -> (Vec<f64>, Vec<f64>) {
    let first = &members[0];
    let (d, c, mm) = (first.dim, first.dim + 1, members.len());
    let chunk = (CHUNK / mm).max(1);
    first.sharded(x, eps, |x, eps| {
        let mut a_out = Vec::with_capacity(eps.len() * mm * d);
        let mut j_out = Vec::with_capacity(if tangents { eps.len() * mm * d * d } else { 0 });
        for (xs, es) in x.chunks(chunk * d).zip(eps.chunks(chunk)) {
            let n = es.len();
            let h0: Vec<f64> = members.iter().flat_map(|m| m.standardised(xs, es)).collect();
            let h0 = tensor2_as(h0, mm * n, c, &first.device, first.dtype).reshape([mm, n, c]);
            let dirs: Vec<Tensor<3>> = if tangents {
                (0..d)
                    .map(|i| {
                        let mut t = vec![0.0f64; mm * n * c];
                        for (m, member) in members.iter().enumerate() {
                            for j in 0..n {
                                t[(m * n + j) * c + i] = 1.0 / member.norm.std[i];
                            }
                        }
                        tensor2_as(t, mm * n, c, &first.device, first.dtype).reshape([mm, n, c])
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let (a, dots) = net.forward_tangents(h0, dirs);
            let a = to_f64(a);
            for j in 0..n {
                for m in 0..mm {
                    a_out.extend_from_slice(&a[(m * n + j) * d..(m * n + j + 1) * d]);
                }
            }
            if tangents {
                let dots: Vec<Vec<f64>> = dots.into_iter().map(to_f64).collect();
                let base = j_out.len();
                j_out.resize(base + n * mm * d * d, 0.0);
                for (i, v) in dots.iter().enumerate() {
                    for m in 0..mm {
                        for j in 0..n {
                            for k in 0..d {
                                j_out[base + ((j * mm + m) * d + k) * d + i] = v[(m * n + j) * d + k];
                            }
                        }
                    }
                }
            }
        }
        (a_out, j_out)
    })
}

/// Member `m`'s rows of a point-major `[n, M, w]` array.
fn member_rows(all: &[f64], mm: usize, m: usize, w: usize) -> Vec<f64> {
    all.chunks(mm * w).flat_map(|p| p[m * w..(m + 1) * w].iter().copied()).collect()
}

/// Each member's physical Jacobians at the `n` points (`M` lists of `n` row-major `d × d` blocks):
/// one stacked forward-mode pass when `net` is given and `mode` is forward, else each member alone.
pub fn jacobians(
    members: &[LearnedRhs],
    net: Option<&StackedMlp>,
    x: &[f64],
    eps: &[f64],
    mode: JacobianMode,
) -> Vec<Vec<f64>> {
    let Some(net) = net.filter(|_| mode == JacobianMode::Forward) else {
        return members.iter().map(|m| m.jacobian(x, eps, mode)).collect();
    };
    let (mm, d) = (members.len(), members[0].dim);
    let (a, jac) = net_pass(members, net, x, eps, true);
    members
        .iter()
        .enumerate()
        .map(|(m, member)| {
            let mut j = member_rows(&jac, mm, m, d * d);
            member.physical_jacobian(x, eps, &member_rows(&a, mm, m, d), &mut j);
            j
        })
        .collect()
}

/// Each member's physical RHS at the `n` points (`M` lists of `n × d`): one stacked pass when `net`
/// is given, else each member alone.
pub fn rhs(members: &[LearnedRhs], net: Option<&StackedMlp>, x: &[f64], eps: &[f64]) -> Vec<Vec<f64>> {
    let Some(net) = net else {
        return members.iter().map(|m| m.rhs(x, eps)).collect();
    };
    let (mm, d) = (members.len(), members[0].dim);
    let (a, _) = net_pass(members, net, x, eps, false);
    members.iter().enumerate().map(|(m, member)| member.physical_rhs(&member_rows(&a, mm, m, d), eps)).collect()
}

/// A deep ensemble: the mean of `M` independently trained fields (e.g. one per seed),
///
/// ```text
/// F̄(x, ε) = (1/M) Σ_i F_i(x, ε),   J̄ = ∂F̄/∂x = (1/M) Σ_i J_i
/// ```
///
/// (the Jacobian of the mean is the mean of the Jacobians, so `J̄` is exact, not an approximation).
/// Averaging cancels the part of each member's error that is independent across seeds; the spread of
/// the members' eigenvalues around each other is the ensemble's own estimate of how far the learned
/// spectrum can be trusted ([`crate::eval::metrics::EnsembleMetrics`]).
#[derive(Debug)]
pub struct Ensemble {
    /// The members, all of one system (same `d`).
    pub members: Vec<LearnedRhs>,
    /// The members' networks stacked, when they can be ([`stack`]).
    net: Option<StackedMlp>,
}

impl Ensemble {
    /// An ensemble of `members`; an error when there are none or their dimensions differ.
    pub fn new(members: Vec<LearnedRhs>) -> Result<Self> {
        let Some(first) = members.first() else {
            return Err(crate::Error::invalid("ensemble", "(no members)", "at least one trained network"));
        };
        if let Some(m) = members.iter().find(|m| m.dim != first.dim) {
            return Err(crate::Error::invalid(
                "ensemble",
                format!("members of dimension {} and {}", first.dim, m.dim),
                "members of one system (one state dimension)",
            ));
        }
        let net = stack(&members);
        Ok(Self { members, net })
    }

    /// Whether the members' networks are evaluated in one stacked pass.
    pub fn is_stacked(&self) -> bool {
        self.net.is_some()
    }

    /// Each member's Jacobians at the `n` points, `M` lists of `n` row-major `d × d` blocks.
    pub fn member_jacobians(&self, x: &[f64], eps: &[f64], mode: JacobianMode) -> Vec<Vec<f64>> {
        jacobians(&self.members, self.net.as_ref(), x, eps, mode)
    }
}

/// Element-wise mean of equally long vectors.
pub(crate) fn mean_of(v: &[Vec<f64>]) -> Vec<f64> {
    let scale = 1.0 / v.len() as f64;
    let mut out = vec![0.0; v[0].len()];
    for m in v {
        out.iter_mut().zip(m).for_each(|(o, x)| *o += scale * x);
    }
    out
}

impl LearnedField for Ensemble {
    fn dim(&self) -> usize {
        self.members[0].dim
    }

    fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        mean_of(&rhs(&self.members, self.net.as_ref(), x, eps))
    }

    fn jacobian(&self, x: &[f64], eps: &[f64], mode: JacobianMode) -> Vec<f64> {
        mean_of(&self.member_jacobians(x, eps, mode))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::DType;

    use super::*;
    use crate::model::{Normalizer, StateMap, Weights};
    use crate::plugins::transform::{Asinh, Identity, TargetTransform};

    /// A random 3-layer network on a 3-species system, with its own standardisation, state map,
    /// transform and (for `projected`) the invariant `y1 + y2 + y3`.
    fn member(seed: u64, asinh_inputs: bool, transform: Box<dyn TargetTransform>, projected: bool) -> LearnedRhs {
        let w = Weights::init(4, 3, 24, 3, seed);
        let norm = Normalizer {
            mean: vec![0.1 * seed as f64, -0.2, 0.3, 0.05],
            std: vec![0.5, 1.5 + seed as f64, 0.7, 0.02],
            state_scale: if asinh_inputs { vec![0.1, 1.0, 10.0] } else { Vec::new() },
            state_map: StateMap::Asinh,
        };
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let rhs = LearnedRhs::new(&w, norm, transform, 3, device, DType::F64).unwrap();
        if projected { rhs.with_invariants(vec![vec![1.0, 1.0, 1.0]], &[]).unwrap() } else { rhs }
    }

    /// `n` points, several eps.
    fn points(n: usize) -> (Vec<f64>, Vec<f64>) {
        let x = (0..3 * n).map(|i| ((i as f64) * 0.37).sin() * 2.0).collect();
        let eps = (0..n).map(|j| 0.01 + 0.3 * (j % 7) as f64 / 7.0).collect();
        (x, eps)
    }

    /// The stacked pass gives each member the Jacobian and RHS it has alone: standardisation, state
    /// map, transform chain rule and projection stay the member's own, and only the rounding of the
    /// batched products may differ (none on flex; 1e-12 relative in f64 elsewhere).
    #[test]
    fn stacked_jacobians_equal_one_by_one() {
        let asinh = Asinh { scales: vec![0.5, 2.0, 0.1], ..Default::default() };
        let members = vec![
            member(1, false, Box::new(Identity {}), false),
            member(2, true, Box::new(asinh), true),
            member(3, true, Box::new(Identity {}), false),
        ];
        let net = stack(&members).expect("three networks of one shape stack");
        // 3000 points: more than one shard of the sharded evaluation, each a single batch.
        let (x, eps) = points(3000);
        let close = |a: &[f64], b: &[f64], tol: f64, what: &str| {
            assert_eq!(a.len(), b.len());
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
            assert!(worst <= tol * scale, "{what}: worst difference {worst:e} of {scale:e}");
        };
        // flex's batched product runs the same gemm on each member's slice as the 2-D product on
        // the member alone, so the stacked pass gives the same bits; other backends may round the
        // batched products differently.
        let tol = if crate::backend::Backend::default_compiled().unwrap() == crate::backend::Backend::Flex {
            0.0
        } else {
            1e-12
        };
        // Every member's stacked Jacobians against its own pass; the stacked ones are returned.
        let jacobians_equal_alone = |x: &[f64], eps: &[f64], what: &str| {
            let stacked = jacobians(&members, Some(&net), x, eps, JacobianMode::Forward);
            for (m, member) in members.iter().enumerate() {
                let alone = member.jacobian(x, eps, JacobianMode::Forward);
                close(&stacked[m], &alone, tol, &format!("Jacobian of member {m}, {what}"));
            }
            stacked
        };
        let stacked = jacobians_equal_alone(&x, &eps, "3k points");
        let stacked_rhs = rhs(&members, Some(&net), &x, &eps);
        for (m, member) in members.iter().enumerate() {
            close(&stacked_rhs[m], &member.rhs(&x, &eps), tol, &format!("RHS of member {m}"));
        }
        // The members differ, so the comparison is not of one network with itself.
        assert!(stacked[0].iter().zip(&stacked[2]).any(|(a, b)| (a - b).abs() > 1e-3));
        // The projected member's Jacobian has (1, 1, 1) as a left null vector.
        for b in stacked[1].chunks(9) {
            assert!((0..3).all(|c| (b[c] + b[3 + c] + b[6 + c]).abs() < 1e-10), "{b:?}");
        }
        // Reverse mode goes member by member, and agrees.
        let reverse = jacobians(&members, Some(&net), &x[..30], &eps[..10], JacobianMode::Reverse);
        close(&reverse[1], &stacked[1][..90], 1e-12, "reverse mode");
        // 25,000 points: each shard's 12,500 are two stacked batches (CHUNK / 3 points each) but one
        // batch alone, so the batch boundaries differ between the two paths.
        let (x, eps) = points(25_000);
        jacobians_equal_alone(&x, &eps, "25k points");
    }

    /// Networks of different shapes, or a single one, are not stacked; the ensemble then evaluates
    /// its members one by one.
    #[test]
    fn different_shapes_are_not_stacked() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let narrow = LearnedRhs::new(
            &Weights::init(4, 3, 8, 3, 5),
            member(1, false, Box::new(Identity {}), false).norm,
            Box::new(Identity {}),
            3,
            device,
            DType::F64,
        )
        .unwrap();
        let one = vec![member(1, false, Box::new(Identity {}), false)];
        assert!(stack(&one).is_none());
        let ens = Ensemble::new(vec![member(1, false, Box::new(Identity {}), false), narrow]).unwrap();
        assert!(!ens.is_stacked());
        let same = Ensemble::new(vec![
            member(1, false, Box::new(Identity {}), false),
            member(2, false, Box::new(Identity {}), false),
        ])
        .unwrap();
        assert!(same.is_stacked());
    }
}
