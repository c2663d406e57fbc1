//! Rollout errors of one trajectory: eq. 17 ([`rollout_l2`]), the per-species relative error
//! ([`rollout_rel`]) and, for oscillators, the relative error of the oscillation period
//! ([`period_rel`], from [`upward_crossings`] and [`oscillation_period`]).

/// A rollout that leaves the reference's scale by more than this factor — some learned state larger
/// in magnitude than `DIVERGED_SCALE ×` the largest magnitude of any species along the reference — or
/// that is not finite, has diverged: the learned field blew up along it. Its errors are reported as
/// `inf` ([`diverged`]), so that tables count it as diverged and figures leave it off their axes
/// instead of averaging 1e87 as a measurement. (A poor but bounded rollout stays a number.)
pub const DIVERGED_SCALE: f64 = 1e3;

/// Whether the learned rollout `a` has diverged from the reference `b` ([`DIVERGED_SCALE`]).
pub fn diverged(a: &[f64], b: &[f64]) -> bool {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().any(|v| v.is_nan() || v.abs() > DIVERGED_SCALE * scale)
}

/// Eq. 17 for one trajectory: `a`, `b` are `(N+1) × d` row-major.
pub fn rollout_l2(a: &[f64], b: &[f64], d: usize) -> f64 {
    let n = a.len() / d;
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (s / n as f64).sqrt()
}

