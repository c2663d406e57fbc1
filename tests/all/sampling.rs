use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::plugins::cloud::{CloudSampler, Directions, NormalMode};
use stiffx::plugins::sampler::{Origin, Sampler, TrajectorySampler};
use stiffx::plugins::system::StiffSystem;

fn ds() -> Box<dyn StiffSystem> {
    stiffx::plugins::registry::system("davis-skodje").unwrap()
}

/// Robertson's BDF trajectories, `points` log-spaced times from `t_first` to `horizon`.
fn robertson_log_base(per_eps: i64, t_first: f64, horizon: f64, points: i64) -> TrajectorySampler {
    use stiffx::ode::{Method, Spacing};
    TrajectorySampler {
        per_eps,
        horizon,
        spacing: Spacing::Log,
        t_first,
        points,
        method: Method::Bdf,
        rtol: 1e-8,
        atol: 1e-16,
        ..Default::default()
    }
}

#[test]
fn trajectories_follow_the_exact_solution() {
    // y(t) = y0 e^{-t} exactly; the sampler's stored trajectories must match it to the tolerance.
    let s = TrajectorySampler { per_eps: 3, horizon: 2.0, dt: 0.1, ..Default::default() };
    let set = s.sample(ds().as_ref(), &[0.01, 0.3], &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(set.trajectories.len(), 6);
    assert_eq!(set.len(), 6 * 21);
    for tr in &set.trajectories {
        let y0 = tr.states[0];
        for (i, x) in tr.states.chunks(2).enumerate() {
            let exact = y0 * (-(i as f64) * 0.1).exp();
            assert!((x[0] - exact).abs() < 1e-8, "y({}) = {} vs {}", i as f64 * 0.1, x[0], exact);
        }
        // After 10 fast time scales z sits within O(eps) of h(y).
        let last = &tr.states[tr.states.len() - 2..];
        assert!((last[1] - last[0] / (1.0 + last[0])).abs() < 2.0 * tr.eps);
    }
}

#[test]
fn cloud_fractions_and_spreads_match_the_parameters() {
    let base = TrajectorySampler { per_eps: 4, horizon: 3.0, dt: 0.01, ..Default::default() };
    let cloud = CloudSampler {
        base: Box::new(base.clone()),
        k: 10,
        sigma_t: 0.02,
        sigma_n: 0.2,
        r_off: 0.3,
        normal_mode: NormalMode::Abs,
        tangent_mode: NormalMode::Abs,
        directions: Directions::Velocity,
        keep_base: false,
        fast_dim: 1,
        positivity: 0.0,
        boundary_quantile: 0.0,
    };
    let sys = ds();
    let set = cloud.sample(sys.as_ref(), &[0.05], &mut StdRng::seed_from_u64(11)).unwrap();
    let base_set = base.sample(sys.as_ref(), &[0.05], &mut StdRng::seed_from_u64(11)).unwrap();
    assert_eq!(set.len(), base_set.len() * 10);
    let off = set.origin.iter().filter(|o| matches!(o, Origin::Cloud { off: true, .. })).count();
    assert_eq!(off, base_set.len() * 3, "floor(r_off K) = 3 off-manifold points per base point");
    // Recover the offsets in each base point's (t, n) frame.
    let (mut t2, mut n2_off, mut n2_on, mut n_t, mut n_off, mut n_on) = (0.0, 0.0, 0.0, 0usize, 0usize, 0usize);
    for (b, chunk) in set.x.chunks(20).enumerate() {
        let x = base_set.state(b);
        let mut f = [0.0; 2];
        sys.rhs(x, 0.05, &mut f);
        let nf = f[0].hypot(f[1]);
        let t = [f[0] / nf, f[1] / nf];
        let n = [-t[1], t[0]];
        for (j, p) in chunk.chunks(2).enumerate() {
            let dx = [p[0] - x[0], p[1] - x[1]];
            let (ct, cn) = (dx[0] * t[0] + dx[1] * t[1], dx[0] * n[0] + dx[1] * n[1]);
            t2 += ct * ct;
            n_t += 1;
            if j >= 7 {
                n2_off += cn * cn;
                n_off += 1;
            } else {
                n2_on += cn * cn;
                n_on += 1;
            }
        }
    }
    let st = (t2 / n_t as f64).sqrt();
    let sn = (n2_off / n_off as f64).sqrt();
    assert!((st / 0.02 - 1.0).abs() < 0.05, "tangent spread {st}");
    assert!((sn / 0.2 - 1.0).abs() < 0.05, "normal spread {sn}");
    assert!((n2_on / n_on as f64).sqrt() < 1e-9, "on-manifold points have no normal offset");
}

#[test]
fn sampling_is_seeded() {
    let c = CloudSampler {
        base: Box::new(TrajectorySampler { per_eps: 2, horizon: 1.0, dt: 0.1, ..Default::default() }),
        ..Default::default()
    };
    let a = c.sample(ds().as_ref(), &[0.02, 0.1], &mut StdRng::seed_from_u64(5)).unwrap();
    let b = c.sample(ds().as_ref(), &[0.02, 0.1], &mut StdRng::seed_from_u64(5)).unwrap();
    let d = c.sample(ds().as_ref(), &[0.02, 0.1], &mut StdRng::seed_from_u64(6)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.x, d.x);
}

#[test]
fn fast_eigen_directions_push_along_the_fast_eigenvector() {
    // Davis–Skodje: J = [[-1, 0], [h'(y)/eps, -1/eps]]; the fast eigenvector (of -1/eps) is (0, 1),
    // so off-manifold offsets along n change z only, and tangent offsets follow the slow eigenvector
    // (1 - eps, h'(y)) up to normalisation.
    let base = TrajectorySampler { per_eps: 1, horizon: 1.0, dt: 0.1, ..Default::default() };
    let cloud = CloudSampler {
        base: Box::new(base.clone()),
        k: 4,
        sigma_t: 0.0,
        sigma_n: 0.3,
        r_off: 1.0,
        directions: Directions::FastEigen,
        keep_base: false,
        ..Default::default()
    };
    let sys = ds();
    let set = cloud.sample(sys.as_ref(), &[0.02], &mut StdRng::seed_from_u64(4)).unwrap();
    let b = base.sample(sys.as_ref(), &[0.02], &mut StdRng::seed_from_u64(4)).unwrap();
    let mut moved = 0.0;
    for (i, chunk) in set.x.chunks(8).enumerate() {
        let x = b.state(i);
        for p in chunk.chunks(2) {
            assert!((p[0] - x[0]).abs() < 1e-12, "y unchanged by a fast-direction offset");
            moved += (p[1] - x[1]).abs();
        }
    }
    assert!(moved > 0.1);
}

/// Robertson: log-spaced BDF trajectories, and a `spectral` cloud whose normal offsets are scaled by
/// ‖F‖/ρ(J) (so they stay on the scale of the 1e-8 intermediate) and keep the mass (they lie in the fast
/// subspace, orthogonal to the invariant (1, 1, 1)).
#[test]
fn spectral_cloud_on_log_spaced_robertson_trajectories() {
    use stiffx::ode::{Method, Spacing};
    let sys = stiffx::plugins::registry::system("robertson").unwrap();
    let base = TrajectorySampler {
        per_eps: 2,
        horizon: 1e5,
        spacing: Spacing::Log,
        t_first: 1e-5,
        points: 60,
        method: Method::Bdf,
        rtol: 1e-8,
        atol: 1e-16,
        ..Default::default()
    };
    let cloud = CloudSampler {
        base: Box::new(base.clone()),
        k: 8,
        sigma_t: 0.0,
        sigma_n: 1.0,
        r_off: 1.0,
        normal_mode: NormalMode::Spectral,
        keep_base: false,
        ..Default::default()
    };
    let set = cloud.sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(3)).unwrap();
    let b = base.sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(3)).unwrap();
    let times = &b.trajectories[0].times;
    assert_eq!(times.len(), 61);
    assert_eq!(times[0], 0.0);
    assert!((times[1] - 1e-5).abs() < 1e-18 && times[60] == 1e5);
    assert!((times[31] / times[30] - times[2] / times[1]).abs() < 1e-9, "geometric spacing");
    let (mut sum2, mut n) = (0.0, 0usize);
    for i in 0..b.len() {
        let x = b.state(i);
        if x[1] == 0.0 {
            // t = 0: the only nonzero mode (rate k1) is the velocity itself, so the fast subspace
            // orthogonal to it is empty and the sampler falls back to coordinate directions.
            continue;
        }
        let mut f = [0.0; 3];
        sys.rhs(x, 1.0, &mut f);
        let fnorm = f.iter().map(|v| v * v).sum::<f64>().sqrt();
        let rho = sys.reference_eigenvalues(x, 1.0)[0].norm();
        for j in 0..8 {
            let p = set.state(i * 8 + j);
            let off: Vec<f64> = (0..3).map(|c| p[c] - x[c]).collect();
            let norm = off.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                off.iter().sum::<f64>().abs() < 1e-6 * norm + 1e-15,
                "mass kept (up to rounding of p - x): {off:?}"
            );
            sum2 += (norm / (fnorm / rho)).powi(2);
            n += 1;
        }
    }
    let rms = (sum2 / n as f64).sqrt();
    assert!((rms - 1.0).abs() < 0.1, "normal spread / (‖F‖/ρ) = {rms}");
}

