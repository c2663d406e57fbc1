//! The `cloud` sampler (paper Alg. 3, [`CloudSampler`]): perturbed copies of a base sampler's
//! trajectory points along the tangent and the normal (2-D) or fast subspace (n-D) of the exact
//! system, with the spread scalings ([`NormalMode`]), the choice of directions ([`Directions`]) and
//! the fast eigenvector helpers ([`fast_subspace`], [`fast_eigenvectors`]).

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

use super::sampler::{Origin, SampleSet, Sampler, TrajectorySampler};

/// How the normal spread of the cloud is scaled (paper Alg. 3, `normal_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormalMode {
    /// `σ_N^eff = σ_N`.
    Abs,
    /// `σ_N^eff = σ_N · ‖F(x)‖`.
    Rel,
    /// `σ^eff = σ · ‖F(x)‖ / ρ(J(x))`: the displacement along which the fastest mode changes `F` by a
    /// fraction `σ` (`ρ` the spectral radius of the exact Jacobian). Scale-free: for species near 1e-8
    /// (Robertson late in time) the cloud stays on their scale, where `abs`/`rel` spreads would push
    /// them negative.
    Spectral,
    /// `σ^eff = σ · ‖F(x)‖ / |λ_slow(J(x))|`, `λ_slow` the smallest nonzero eigenvalue of the exact
    /// Jacobian (the system's exact zeros, one per linear invariant, left out): the displacement along
    /// which the *slowest* mode changes `F` by a fraction `σ`. Meant for tangent offsets
    /// (`tangent_mode`), which then probe the slow dynamics on its own scale — with the difference loss
    /// (`train.difference`), the learned Jacobian along the trajectory.
    SlowSpectral,
}

/// How the cloud's tangent and normal directions are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Directions {
    /// The paper: `t = F/(‖F‖ + 1e-12)` (the trajectory velocity), `n = (-t₂, t₁)` (2-D only).
    Velocity,
    /// CSP-style: `n` = unit fast right eigenvector of the exact Jacobian, `t` = unit slow one (2-D).
    FastEigen,
}

/// Paper Alg. 3: `k` perturbed copies of every trajectory point of the base sampler,
/// `floor(r_off·k)` of them pushed along the normal (`σ_T ξ_T t + σ_N^eff ξ_N n`), the rest along the
/// tangent only (`σ_T ξ_T t`). The base points are kept when `keep_base` (the paper's D_base ∪ D_cloud).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudSampler {
    /// The sampler whose trajectory points are perturbed.
    pub base: Box<dyn Sampler>,
    /// Cloud size `K` per base point.
    pub k: i64,
    /// Tangent spread `σ_T`.
    pub sigma_t: f64,
    /// Normal spread `σ_N`.
    pub sigma_n: f64,
    /// Off-manifold fraction `r_off` in [0, 1].
    pub r_off: f64,
    /// `abs`, `rel` or `spectral` normal spread.
    pub normal_mode: NormalMode,
    /// `abs` (paper), `rel` or `spectral` tangent spread (`σ_T^eff`, same rules as `normal_mode`).
    pub tangent_mode: NormalMode,
    /// `velocity` (paper) or `fast-eigen` directions.
    pub directions: Directions,
    /// Keep the base points in the dataset.
    pub keep_base: bool,
    /// Dimension of the fast subspace sampled by the normal perturbations of systems with d > 2
    /// (ignored in 2-D, where the normal is the paper's).
    pub fast_dim: i64,
    /// If > 0, caps the normal spread at this fraction of the distance from the point to the nearest
    /// coordinate plane along the normal, `min_i |x_i| / |n_i|`, so that concentrations stay positive and
    /// the cloud stays on the scale of the smallest species (Robertson's `y2` at 1e-6 early on, where
    /// `‖F‖/ρ` is 1e-3); the tangent spread likewise along the tangent. 0 (default): no cap.
    pub positivity: f64,
    /// With `positivity`: a floor under the distance to the coordinate planes, so that base points on
    /// (or next to) the boundary of the positive orthant still get a cloud. Most initial states of a
    /// kinetics problem have species at exactly zero (Robertson's `y2(0) = 0`), where the plain cap
    /// leaves no room at all and the learned Jacobian there is fitted from values alone. Component
    /// `c`'s distance `|x_c|` is floored at `z_c`, the `boundary_quantile` quantile of `|x_c|` over the
    /// base points where `x_c ≠ 0`; an offset that would then take a component across its plane (zero
    /// counts as the positive side) is flipped (`−δ`, the same direction), or, if that crosses a plane
    /// too, halved until it does not. 0 (default): no floor, zero components get no normal offsets.
    pub boundary_quantile: f64,
}

