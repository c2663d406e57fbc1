//! Spectral diagnostics of the learned operator: its Jacobian (paper eqs. 19–27, Alg. 1) by
//! reverse-mode autodiff or forward-mode tangents, the transform's chain rule, eigenvalues with
//! nalgebra, RK4 and BDF rollouts of the learned RHS, and deep ensembles of trained networks.
//!
//! The physical Jacobian is
//!
//! ```text
//! J_phys = D · J_net · diag(1/σ_x),   D = diag(dT⁻¹/da (a)),   J_net = ∂a/∂h_0 (states block)
//! ```
//!
//! where `h_0` are the standardised inputs. Reverse mode differentiates through the standardisation
//! itself (Alg. 1 step 2): the physical inputs are the autodiff leaves. To get all `d` rows for all `n`
//! points in one backward pass, the inputs are stacked `d` times and the scalar
//! `Σ_k Σ_{j in block k} a_k(x_j)` is differentiated: block `k` of the input gradient holds row `k` of
//! every sample's Jacobian. Forward mode pushes the `d` input tangents `e_i/σ_i` through the layers
//! with the primal ([`Mlp::forward_tangents`]).

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor};
use nalgebra::{Complex, DMatrix};
use serde::{Deserialize, Serialize};

use crate::backend::host_shards;
use crate::error::Result;
use crate::model::config::EpsInput;
use crate::model::{Mlp, Normalizer, Weights, tensor2_as, to_f64};
use crate::plugins::system::eigenvalues_by_magnitude;
use crate::plugins::transform::{TargetTransform, chain_rule, inverse_all};

/// How the learned Jacobian is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum JacobianMode {
    /// Reverse-mode autodiff, one backward over `d` stacked copies (the paper's Alg. 1).
    Reverse,
    /// Forward-mode tangents through the MLP (cheaper for small `d`).
    #[default]
    Forward,
}

/// A trained network with everything needed to evaluate the physical RHS and its Jacobian.
#[derive(Debug)]
pub struct LearnedRhs {
    /// The network on `device`.
    pub mlp: Mlp,
    /// Input standardisation.
    pub norm: Normalizer,
    /// Fitted target transform.
    pub transform: Box<dyn TargetTransform>,
    /// State dimension.
    pub dim: usize,
    /// Device the network lives on (plain, not autodiff).
    pub device: Device,
    /// Float type of the evaluation (f64 recommended for stiff spectra).
    pub dtype: DType,
    /// How eps is fed to the network.
    pub eps_input: EpsInput,
    /// Projector onto the system's linear invariants ([`invariant_projector`]), applied to the RHS and
    /// the Jacobian; `None`: no projection.
    pub projector: Option<DMatrix<f64>>,
}

/// Rows to push through the network at once.
pub(super) const CHUNK: usize = 32_768;

/// The fewest points a thread of [`LearnedRhs`]'s sharded evaluation gets: below this, spawning a thread
/// costs more than the single-threaded elementwise kernels it relieves.
const MIN_SHARD: usize = 1024;

impl LearnedRhs {
    /// Loads weights onto `device` as `dtype` tensors.
    pub fn new(
        weights: &Weights,
        norm: Normalizer,
        transform: Box<dyn TargetTransform>,
        dim: usize,
        device: Device,
        dtype: DType,
    ) -> Result<Self> {
        Ok(Self {
            mlp: Mlp::from_weights(weights, &device, dtype)?,
            norm,
            transform,
            dim,
            device,
            dtype,
            eps_input: EpsInput::Linear,
            projector: None,
        })
    }

    /// Projects the learned RHS onto the system's linear invariants (see [`invariant_projector`]):
    /// `F_P = P F_θ`, hence `J_P = P J_θ`. An empty list leaves the RHS as it is.
    pub fn with_invariants(mut self, invariants: Vec<Vec<f64>>, eliminate: &[usize]) -> Result<Self> {
        self.projector = invariant_projector(self.dim, &invariants, eliminate)?;
        Ok(self)
    }

    /// Sets how eps is fed to the network (must match training).
    pub fn with_eps_input(mut self, eps_input: EpsInput) -> Self {
        self.eps_input = eps_input;
        self
    }