/// `tangent_mode = "slow-spectral"`: tangent-only offsets along `F/‖F‖` of RMS `σ_T ‖F‖/|λ_slow|`
/// (Robertson's conservation zero left out of `λ_slow`), capped by `positivity` along the tangent.
#[test]
fn slow_spectral_tangent_offsets_follow_the_slowest_mode() {
    let sys = stiffx::plugins::registry::system("robertson").unwrap();
    let base = robertson_log_base(2, 1e-5, 1e5, 40);
    let cloud = |positivity: f64| CloudSampler {
        base: Box::new(base.clone()),
        k: 8,
        sigma_t: 0.05,
        sigma_n: 0.0,
        r_off: 0.0,
        tangent_mode: NormalMode::SlowSpectral,
        positivity,
        keep_base: false,
        ..Default::default()
    };
    let b = base.sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(3)).unwrap();
    for positivity in [0.0, 0.3] {
        let set = cloud(positivity).sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(3)).unwrap();
        let (mut sum2, mut n, mut capped) = (0.0, 0usize, 0usize);
        for i in 0..b.len() {
            let x = b.state(i);
            let mut f = [0.0; 3];
            sys.rhs(x, 1.0, &mut f);
            let fnorm = f.iter().map(|v| v * v).sum::<f64>().sqrt();
            let ev = sys.reference_eigenvalues(x, 1.0);
            let slow = ev[stiffx::eval::metrics::nonzero_count(&ev, 1) - 1].norm();
            let t: Vec<f64> = f.iter().map(|v| v / fnorm).collect();
            let room = (0..3).filter(|&c| t[c] != 0.0).map(|c| x[c].abs() / t[c].abs()).fold(f64::INFINITY, f64::min);
            let spread = 0.05 * fnorm / slow;
            let cap = positivity > 0.0 && positivity * room < spread;
            let spread = if positivity > 0.0 { spread.min(positivity * room) } else { spread };
            if spread == 0.0 {
                // y2 = 0 at t = 0 and the velocity raises y2: no room along the tangent.
                continue;
            }
            for j in 0..8 {
                let p = set.state(i * 8 + j);
                let off: Vec<f64> = (0..3).map(|c| p[c] - x[c]).collect();
                let along: f64 = off.iter().zip(&t).map(|(a, b)| a * b).sum();
                let across = off.iter().zip(&t).map(|(a, b)| (a - along * b).powi(2)).sum::<f64>().sqrt();
                assert!(across <= 1e-9 * along.abs() + 1e-15, "tangent only: {off:?} vs {t:?}");
                if positivity > 0.0 {
                    assert!(p.iter().all(|v| *v >= 0.0) || x.contains(&0.0), "positive: {p:?}");
                }
                sum2 += (along / spread).powi(2);
                n += 1;
                capped += cap as usize;
            }
        }
        let rms = (sum2 / n as f64).sqrt();
        assert!((rms - 1.0).abs() < 0.1, "positivity {positivity}: tangent spread / (σ_T ‖F‖/|λ_slow|) = {rms}");
        if positivity > 0.0 {
            assert!(capped > 0, "the cap binds somewhere on Robertson's transients");
        }
    }
}