impl Default for CloudSampler {
    fn default() -> Self {
        Self {
            base: Box::new(TrajectorySampler::default()),
            k: 8,
            sigma_t: 0.02,
            sigma_n: 0.2,
            r_off: 0.5,
            normal_mode: NormalMode::Abs,
            tangent_mode: NormalMode::Abs,
            directions: Directions::Velocity,
            keep_base: true,
            fast_dim: 1,
            positivity: 0.0,
            boundary_quantile: 0.0,
        }
    }
}

impl CloudSampler {
    /// Unit tangent and normal at `x` (2-D).
    fn frame(&self, system: &dyn StiffSystem, x: &[f64], eps: f64) -> ([f64; 2], [f64; 2], f64) {
        let mut f = [0.0; 2];
        system.rhs(x, eps, &mut f);
        let fnorm = f[0].hypot(f[1]);
        match self.directions {
            Directions::Velocity => {
                let t = [f[0] / (fnorm + 1e-12), f[1] / (fnorm + 1e-12)];
                let nn = t[0].hypot(t[1]) + 1e-12;
                (t, [-t[1] / nn, t[0] / nn], fnorm)
            }
            Directions::FastEigen => {
                let j = system.jacobian(x, eps);
                let ev = crate::plugins::system::eigenvalues_by_magnitude(&j);
                let vec_for = |lam: f64| {
                    // (J - λI) v = 0 for a 2×2: v = (b, λ - a) or (λ - d, c), whichever is larger.
                    let (a, b, c, d) = (j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)]);
                    let v1 = [b, lam - a];
                    let v2 = [lam - d, c];
                    let v = if v1[0].hypot(v1[1]) >= v2[0].hypot(v2[1]) { v1 } else { v2 };
                    let n = v[0].hypot(v[1]);
                    if n > 0.0 { [v[0] / n, v[1] / n] } else { [1.0, 0.0] }
                };
                let n = vec_for(ev[0].re);
                let mut t = vec_for(ev[1].re);
                if (t[0] * n[0] + t[1] * n[1]).abs() > 1.0 - 1e-12 {
                    t = [-n[1], n[0]];
                }
                (t, n, fnorm)
            }
        }
    }
}

/// An orthonormal basis of the fast subspace of `j` made orthogonal to the unit vector `t`: the span
/// of the (real and imaginary parts of the) eigenvectors of the `m` eigenvalues of largest modulus —
/// the CSP fast subspace — with the component along `t` removed. Each eigenvector is the null vector of
/// `J − λI`, from its SVD. If the fast subspace lies along `t`, the basis is completed with coordinate
/// directions so that it is never empty (for d ≥ 2).
pub fn fast_subspace(j: &nalgebra::DMatrix<f64>, m: usize, t: &[f64]) -> Vec<Vec<f64>> {
    fast_subspace_with(j, &crate::plugins::system::eigenvalues_by_magnitude(j), m, t)
}