    fn inputs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        let d = self.dim;
        let mut rows = Vec::with_capacity(eps.len() * (d + 1));
        for (j, e) in eps.iter().enumerate() {
            rows.extend_from_slice(&x[j * d..(j + 1) * d]);
            rows.push(self.eps_input.feature(*e));
        }
        self.norm.map_states(&mut rows, d + 1);
        rows
    }

    /// The network's standardised inputs `h_0` at `n` points, `n × (d + 1)` row-major.
    pub(super) fn standardised(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        let c = self.dim + 1;
        self.inputs(x, eps)
            .iter()
            .enumerate()
            .map(|(i, v)| (v - self.norm.mean[i % c]) / self.norm.std[i % c])
            .collect()
    }

    /// Network outputs `a` (transformed space) at `n` points (`x`: `n × d`).
    pub fn raw(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        let c = self.dim + 1;
        self.sharded(x, eps, |xs, es| {
            let h0 = self.standardised(xs, es);
            let mut out = Vec::with_capacity(es.len() * self.dim);
            for rows in h0.chunks(CHUNK * c) {
                let n = rows.len() / c;
                out.extend(to_f64(self.mlp.forward(tensor2_as(rows.to_vec(), n, c, &self.device, self.dtype))));
            }
            (out, Vec::new())
        })
        .0
    }

    /// `work` on the points split into [`host_shards`] consecutive parts, run on threads of their own
    /// (each part in `CHUNK`s inside `work`), and the parts' two outputs concatenated in order. Each
    /// point's result depends only on that point and on the fixed split, so repeated calls agree bit
    /// for bit. Batches under `2 · MIN_SHARD` points run on the calling thread.
    pub(super) fn sharded<W>(&self, x: &[f64], eps: &[f64], work: W) -> (Vec<f64>, Vec<f64>)
    where
        W: Fn(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>) + Sync,
    {
        let (d, n) = (self.dim, eps.len());
        let shards = host_shards(&self.device).min(n / MIN_SHARD).max(1);
        if shards == 1 {
            return work(x, eps);
        }
        let size = n.div_ceil(shards);
        let parts: Vec<(Vec<f64>, Vec<f64>)> = std::thread::scope(|s| {
            let handles: Vec<_> =
                x.chunks(size * d).zip(eps.chunks(size)).map(|(xs, es)| s.spawn(|| work(xs, es))).collect();
            handles.into_iter().map(|h| h.join().expect("a learned-RHS shard panicked")).collect()
        });
        let mut out = (Vec::with_capacity(n * d), Vec::new());
        for (a, b) in parts {
            out.0.extend(a);
            out.1.extend(b);
        }
        out
    }

    /// The learned physical RHS `F_θ(x, eps) = T⁻¹(a)` at `n` points.
    pub fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        self.physical_rhs(&self.raw(x, eps), eps)
    }

    /// The physical RHS from the network outputs `a` at `n` points: the inverse transform, then the
    /// invariant projection.
    pub(super) fn physical_rhs(&self, a: &[f64], eps: &[f64]) -> Vec<f64> {
        let mut f = inverse_all(self.transform.as_ref(), a, eps, self.dim);
        if let Some(p) = &self.projector {
            f.chunks_mut(self.dim).for_each(|v| left_multiply(p, v, 1));
        }
        f
    }

    /// Physical Jacobians at `n` points: `n` row-major `d × d` blocks.
    pub fn jacobian(&self, x: &[f64], eps: &[f64], mode: JacobianMode) -> Vec<f64> {
        let d = self.dim;
        let (a_all, mut jac) = self.sharded(x, eps, |x, eps| {
            let mut jac = Vec::with_capacity(eps.len() * d * d);
            let mut a_all = Vec::with_capacity(eps.len() * d);
            for (xs, es) in x.chunks(CHUNK * d).zip(eps.chunks(CHUNK)) {
                let (a, j) = match mode {
                    JacobianMode::Reverse => self.net_jacobian_reverse(xs, es),
                    JacobianMode::Forward => self.net_jacobian_forward(xs, es),
                };
                a_all.extend(a);
                jac.extend(j);
            }
            (a_all, jac)
        });
        self.physical_jacobian(x, eps, &a_all, &mut jac);
        jac
    }

    /// Turns the network's Jacobians `∂a/∂x` at `n` points (`jac`, in place; the outputs `a_all`) into
    /// the physical ones: the state input map's slopes, the transform's chain rule, the invariant
    /// projection.
    pub(super) fn physical_jacobian(&self, x: &[f64], eps: &[f64], a_all: &[f64], jac: &mut [f64]) {
        let d = self.dim;
        if !self.norm.state_scale.is_empty() {
            // The network saw φ(x): ∂a/∂x_i = ∂a/∂φ_i · φ_i'(x_i).
            for (p, block) in jac.chunks_mut(d * d).enumerate() {
                let slope = self.norm.state_slopes(&x[p * d..(p + 1) * d]);
                for (k, v) in block.iter_mut().enumerate() {
                    *v *= slope[k % d];
                }
            }
        }
        chain_rule(self.transform.as_ref(), a_all, eps, jac, d);
        if let Some(p) = &self.projector {
            jac.chunks_mut(d * d).for_each(|block| left_multiply(p, block, d));
        }
    }

    /// `(a, ∂a/∂x)` by reverse mode; `∂a/∂x` in physical state coordinates.
    fn net_jacobian_reverse(&self, x: &[f64], eps: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, c, n) = (self.dim, self.dim + 1, eps.len());
        let ad = self.device.clone().autodiff();
        let model = self.mlp.clone().fork(&ad);
        let rows = self.inputs(x, eps);
        let mut stacked = Vec::with_capacity(d * rows.len());
        for _ in 0..d {
            stacked.extend_from_slice(&rows);
        }
        let leaf = tensor2_as(stacked, d * n, c, &ad, self.dtype).require_grad();
        let mean = tensor2_as(self.norm.mean.clone(), 1, c, &ad, self.dtype);
        let std = tensor2_as(self.norm.std.clone(), 1, c, &ad, self.dtype);
        let a = model.forward(leaf.clone().sub(mean).div(std));
        // mask[k·n + j, k] = 1: block k keeps output component k.
        let mut mask = vec![0.0f32; d * n * d];
        for k in 0..d {
            for j in 0..n {
                mask[(k * n + j) * d + k] = 1.0;
            }
        }
        let a_first: Tensor<2> = a.clone().narrow(0, 0, n);
        let grads = a.mul(tensor2_as(mask, d * n, d, &ad, self.dtype)).sum().backward();
        let g = to_f64(leaf.grad(&grads).expect("the input leaf requires grad"));
        let mut jac = vec![0.0; n * d * d];
        for k in 0..d {
            for j in 0..n {
                for i in 0..d {
                    jac[j * d * d + k * d + i] = g[(k * n + j) * c + i];
                }
            }
        }
        (to_f64(a_first), jac)
    }

    /// `(a, ∂a/∂x)` by forward-mode tangents; `∂a/∂x` in physical state coordinates.
    fn net_jacobian_forward(&self, x: &[f64], eps: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, c, n) = (self.dim, self.dim + 1, eps.len());
        let h0 = tensor2_as(self.standardised(x, eps), n, c, &self.device, self.dtype);
        let tangents = (0..d)
            .map(|i| {
                let mut t = vec![0.0f64; n * c];
                for j in 0..n {
                    t[j * c + i] = 1.0 / self.norm.std[i];
                }
                tensor2_as(t, n, c, &self.device, self.dtype)
            })
            .collect();
        let (a, dots) = self.mlp.forward_tangents(h0, tangents);
        let mut jac = vec![0.0; n * d * d];
        for (i, dot) in dots.into_iter().enumerate() {
            let v = to_f64(dot);
            for j in 0..n {
                for k in 0..d {
                    jac[j * d * d + k * d + i] = v[j * d + k];
                }
            }
        }
        (to_f64(a), jac)
    }
}