/// `boundary_quantile`: base points with a species at exactly zero (Robertson's initial states, y2 = 0)
/// get no normal offsets under the plain positivity cap, and a one-sided cloud in the closed positive
/// orthant with the floor: y2 raised on the scale positivity × z2 (z2 the floor).
#[test]
fn boundary_floor_gives_zero_species_a_one_sided_cloud() {
    let sys = stiffx::plugins::registry::system("robertson").unwrap();
    let base = robertson_log_base(3, 1e-6, 1e3, 60);
    let cloud = |q: f64| CloudSampler {
        base: Box::new(base.clone()),
        k: 8,
        sigma_t: 0.0,
        sigma_n: 100.0,
        r_off: 1.0,
        normal_mode: NormalMode::Spectral,
        positivity: 0.3,
        boundary_quantile: q,
        keep_base: false,
        ..Default::default()
    };
    let b = base.sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(5)).unwrap();
    let zero: Vec<usize> = (0..b.len()).filter(|&i| b.state(i)[1] == 0.0).collect();
    assert_eq!(zero.len(), 3, "one initial state per trajectory, y2(0) = 0");
    let z: Vec<f64> = (0..3)
        .map(|c| {
            let mut v: Vec<f64> = (0..b.len()).map(|i| b.state(i)[c]).filter(|v| *v > 0.0).collect();
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * 0.2).round() as usize]
        })
        .collect();
    let z2 = z[1];
    let plain = cloud(0.0).sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(5)).unwrap();
    let floored = cloud(0.2).sample(sys.as_ref(), &[1.0], &mut StdRng::seed_from_u64(5)).unwrap();
    for &i in &zero {
        let x = b.state(i);
        for j in 0..8 {
            assert_eq!(plain.state(i * 8 + j), x, "no room at y2 = 0 without the floor");
            let p = floored.state(i * 8 + j);
            assert!(p.iter().all(|v| *v >= 0.0), "inside the orthant: {p:?}");
            assert!(
                p[1] > 0.0 && p[1] < 3.0 * 0.3 * z2 * 2f64.sqrt() * 1.5,
                "y2 raised, on the floor's scale: {} vs z2 = {z2}",
                p[1]
            );
        }
    }
    // Where every species is above its floor, the floor changes nothing.
    let above: Vec<usize> = (0..b.len()).filter(|&i| b.state(i).iter().zip(&z).all(|(v, z)| v > z)).collect();
    assert!(!above.is_empty());
    for &i in &above {
        for j in 0..8 {
            let (p, q) = (plain.state(i * 8 + j), floored.state(i * 8 + j));
            assert!(p.iter().zip(q).all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(1e-300)), "{p:?} vs {q:?}");
        }
    }
    // Every cloud point of the floored sampler is in the closed orthant.
    assert!(floored.x.iter().all(|v| *v >= 0.0));
}