/// [`fast_subspace`] given the eigenvalues `ev` of `j`, sorted by decreasing modulus.
fn fast_subspace_with(j: &nalgebra::DMatrix<f64>, ev: &[nalgebra::Complex<f64>], m: usize, t: &[f64]) -> Vec<Vec<f64>> {
    let d = j.nrows();
    let mut raw = fast_eigenvectors(j, ev, m);
    raw.extend((0..d).map(|i| (0..d).map(|c| if c == i { 1.0 } else { 0.0 }).collect()));
    // At most d − 1 directions are orthogonal to t.
    let want = m.clamp(1, d.saturating_sub(1).max(1));
    // Gram–Schmidt against t, then against each other.
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for mut v in raw {
        for b in std::iter::once(t).chain(basis.iter().map(|b| b.as_slice())) {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-8 {
            basis.push(v.iter().map(|x| x / n).collect());
            if basis.len() == want {
                break;
            }
        }
    }
    basis
}

/// Real vectors spanning the invariant subspace of the `m` eigenvalues of `j` of largest modulus, given
/// its eigenvalues `ev` sorted by decreasing modulus ([`eigenvalues_by_magnitude`](crate::plugins::system::eigenvalues_by_magnitude)):
/// each eigenvector is the null vector of `J − λI` from its SVD; a complex eigenvector contributes its
/// real and imaginary parts. Not orthonormalised.
pub fn fast_eigenvectors(j: &nalgebra::DMatrix<f64>, ev: &[nalgebra::Complex<f64>], m: usize) -> Vec<Vec<f64>> {
    use nalgebra::{Complex, DMatrix};
    let d = j.nrows();
    let mut raw: Vec<Vec<f64>> = Vec::new();
    // A diverged rollout (or a system method that failed) gives NaN: no eigenvectors, rather than
    // the panic of nalgebra's SVD on a NaN singular value.
    if j.iter().any(|v| !v.is_finite()) {
        return raw;
    }
    for lam in ev.iter().take(m.clamp(1, d)).filter(|l| l.re.is_finite() && l.im.is_finite()) {
        let a: DMatrix<Complex<f64>> = DMatrix::from_fn(d, d, |r, c| {
            Complex::new(j[(r, c)], 0.0) - if r == c { *lam } else { Complex::new(0.0, 0.0) }
        });
        let svd = a.svd(false, true);
        let (Some(vt), sv) = (svd.v_t, svd.singular_values) else { continue };
        let k = (0..sv.len()).min_by(|&x, &y| sv[x].total_cmp(&sv[y])).unwrap_or(0);
        // Rows of V^H are conjugated right singular vectors.
        raw.push((0..d).map(|c| vt[(k, c)].re).collect());
        if lam.im != 0.0 {
            raw.push((0..d).map(|c| -vt[(k, c)].im).collect());
        }
    }
    raw
}

/// What [`CloudSampler::frame_nd`] returns: unit tangent, unit normal, `‖F‖`, and the exact Jacobian's
/// eigenvalues when they were computed on the way.
type Frame = (Vec<f64>, Vec<f64>, f64, Option<Vec<nalgebra::Complex<f64>>>);

impl CloudSampler {
    /// Unit tangent, unit normal, ‖F‖ and, when it was computed on the way, the eigenvalues of the
    /// exact Jacobian at `x`, in any dimension: the paper's 2-D frame, or for d > 2 `t = F/‖F‖` and `n` a
    /// random unit vector of the fast subspace orthogonal to `t` ([`fast_subspace`] with `fast_dim`
    /// eigenvalues).
    fn frame_nd(&self, system: &dyn StiffSystem, x: &[f64], eps: f64, rng: &mut StdRng) -> Frame {
        let d = system.dim();
        if d == 2 {
            let (t, n, f) = self.frame(system, x, eps);
            return (t.to_vec(), n.to_vec(), f, None);
        }
        let mut f = vec![0.0; d];
        system.rhs(x, eps, &mut f);
        let fnorm = f.iter().map(|v| v * v).sum::<f64>().sqrt();
        let t: Vec<f64> = if fnorm > 1e-300 {
            f.iter().map(|v| v / fnorm).collect()
        } else {
            (0..d).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect()
        };
        let j = system.jacobian(x, eps);
        let ev = crate::plugins::system::eigenvalues_by_magnitude(&j);
        let basis = fast_subspace_with(&j, &ev, self.fast_dim.max(1) as usize, &t);
        let mut n = vec![0.0; d];
        for b in &basis {
            let g: f64 = StandardNormal.sample(rng);
            n.iter_mut().zip(b).for_each(|(x, y)| *x += g * y);
        }
        let nn = n.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        n.iter_mut().for_each(|v| *v /= nn);
        (t, n, fnorm, Some(ev))
    }
}

/// Keeps `x + δ` in the closed orthant of `x` (a zero component counts as non-negative): `δ` as it is
/// if no component crosses its coordinate plane, else `−δ` (the same line through `x`), else `δ`
/// halved until none does (`sampler.boundary_quantile`).
fn keep_in_orthant(x: &[f64], delta: &mut [f64]) {
    let inside = |s: f64, delta: &[f64]| {
        x.iter().zip(delta).all(|(x, d)| if *x < 0.0 { x + s * d <= 0.0 } else { x + s * d >= 0.0 })
    };
    if inside(1.0, delta) {
        return;
    }
    let s = if inside(-1.0, delta) {
        -1.0
    } else {
        let mut s = 0.5;
        while s > 1e-12 && !inside(s, delta) {
            s *= 0.5;
        }
        if inside(s, delta) { s } else { 0.0 }
    };
    delta.iter_mut().for_each(|d| *d *= s);
}

#[typetag::serde(name = "cloud")]
impl Sampler for CloudSampler {
    fn validate(&self) -> Result<()> {
        self.base.validate().map_err(|e| e.moved("sampler.", "sampler.base."))?;
        if self.k < 0 {
            return Err(Error::invalid("sampler.k", self.k, "an integer >= 0 (cloud size per base point)"));
        }
        Error::non_negative("sampler.sigma_t", self.sigma_t)?;
        Error::non_negative("sampler.sigma_n", self.sigma_n)?;
        if !(0.0..=1.0).contains(&self.r_off) {
            return Err(Error::invalid("sampler.r_off", self.r_off, "a number in [0, 1]"));
        }
        Error::non_negative("sampler.positivity", self.positivity)?;
        if !(0.0..1.0).contains(&self.boundary_quantile) {
            return Err(Error::invalid(
                "sampler.boundary_quantile",
                self.boundary_quantile,
                "a number in [0, 1) (0: no floor under the distance to the coordinate planes)",
            ));
        }
        if self.boundary_quantile > 0.0 && self.positivity == 0.0 {
            return Err(Error::invalid(
                "sampler.boundary_quantile",
                self.boundary_quantile,
                "0 unless sampler.positivity > 0 (the floor is under the positivity cap's distances)",
            ));
        }
        Error::at_least_one("sampler.fast_dim", self.fast_dim)?;
        Ok(())
    }

    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], rng: &mut StdRng) -> Result<SampleSet> {
        self.validate()?;
        let d = system.dim();
        if d < 2 {
            return Err(Error::Unsupported("the cloud sampler needs a system of dimension >= 2".into()));
        }
        if d > 2 && self.directions == Directions::FastEigen {
            return Err(Error::invalid(
                "sampler.directions",
                "fast-eigen",
                "velocity for systems with d > 2 (the normal then samples the fast subspace, `fast_dim`)",
            ));
        }
        let base = self.base.sample(system, eps_grid, rng).map_err(|e| e.moved("sampler.", "sampler.base."))?;
        let k = self.k as usize;
        let k_off = (self.r_off * k as f64).floor() as usize;
        let mut set = SampleSet { dim: d, trajectories: base.trajectories.clone(), ..Default::default() };
        if self.keep_base {
            set.x.clone_from(&base.x);
            set.eps.clone_from(&base.eps);
            set.origin.clone_from(&base.origin);
        }
        // Exact zero eigenvalues (one per linear invariant), left out of `slow-spectral` spreads.
        let zeros = system.invariants().len();
        // `validate` guarantees `positivity > 0` whenever the floor is on.
        let boundary = self.boundary_quantile > 0.0;
        let floor: Vec<f64> = (0..d)
            .map(|c| {
                if !boundary {
                    return 0.0;
                }
                let v = (0..base.len()).map(|i| base.state(i)[c].abs()).filter(|v| *v > 0.0).collect();
                crate::stats::quantile(v, self.boundary_quantile).unwrap_or(0.0)
            })
            .collect();
        for i in 0..base.len() {
            let Origin::Trajectory { traj, index } = base.origin[i] else {
                continue;
            };
            let x = base.state(i);
            let eps = base.eps[i];
            let (t, n, fnorm, eigenvalues) = self.frame_nd(system, x, eps, rng);
            let modes = [self.normal_mode, self.tangent_mode];
            let ev = if modes.iter().any(|m| matches!(m, NormalMode::Spectral | NormalMode::SlowSpectral)) {
                eigenvalues
                    .unwrap_or_else(|| crate::plugins::system::eigenvalues_by_magnitude(&system.jacobian(x, eps)))
            } else {
                Vec::new()
            };
            let rho = ev.first().map_or(1.0, |l| l.norm().max(1e-300));
            let slow = if ev.is_empty() {
                1.0
            } else {
                ev[crate::eval::metrics::nonzero_count(&ev, zeros) - 1].norm().max(1e-300)
            };
            let spread = |mode: NormalMode, sigma: f64| match mode {
                NormalMode::Abs => sigma,
                NormalMode::Rel => sigma * fnorm,
                NormalMode::Spectral => sigma * fnorm / rho,
                NormalMode::SlowSpectral => sigma * fnorm / slow,
            };
            let (mut st, mut sn) = (spread(self.tangent_mode, self.sigma_t), spread(self.normal_mode, self.sigma_n));
            if self.positivity > 0.0 {
                let room = |v: &[f64]| {
                    (0..d)
                        .filter(|&c| v[c] != 0.0)
                        .map(|c| x[c].abs().max(floor[c]) / v[c].abs())
                        .fold(f64::INFINITY, f64::min)
                };
                sn = sn.min(self.positivity * room(&n));
                st = st.min(self.positivity * room(&t));
            }
            for j in 0..k {
                let off = j >= k - k_off;
                let xt: f64 = StandardNormal.sample(rng);
                let xn: f64 = if off { StandardNormal.sample(rng) } else { 0.0 };
                let mut delta: Vec<f64> = (0..d).map(|c| st * xt * t[c] + sn * xn * n[c]).collect();
                if boundary {
                    keep_in_orthant(x, &mut delta);
                }
                let p: Vec<f64> = (0..d).map(|c| x[c] + delta[c]).collect();
                set.push(&p, eps, Origin::Cloud { off, traj, index });
            }
        }
        Ok(set)
    }

    fn describe(&self) -> String {
        format!(
            "cloud around [{}]: K = {}, sigma_T = {}{}, sigma_N = {} ({:?}), r_off = {}, directions {:?}{}",
            self.base.describe(),
            self.k,
            self.sigma_t,
            if self.tangent_mode == NormalMode::Abs { String::new() } else { format!(" ({:?})", self.tangent_mode) },
            self.sigma_n,
            self.normal_mode,
            self.r_off,
            self.directions,
            if self.boundary_quantile > 0.0 {
                format!(", boundary floor at the {} quantile", self.boundary_quantile)
            } else {
                String::new()
            }
        )
    }

    fn keeps_trajectory_points(&self) -> bool {
        self.keep_base && self.base.keeps_trajectory_points()
    }

    fn validate_for(&self, system: &dyn StiffSystem) -> Result<()> {
        self.base.validate_for(system).map_err(|e| e.moved("sampler.", "sampler.base."))
    }

    /// The base's file, when it reads one (a cloud around a `data` sampler).
    fn data_file(&self) -> Option<(String, Option<f64>)> {
        self.base.data_file()
    }

    /// The base's: a cloud around a file's trajectories changes when the file does.
    fn fingerprint(&self) -> String {
        self.base.fingerprint()
    }

    /// Always: the cloud's directions come from the system's RHS or Jacobian.
    fn uses_rhs(&self) -> bool {
        true
    }

    fn expected_len(&self, n_eps: usize) -> Option<usize> {
        // K points around each of the base's trajectory points (not around its cloud points, when it
        // holds a cloud of its own), plus the base's samples when kept.
        let around = self.base.expected_trajectory_points(n_eps)?.saturating_mul(self.k.max(0) as usize);
        let kept = if self.keep_base { self.base.expected_len(n_eps)? } else { 0 };
        Some(around.saturating_add(kept))
    }

    fn expected_trajectory_points(&self, n_eps: usize) -> Option<usize> {
        if self.keep_base { self.base.expected_trajectory_points(n_eps) } else { Some(0) }
    }
}