/// A learned vector field `x' = F(x, eps)` with its Jacobian: everything rollouts and the spectral
/// evaluation need. Implemented by one trained network ([`LearnedRhs`]) and by the mean of several
/// (`eval::stacked::Ensemble`).
pub trait LearnedField {
    /// State dimension `d`.
    fn dim(&self) -> usize;

    /// The physical RHS at `n` points (`x`: `n × d`, one stiffness value per point).
    fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64>;

    /// Physical Jacobians at `n` points: `n` row-major `d × d` blocks.
    fn jacobian(&self, x: &[f64], eps: &[f64], mode: JacobianMode) -> Vec<f64>;

    /// RK4 rollouts of the learned RHS from every row of `x0` (`m × d`, stiffness `eps[i]` each), with
    /// step `dt` for `steps` steps. Returns `m × (steps + 1) × d`. All `m` trajectories advance together
    /// (one network evaluation per stage).
    fn rollout_rk4(&self, x0: &[f64], eps: &[f64], dt: f64, steps: usize) -> Vec<f64> {
        let (d, m) = (self.dim(), eps.len());
        let mut out = vec![0.0; m * (steps + 1) * d];
        let mut x = x0.to_vec();
        let put = |out: &mut [f64], s: usize, x: &[f64]| {
            for i in 0..m {
                let dst = (i * (steps + 1) + s) * d;
                out[dst..dst + d].copy_from_slice(&x[i * d..(i + 1) * d]);
            }
        };
        put(&mut out, 0, &x);
        let axpy = |x: &[f64], k: &[f64], h: f64| -> Vec<f64> { x.iter().zip(k).map(|(a, b)| a + h * b).collect() };
        for s in 1..=steps {
            let k1 = LearnedField::rhs(self, &x, eps);
            let k2 = LearnedField::rhs(self, &axpy(&x, &k1, 0.5 * dt), eps);
            let k3 = LearnedField::rhs(self, &axpy(&x, &k2, 0.5 * dt), eps);
            let k4 = LearnedField::rhs(self, &axpy(&x, &k3, dt), eps);
            for i in 0..x.len() {
                x[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
            put(&mut out, s, &x);
        }
        out
    }

    /// Implicit rollouts of the learned RHS: diffsol's BDF on `x' = F_θ(x, eps)` with the learned
    /// Jacobian (forward mode, with the transform's chain rule) for its Newton iterations, from every
    /// row of `x0` and sampled at `times`. Returns `m × times.len() × d` like
    /// [`rollout_rk4`](Self::rollout_rk4); a trajectory on which the solver fails (the learned field
    /// blows up) is NaN from the start, so that its rollout error is infinite rather than the run failing.
    fn rollout_bdf(&self, x0: &[f64], eps: &[f64], times: &[f64], rtol: f64, atol: f64) -> Vec<f64> {
        let d = self.dim();
        let mut out = Vec::with_capacity(eps.len() * times.len() * d);
        for (i, &e) in eps.iter().enumerate() {
            // The Jacobian of the last state asked for, reused for the d products J·e_k diffsol needs.
            let cache: std::cell::RefCell<(Vec<f64>, Vec<f64>)> = std::cell::RefCell::new((Vec::new(), Vec::new()));
            let r = crate::ode::integrate_at(
                d,
                &x0[i * d..(i + 1) * d],
                times,
                rtol,
                atol,
                crate::ode::Method::Bdf,
                &format!("eps = {e} (learned RHS)"),
                |x, y| y.copy_from_slice(&LearnedField::rhs(self, x, &[e])),
                |x, v, y| {
                    let mut c = cache.borrow_mut();
                    if c.0 != x {
                        *c = (x.to_vec(), LearnedField::jacobian(self, x, &[e], JacobianMode::Forward));
                    }
                    for (r, out) in y.iter_mut().enumerate() {
                        *out = (0..d).map(|k| c.1[r * d + k] * v[k]).sum();
                    }
                },
            );
            match r {
                Ok(v) if v.iter().all(|x| x.is_finite()) => out.extend(v),
                _ => out.extend(std::iter::repeat_n(f64::NAN, times.len() * d)),
            }
        }
        out
    }
}

impl LearnedField for LearnedRhs {
    fn dim(&self) -> usize {
        self.dim
    }

    fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        LearnedRhs::rhs(self, x, eps)
    }

    fn jacobian(&self, x: &[f64], eps: &[f64], mode: JacobianMode) -> Vec<f64> {
        LearnedRhs::jacobian(self, x, eps, mode)
    }
}

/// The projector onto `wᵀF = 0` for every invariant `w` (columns of `W`, `d × m`), `P = I - V(WᵀV)⁻¹Wᵀ`:
/// `P F` satisfies the invariants, `P J` has the `w` as exact left null vectors (exact zero eigenvalues),
/// and a field that already satisfies them is unchanged (`P F = F` when `WᵀF = 0`).
/// - `eliminate` empty: `V = W`, the orthogonal projection, which never moves `F_θ` further from a true
///   RHS: `‖P F_θ − F‖ = ‖P(F_θ − F)‖ ≤ ‖F_θ − F‖`;
/// - `eliminate = [i_1, …, i_m]`: `V = (e_{i_1}, …)`, the oblique projection that solves each invariant
///   for one state component (its derivative `F_{i_k}` is *replaced* by what the invariants say, e.g.
///   Robertson's `y1' = -y2' - y3'`) and leaves the others as learned.
///
/// Which to choose: the orthogonal projection adds `w_i (wᵀe)/‖w‖²` to every component, i.e. a share of
/// the learned errors `e` of *all* components, which swamps a component whose RHS is small next to the
/// others' — Robertson's `y3' = 3e7·y2²` (~1e-6 early on, beside `y1' ≈ −y2' ≈ −0.04`). The nonzero
/// eigenvalues of `P J` are those of the Jacobian reduced to the kept components, so with the oblique
/// projection they depend only on the kept rows *as learned*, each at its own relative accuracy. Eliminate
/// a component with a large RHS, never the small one: on Robertson eliminating `y1` or `y2` puts every
/// eigenvalue within 5 % at 54 % instead of 15 % of the points over t ≤ 1e-4, eliminating `y3` at 8 %
/// (README "Systems spanning decades").
///
/// `None` when there is no (nonzero, length-`d`) invariant. An `eliminate` of the wrong length or with a
/// singular `WᵀV` is an error naming `model.eliminate`: `Config::validate`
/// calls this too, so a bad config fails before training.
pub fn invariant_projector(d: usize, invariants: &[Vec<f64>], eliminate: &[usize]) -> Result<Option<DMatrix<f64>>> {
    let w: Vec<&Vec<f64>> = invariants.iter().filter(|w| w.len() == d && w.iter().any(|v| *v != 0.0)).collect();
    if w.is_empty() {
        return Ok(None);
    }
    let bad = |why: String| crate::error::Error::invalid("model.eliminate", format!("{eliminate:?}"), why);
    let wm = DMatrix::from_fn(d, w.len(), |i, k| w[k][i]);
    let vm = if eliminate.is_empty() {
        wm.clone()
    } else {
        if eliminate.len() != w.len() || eliminate.iter().any(|&i| i >= d) {
            return Err(bad(format!(
                "{} state indices in 0..{d}, one per invariant of the system (or [] for the orthogonal projection)",
                w.len()
            )));
        }
        DMatrix::from_fn(d, w.len(), |i, k| if eliminate[k] == i { 1.0 } else { 0.0 })
    };
    let Some(inv) = (wm.transpose() * &vm).try_inverse() else {
        return Err(bad("indices whose components the invariants can be solved for (WᵀV invertible)".into()));
    };
    Ok(Some(DMatrix::<f64>::identity(d, d) - &vm * inv * wm.transpose()))
}

/// `block ← P · block` for a row-major `d × cols` block (`cols = 1`: one vector; `cols = d`: a matrix).
fn left_multiply(p: &DMatrix<f64>, block: &mut [f64], cols: usize) {
    let d = p.nrows();
    let src = block.to_vec();
    for r in 0..d {
        for c in 0..cols {
            block[r * cols + c] = (0..d).map(|k| p[(r, k)] * src[k * cols + c]).sum();
        }
    }
}

/// Eigenvalues (sorted by decreasing modulus) of each `d × d` block of `jac`.
pub fn eigenvalues(jac: &[f64], d: usize) -> Vec<Vec<Complex<f64>>> {
    use rayon::prelude::*;
    jac.par_chunks(d * d).map(|b| eigenvalues_by_magnitude(&DMatrix::from_row_slice(d, d, b))).collect()
}