/// The reference integrators (moved from `ode.rs`, whose unit tests may not reach the registry).
#[test]
fn bdf_and_tsit45_agree_with_the_exact_solution_on_a_very_stiff_problem() {
    // Davis–Skodje at eps = 1e-3: y = y0 e^{-t} exactly.
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let times = [0.0, 0.5, 2.0];
    let x0 = [1.5, 1.2];
    let a = stiffx::ode::solve_at_with(sys.as_ref(), 1e-3, &x0, &times, 1e-9, 1e-12, false, stiffx::ode::Method::Bdf)
        .unwrap();
    let b =
        stiffx::ode::solve_at_with(sys.as_ref(), 1e-3, &x0, &times, 1e-9, 1e-12, false, stiffx::ode::Method::Tsit45)
            .unwrap();
    for (i, &t) in times.iter().enumerate() {
        assert!((a[2 * i] - 1.5 * (-t).exp()).abs() < 1e-7, "bdf y at t={t}");
        assert!((a[2 * i + 1] - b[2 * i + 1]).abs() < 1e-6, "bdf and tsit45 z at t={t}");
    }
}

// Sobol placement of initial states (`sampler.placement`), through the public API.
mod placement {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use stiffx::plugins::sampler::{Placement, SOBOL_MAX_POINTS, Sampler, TrajectorySampler, initial_states};
    use stiffx::plugins::system::StiffSystem;