/// Relative rollout error of one trajectory: `max_{i,j} |x_θ,i(t_j) - x*_i(t_j)| / max_j |x*_i(t_j)|`,
/// each species' error relative to its own range along the reference (`b`), so that a species that
/// stays near 1e-5 (Robertson's `y2`) counts as much as one of order 1. `a`, `b`: `(N+1) × d`.
pub fn rollout_rel(a: &[f64], b: &[f64], d: usize) -> f64 {
    (0..d)
        .map(|i| {
            let range = b.iter().skip(i).step_by(d).fold(0.0f64, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .skip(i)
                .step_by(d)
                .zip(b.iter().skip(i).step_by(d))
                .fold(0.0f64, |m, (x, y)| if (x - y).is_nan() { f64::INFINITY } else { m.max((x - y).abs()) });
            if range > 0.0 { err / range } else { err }
        })
        .fold(0.0, f64::max)
}

/// Times at which component `k` of a trajectory (`(N+1) × d`, at `times`) crosses `level` upwards,
/// linearly interpolated between samples. A crossing counts only after the component has been more than
/// `hysteresis` below `level` since the previous one, so that a trajectory lingering at the level is
/// not counted many times. Stops at the first non-finite sample (a diverged rollout) or the end of
/// `traj`, whichever comes first.
pub fn upward_crossings(traj: &[f64], times: &[f64], d: usize, k: usize, level: f64, hysteresis: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut armed = false;
    for j in 0..times.len().min(traj.len() / d) {
        let v = traj[j * d + k];
        if !v.is_finite() {
            break;
        }
        if v < level - hysteresis {
            armed = true;
        } else if armed && v >= level {
            // Armed means the previous sample was below the level (it disarms at the first sample at or
            // above it), so `u < level <= v` and the interpolation weight lies in (0, 1].
            let u = traj[(j - 1) * d + k];
            out.push(times[j - 1] + (level - u) / (v - u) * (times[j] - times[j - 1]));
            armed = false;
        }
    }
    out
}

/// The period of an oscillation from its upward [crossings](upward_crossings): the mean spacing of the
/// crossings after the first one (`(c_{n-1} - c_1)/(n - 2)`; the first cycle may still be a transient
/// from the initial state), or `None` with fewer than 3 crossings (less than one full cycle after the
/// first).
pub fn oscillation_period(crossings: &[f64]) -> Option<f64> {
    let n = crossings.len();
    (n >= 3).then(|| (crossings[n - 1] - crossings[1]) / (n - 2) as f64)
}

/// Relative period error of a learned rollout `a` against its reference `b` (`(N+1) × d` at `times`),
/// for a system that oscillates: a relaxation oscillation whose learned period is off by a fraction δ
/// drifts by δ·t in phase, and once the drift exceeds a jump's width the pointwise [`rollout_rel`] is
/// O(1) whatever the fit — the period is then the measure of whether the learned oscillator is right.
///
/// For each component `k` that varies along the reference (range above 1e-8 of its magnitude), the
/// level is the midpoint of the reference's range of `x_k`, with a hysteresis of 10 % of the range. The
/// component oscillates when the reference crosses it upwards at least 4 times (two full cycles after
/// the first crossing, which may be a transient); its period `T*_k` is then
/// [`oscillation_period`]. The learned rollout's period `T_k` comes from its own crossings of the same
/// level, and the error is `|T_k/T*_k - 1|` — or infinite when the learned rollout has stopped
/// oscillating: fewer than 3 crossings, or none in the last `1.5·max(T_k, T*_k)` of the horizon (it
/// decayed to a fixed point, or diverged: a rollout that turns non-finite ends its crossings there).
/// One cycle less within the horizon (a learned period slightly longer) still leaves 3 crossings, so
/// the error does not jump there. Returns the largest error over the oscillating components, or `None`
/// when no component oscillates (a relaxing system, or a horizon too short for the reference's cycles).
///
/// # Panics
/// If `a`, `b` and `times` do not hold the same `(N+1) × d` samples.
pub fn period_rel(a: &[f64], b: &[f64], times: &[f64], d: usize) -> Option<f64> {
    assert!(
        a.len() == b.len() && b.len() == times.len() * d,
        "period_rel: {} / {} samples at {} times × {d}",
        a.len(),
        b.len(),
        times.len()
    );
    let t_end = *times.last()?;
    let mut worst: Option<f64> = None;
    for k in 0..d {
        let (lo, hi) =
            b.iter().skip(k).step_by(d).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        if hi - lo <= 1e-8 * lo.abs().max(hi.abs()) {
            continue;
        }
        let (level, hyst) = (0.5 * (lo + hi), 0.1 * (hi - lo));
        let reference = upward_crossings(b, times, d, k, level, hyst);
        if reference.len() < 4 {
            continue;
        }
        let t_ref = oscillation_period(&reference).expect("4 crossings");
        let learned = upward_crossings(a, times, d, k, level, hyst);
        let err = match (oscillation_period(&learned), learned.last()) {
            (Some(t), Some(&last)) if t_end - last <= 1.5 * t.max(t_ref) => (t / t_ref - 1.0).abs(),
            _ => f64::INFINITY,
        };
        worst = Some(worst.map_or(err, |w| w.max(err)));
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_far_beyond_the_reference_range_is_diverged() {
        let reference = [1.0, 2.0, 1.5, 2.5];
        assert!(!diverged(&[1.1, 2.0, 1.6, 2.4], &reference));
        // Poor (40× the range) but bounded: a number.
        assert!(!diverged(&[1.0, 100.0, 1.6, 2.4], &reference));
        assert!(diverged(&[1.0, 2.0, 3.1e87, 2.4], &reference));
        assert!(diverged(&[1.0, 2.0, f64::NAN, 2.4], &reference));
        assert!(!diverged(&[2.5e3], &reference) && diverged(&[-2.6e3], &reference));
    }

    #[test]
    fn rollout_l2_is_rms_of_pointwise_norms() {
        let a = [0.0, 0.0, 1.0, 1.0];
        let b = [0.0, 0.0, 0.0, 0.0];
        assert!((rollout_l2(&a, &b, 2) - (2.0f64 / 2.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn rollout_rel_weighs_each_species_by_its_range() {
        // Two points of a 2-D state: species 2 is tiny, its error dominates once made relative.
        let reference = [1.0, 1e-5, 0.5, 2e-5];
        let learned = [1.01, 1e-5, 0.5, 2.2e-5];
        let r = rollout_rel(&learned, &reference, 2);
        assert!((r - 0.1).abs() < 1e-9, "{r}");
        assert!(rollout_rel(&[f64::NAN, 0.0, 0.0, 0.0], &reference, 2).is_infinite());
    }

    /// `(N+1) × 2` samples of `(sin(2πt/T)·damp(t), e^{-t})` on `[0, 21.99]`, dt = 0.01.
    fn wave_with(period: f64, damp: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let times: Vec<f64> = (0..2200).map(|j| j as f64 * 0.01).collect();
        let x =
            times.iter().flat_map(|&t| [(std::f64::consts::TAU * t / period).sin() * damp(t), (-t).exp()]).collect();
        (times, x)
    }

    fn wave(period: f64) -> (Vec<f64>, Vec<f64>) {
        wave_with(period, |_| 1.0)
    }

    #[test]
    fn upward_crossings_are_interpolated_and_debounced() {
        let (times, x) = wave(4.0);
        // sin crosses 0 upwards at t = 4, 8, 12, 16, 20 (t = 0 starts *at* the level: not armed yet).
        let c = upward_crossings(&x, &times, 2, 0, 0.0, 0.1);
        assert_eq!(c.len(), 5, "{c:?}");
        for (i, t) in c.iter().enumerate() {
            assert!((t - 4.0 * (i + 1) as f64).abs() < 1e-4, "{c:?}");
        }
        let p = oscillation_period(&c).unwrap();
        assert!((p - 4.0).abs() < 1e-4, "{p}");
        // A signal that wiggles around the level by less than the hysteresis counts once.
        let wiggle = [-1.0, 0.01, -0.01, 0.01, -0.01, 0.01, -1.0, 1.0];
        let t: Vec<f64> = (0..wiggle.len()).map(|j| j as f64).collect();
        assert_eq!(upward_crossings(&wiggle, &t, 1, 0, 0.0, 0.1), vec![1.0 / 1.01, 6.5]);
        // A non-finite sample ends the crossings; so does the end of a short trajectory.
        assert_eq!(
            upward_crossings(&[-1.0, 1.0, f64::NAN, -1.0, 1.0], &[0.0, 1.0, 2.0, 3.0, 4.0], 1, 0, 0.0, 0.1),
            vec![0.5]
        );
        assert_eq!(upward_crossings(&[-1.0, 1.0], &[0.0, 1.0, 2.0], 1, 0, 0.0, 0.1), vec![0.5]);
        assert_eq!(oscillation_period(&[1.0, 2.0]), None);
    }

    #[test]
    fn period_rel_compares_the_learned_and_reference_periods() {
        let (times, reference) = wave(4.0);
        let (_, learned) = wave(4.1);
        let r = period_rel(&learned, &reference, &times, 2).unwrap();
        // The learned wave's crossings sit on its own 4.1 grid (interpolation error ~1e-5).
        assert!((r - 0.025).abs() < 1e-4, "{r}");
        assert!(period_rel(&reference, &reference, &times, 2).unwrap() < 1e-12);
        // A learned period long enough for one cycle less in the horizon (3 crossings: 5.5, 11, 16.5)
        // is still measured, not infinite.
        let r = period_rel(&wave(5.5).1, &reference, &times, 2).unwrap();
        assert!((r - 0.375).abs() < 1e-4, "{r}");
        // A learned rollout that stops oscillating: infinite error, whether it never starts or dies out
        // after three cycles (crossings at 4, 8, 12, then none in the last 1.5 periods).
        let flat: Vec<f64> = times.iter().flat_map(|_| [0.5, 0.0]).collect();
        assert!(period_rel(&flat, &reference, &times, 2).unwrap().is_infinite());
        let dying = wave_with(4.0, |t| if t < 13.0 { 1.0 } else { (-5.0 * (t - 13.0)).exp() }).1;
        assert!(period_rel(&dying, &reference, &times, 2).unwrap().is_infinite());
        // No period: a relaxing reference, and one that only varies by round-off.
        let relaxing: Vec<f64> = reference.iter().skip(1).step_by(2).flat_map(|&v| [v, v]).collect();
        assert_eq!(period_rel(&learned, &relaxing, &times, 2), None);
        let still: Vec<f64> = reference.iter().step_by(2).map(|v| 1.0 + 1e-12 * v).collect();
        assert_eq!(period_rel(&still, &still, &times, 1), None);
    }

    #[test]
    #[should_panic(expected = "period_rel")]
    fn period_rel_rejects_trajectories_of_different_lengths() {
        let (times, reference) = wave(4.0);
        period_rel(&reference[..10], &reference, &times, 2);
    }
}