#[cfg(test)]
mod tests {
    use super::{fast_eigenvectors, keep_in_orthant};
    use nalgebra::{Complex, DMatrix};

    /// The fast eigenvector of a 2×2 Jacobian is its null vector of `J − λI`; a Jacobian or eigenvalue
    /// with NaN (a diverged rollout) gives no vector instead of a panic in the SVD.
    #[test]
    fn fast_eigenvectors_are_null_vectors_and_nan_gives_none() {
        let j = DMatrix::from_row_slice(2, 2, &[-1.0, 0.0, 4.0, -10.0]);
        let v = fast_eigenvectors(&j, &[Complex::new(-10.0, 0.0), Complex::new(-1.0, 0.0)], 1);
        assert_eq!(v.len(), 1);
        assert!(v[0][0].abs() < 1e-14 && (v[0][1].abs() - 1.0).abs() < 1e-14, "{v:?}");
        let nan = DMatrix::from_row_slice(2, 2, &[f64::NAN, 0.0, 4.0, -10.0]);
        assert!(fast_eigenvectors(&nan, &[Complex::new(-10.0, 0.0)], 1).is_empty());
        assert!(fast_eigenvectors(&j, &[Complex::new(f64::NAN, 0.0)], 1).is_empty());
    }

    /// An offset that stays in the orthant is kept, one that crosses a plane is flipped, one that crosses
    /// either way is halved until it does not; a negative component stays non-positive.
    #[test]
    fn offsets_are_kept_flipped_or_shortened_into_the_orthant() {
        let cases: [([f64; 2], [f64; 2], [f64; 2]); 4] = [
            ([1.0, 0.5], [0.1, -0.2], [0.1, -0.2]),
            ([1.0, 0.0], [0.1, -0.2], [-0.1, 0.2]),
            ([0.1, 0.1], [-0.3, 0.3], [-0.075, 0.075]),
            ([-0.2, 1.0], [0.5, 0.0], [-0.5, 0.0]),
        ];
        for (x, delta, want) in cases {
            let mut d = delta;
            keep_in_orthant(&x, &mut d);
            assert_eq!(d, want, "x = {x:?}, δ = {delta:?}");
        }
    }
}