    /// The initial states of Davis–Skodje's box `[0.5, 2.5] × [0.25, 1.25]` (offsets from `h(y0)`)
    /// in unit coordinates.
    fn unit_points(x0s: &[f64]) -> Vec<[f64; 2]> {
        x0s.chunks(2).map(|x| [(x[0] - 0.5) / 2.0, x[1] - x[0] / (1.0 + x[0]) - 0.25]).collect()
    }

    /// Cells of a `rows × cols` grid over the unit square and how many points each holds.
    fn cell_counts(p: &[[f64; 2]], rows: usize, cols: usize) -> Vec<usize> {
        let mut c = vec![0; rows * cols];
        for [a, b] in p {
            assert!((0.0..1.0).contains(a) && (0.0..1.0).contains(b), "outside the box: {a}, {b}");
            c[(a * rows as f64) as usize * cols + (b * cols as f64) as usize] += 1;
        }
        c
    }

    #[test]
    fn sobol_placement_puts_one_initial_state_in_every_cell() {
        let ds: Box<dyn StiffSystem> = Box::new(stiffx::systems::davis_skodje::DavisSkodje::default());
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..3 {
            let p = unit_points(&initial_states(ds.as_ref(), Placement::Sobol, 16, &mut rng).unwrap());
            // A (0, 4, 2)-net: every elementary cell of area 1/16 holds exactly one point.
            for (rows, cols) in [(4, 4), (16, 1), (1, 16), (2, 8), (8, 2)] {
                assert_eq!(cell_counts(&p, rows, cols), vec![1; 16], "{rows} x {cols}");
            }
        }
        // Independent draws leave cells empty: seed 4's 16 draws miss at least one of the 4 × 4 cells.
        let mut rng = StdRng::seed_from_u64(4);
        let p = unit_points(&initial_states(ds.as_ref(), Placement::Random, 16, &mut rng).unwrap());
        assert!(cell_counts(&p, 4, 4).contains(&0));
    }

    #[test]
    fn sobol_placement_is_seeded_and_scrambled_per_call() {
        let ds: Box<dyn StiffSystem> = Box::new(stiffx::systems::davis_skodje::DavisSkodje::default());
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let a = initial_states(ds.as_ref(), Placement::Sobol, 12, &mut rng).unwrap();
            (a, initial_states(ds.as_ref(), Placement::Sobol, 12, &mut rng).unwrap())
        };
        let (a, b) = draw(9);
        assert_eq!((a.clone(), b.clone()), draw(9), "the same seed, the same states");
        assert_ne!(a, b, "the second stiffness value gets its own scramble");
        assert_ne!(a, draw(10).0, "another seed, other states");
    }

    #[test]
    fn sobol_placement_is_spelled_in_the_config_and_kept_out_when_random() {
        let s: TrajectorySampler = toml::from_str("placement = \"sobol\"").unwrap();
        assert_eq!(s.placement, Placement::Sobol);
        assert!(toml::to_string(&s).unwrap().contains("placement = \"sobol\""));
        assert!(!toml::to_string(&TrajectorySampler::default()).unwrap().contains("placement"));
        let e = toml::from_str::<TrajectorySampler>("placement = \"halton\"").unwrap_err().to_string();
        assert!(e.contains("random") && e.contains("sobol"), "{e}");
        let big =
            TrajectorySampler { per_eps: SOBOL_MAX_POINTS + 1, placement: Placement::Sobol, ..Default::default() };
        assert!(big.validate().unwrap_err().to_string().contains("sampler.per_eps"));
    }
}

/// The `union` sampler (`src/plugins/union.rs`): several samplers' states together.
mod union {
    use super::*;
    use stiffx::plugins::union::UnionSampler;

    fn long() -> TrajectorySampler {
        TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.1, ..Default::default() }
    }
    fn short() -> TrajectorySampler {
        TrajectorySampler { per_eps: 5, horizon: 0.2, dt: 0.05, ..Default::default() }
    }

    /// The union is its parts drawn one after the other from the one random stream: the same states,
    /// eps and trajectories as sampling them in turn, the later part's trajectory indices shifted past
    /// the earlier part's, and `expected_len` the sum.
    #[test]
    fn union_is_its_parts_in_turn_with_shifted_trajectory_indices() {
        let grid = [0.02, 0.1];
        let u = UnionSampler { parts: vec![Box::new(long()), Box::new(short())] };
        let set = u.sample(ds().as_ref(), &grid, &mut StdRng::seed_from_u64(7)).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let a = long().sample(ds().as_ref(), &grid, &mut rng).unwrap();
        let b = short().sample(ds().as_ref(), &grid, &mut rng).unwrap();
        assert_eq!(set.len(), a.len() + b.len());
        assert_eq!(u.expected_len(grid.len()), Some(set.len()));
        assert_eq!(set.x, [a.x.clone(), b.x.clone()].concat());
        assert_eq!(set.eps, [a.eps.clone(), b.eps.clone()].concat());
        assert_eq!(set.trajectories, [a.trajectories.clone(), b.trajectories.clone()].concat());
        let shift = a.trajectories.len() as u32;
        assert_eq!(shift, 4);
        for (i, o) in set.origin.iter().enumerate() {
            let Origin::Trajectory { traj, index } = *o else { panic!("row {i}: {o:?}") };
            // Every row is the stored state of the trajectory and time its origin names.
            let tr = &set.trajectories[traj as usize];
            assert_eq!(&tr.states[index as usize * 2..index as usize * 2 + 2], set.state(i), "row {i}");
            assert_eq!(tr.eps, set.eps[i]);
            assert_eq!(traj >= shift, i >= a.len(), "row {i}: trajectory {traj}");
        }
        // The short part's 20 starts are new initial states, not the long part's.
        let starts: Vec<f64> = set.trajectories.iter().map(|t| t.states[0]).collect();
        let mut unique = starts.clone();
        unique.sort_by(f64::total_cmp);
        unique.dedup();
        assert_eq!(unique.len(), 4 + 10);
    }

    /// Inside a cloud, the cloud's points around the short trajectories name those trajectories.
    #[test]
    fn a_cloud_around_a_union_keeps_every_origin() {
        let cloud = CloudSampler {
            base: Box::new(UnionSampler { parts: vec![Box::new(long()), Box::new(short())] }),
            k: 2,
            ..Default::default()
        };
        let set = cloud.sample(ds().as_ref(), &[0.05], &mut StdRng::seed_from_u64(3)).unwrap();
        assert_eq!(cloud.expected_len(1), Some(set.len()));
        assert_eq!(set.trajectories.len(), 2 + 5);
        let mut around_short = 0;
        for (i, o) in set.origin.iter().enumerate() {
            let Origin::Cloud { traj, index, .. } = *o else { continue };
            let tr = &set.trajectories[traj as usize];
            let base = &tr.states[index as usize * 2..index as usize * 2 + 2];
            let x = set.state(i);
            assert!((x[0] - base[0]).hypot(x[1] - base[1]) < 2.0, "row {i} far from its base point");
            around_short += usize::from(traj >= 2);
        }
        assert_eq!(around_short, 2 * 5 * 5, "K = 2 copies of each of the 5 short trajectories' 5 points");
    }

    /// A cloud around a union that holds a cloud of its own perturbs only the trajectory points
    /// (not the inner cloud's points), and `expected_len` counts exactly that, with and without the
    /// base's samples kept.
    #[test]
    fn expected_len_counts_a_cloud_around_trajectory_points_only() {
        for keep_base in [true, false] {
            let inner = CloudSampler { base: Box::new(short()), k: 3, ..Default::default() };
            let cloud = CloudSampler {
                base: Box::new(UnionSampler { parts: vec![Box::new(long()), Box::new(inner)] }),
                k: 2,
                keep_base,
                ..Default::default()
            };
            let set = cloud.sample(ds().as_ref(), &[0.05], &mut StdRng::seed_from_u64(3)).unwrap();
            assert_eq!(cloud.expected_len(1), Some(set.len()), "keep_base {keep_base}");
            let on_trajectories = set.origin.iter().filter(|o| matches!(o, Origin::Trajectory { .. })).count();
            assert_eq!(cloud.expected_trajectory_points(1), Some(on_trajectories), "keep_base {keep_base}");
        }
    }

    /// A union is written in a config as `[[sampler.base.parts]]` tables and reads back; a bad part is
    /// named by its index, through the cloud; an empty union is refused.
    #[test]
    fn union_parts_are_spelled_in_the_config_and_named_in_errors() {
        let cfg = crate::tiny_config();
        let mut text = cfg.to_toml();
        let at = text.find("[sampler.base]").expect("tiny config has a cloud");
        let rest = text[at..].find("\n[").map_or(text.len(), |n| at + n + 1);
        text.replace_range(
            at..rest,
            "[sampler.base]\ntype = \"union\"\n\n[[sampler.base.parts]]\ntype = \"trajectory\"\nper_eps = 2\nhorizon = 1.0\n\n[[sampler.base.parts]]\ntype = \"trajectory\"\nper_eps = 0\nhorizon = 0.2\n\n",
        );
        let c = stiffx::config::Config::from_toml(&text).expect("a union parses");
        let back = stiffx::config::Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(back.to_toml(), c.to_toml(), "round trip");
        assert!(c.sampler.describe().contains("union of [trajectory: 2 per eps"), "{}", c.sampler.describe());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sampler.base.parts[1].per_eps"), "{e}");
        let empty = UnionSampler { parts: vec![] };
        let e = empty.validate().unwrap_err().to_string();
        assert!(e.contains("sampler.parts") && e.contains("trajectory"), "{e}");
        // `--sampler union` alone is the registry's default: refused, not a silent trajectory sampler.
        let e = stiffx::plugins::registry::sampler("union").unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("sampler.parts"), "{e}");
        // A wrong type inside a part: the parser's error names the part's key and line.
        let bad = text.replace("per_eps = 0", "per_eps = \"many\"");
        let e = stiffx::config::Config::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("`sampler.base.parts[1].per_eps`"), "{e}");
    }

    /// A file's trajectories in a union: a `data` system (no `[system]` table) takes a union of `data`
    /// parts only; one with a part that integrates the system is refused when the config is validated,
    /// naming `sampler.type`. A cloud around a `data` sampler carries the file's fingerprint, so a
    /// cached dataset follows the file.
    #[test]
    fn a_data_system_takes_no_union_part_that_calls_its_rhs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ds.csv");
        crate::write_small_csv(&path);
        let data = format!("[[sampler.parts]]\ntype = \"data\"\npath = \"{}\"\n", path.display());
        let labeller = "[labeller]\ntype = \"finite-difference\"\n";
        let only_data = format!("[sampler]\ntype = \"union\"\n{data}{labeller}");
        let cfg = stiffx::config::Config::from_toml(&only_data).expect("a union of one data part");
        assert_eq!(stiffx::plugins::registry::name_of(&cfg.system), "data");
        cfg.validate().expect("a union of data parts learns from the file");
        let mixed = format!(
            "[sampler]\ntype = \"union\"\n{data}[[sampler.parts]]\ntype = \"trajectory\"\nper_eps = 2\n{labeller}"
        );
        let e = stiffx::config::Config::from_toml(&mixed).and_then(|c| c.validate()).unwrap_err().to_string();
        assert!(e.contains("sampler.type") && e.contains("union") && e.contains("RHS"), "{e}");
        let cloud = format!(
            "[sampler]\ntype = \"cloud\"\n[sampler.base]\ntype = \"data\"\npath = \"{}\"\n{labeller}",
            path.display()
        );
        let c = stiffx::config::Config::from_toml(&cloud).unwrap();
        assert_eq!(stiffx::plugins::registry::name_of(&c.system), "data");
        assert!(c.validate().unwrap_err().to_string().contains("sampler.type"));
        let print = c.sampler.fingerprint();
        assert!(!print.is_empty(), "a cloud around a data file has the file's fingerprint");
        assert_eq!(print, stiffx::config::Config::from_toml(&only_data).unwrap().sampler.fingerprint());
    }
}
