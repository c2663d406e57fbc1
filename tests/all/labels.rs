use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::plugins::cloud::CloudSampler;
use stiffx::plugins::labeller::{Burst, Direct, FiniteDifference, Labeller, TauMode};
use stiffx::plugins::sampler::{Sampler, TrajectorySampler};

fn setup() -> (Box<dyn stiffx::plugins::system::StiffSystem>, stiffx::plugins::sampler::SampleSet) {
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let c = CloudSampler {
        base: Box::new(TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.05, ..Default::default() }),
        k: 2,
        ..Default::default()
    };
    let set = c.sample(sys.as_ref(), &[0.02, 0.05, 0.2], &mut StdRng::seed_from_u64(2)).unwrap();
    (sys, set)
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn burst_error_shrinks_as_tau_squared() {
    let (sys, set) = setup();
    let exact = Direct {}.label(sys.as_ref(), &set).unwrap();
    let err = |tau: f64| {
        let b = Burst { tau, mode: TauMode::Fixed, rtol: 1e-12, atol: 1e-14, ..Burst::default() };
        max_rel_err(&b.label(sys.as_ref(), &set).unwrap(), &exact)
    };
    let (e1, e2) = (err(2e-3), err(1e-3));
    // Leading term (λτ)²/6 with λ = -1/0.02: 1.7e-3 at τ = 2e-3.
    assert!(e1 > 1e-4 && e1 < 3e-3, "e(2e-3) = {e1}");
    let ratio = e1 / e2;
    assert!((ratio - 4.0).abs() < 0.2, "halving tau divides the error by {ratio}, expected 4");
}

#[test]
fn paper_tau_bias_is_sinh_and_bias_control_removes_it() {
    let (sys, set) = setup();
    let exact = Direct {}.label(sys.as_ref(), &set).unwrap();
    // The fast component at eps = 0.02 with τ = 1e-2: relative bias sinh(λτ)/(λτ) - 1 with λτ = -0.5.
    let paper = Burst::default().label(sys.as_ref(), &set).unwrap();
    let expect = (0.5f64).sinh() / 0.5 - 1.0;
    let i = (0..set.len()).find(|&i| set.eps[i] == 0.02 && exact[2 * i + 1].abs() > 1.0).unwrap();
    let bias = paper[2 * i + 1] / exact[2 * i + 1] - 1.0;
    // z' = -(z - h(y))/eps is linear in z with rate -1/eps; the slow forcing adds a small O(eps) part.
    assert!((bias - expect).abs() < 0.1 * expect, "bias {bias} vs sinh prediction {expect}");
    for mode in [TauMode::Scaled, TauMode::Richardson] {
        let b = Burst { mode, ..Burst::default() };
        let e = max_rel_err(&b.label(sys.as_ref(), &set).unwrap(), &exact);
        assert!(e < 2e-3, "{mode:?}: max relative label error {e}");
    }
}

#[test]
fn finite_differences_need_trajectories() {
    let (sys, set) = setup();
    let err = FiniteDifference::default().label(sys.as_ref(), &set).unwrap_err().to_string();
    assert!(err.contains("finite-difference") && err.contains("burst"), "{err}");
    let traj = TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.001, ..Default::default() }
        .sample(sys.as_ref(), &[0.3], &mut StdRng::seed_from_u64(1))
        .unwrap();
    let fd = FiniteDifference::default().label(sys.as_ref(), &traj).unwrap();
    let exact = Direct {}.label(sys.as_ref(), &traj).unwrap();
    assert!(max_rel_err(&fd, &exact) < 1e-4);
}

/// The three-point weights are exact for quadratics on any grid, and reduce to eq. 14 on a uniform one.
#[test]
fn finite_difference_weights_are_exact_for_quadratics_on_log_grids() {
    use stiffx::plugins::labeller::fd_weights;
    let times = stiffx::ode::output_times(stiffx::ode::Spacing::Log, 0.0, 10.0, 1e-3, 12);
    let f = |t: f64| 3.0 * t * t - 2.0 * t + 1.0;
    for j in 0..times.len() {
        let (first, w) = fd_weights(&times, j);
        let d: f64 = (0..3).map(|m| w[m] * f(times[first + m])).sum();
        let exact = 6.0 * times[j] - 2.0;
        assert!((d - exact).abs() < 1e-9 * (1.0 + exact.abs()), "j={j} {d} vs {exact}");
    }
    let (_, w) = fd_weights(&[0.0, 0.1, 0.2, 0.3], 2);
    assert!((w[0] + 5.0).abs() < 1e-12 && w[1].abs() < 1e-12 && (w[2] - 5.0).abs() < 1e-12, "{w:?}");
}

/// Fornberg's stencils: three points give the same weights as eq. 14's formulas, five points are exact
/// for quartics on a log grid (centred inside, one-sided at both ends), and order-4 labels along a
/// coarse Davis–Skodje trajectory are far closer to the exact RHS than order-2 ones.
#[test]
fn fornberg_stencils_are_exact_for_quartics_and_beat_second_order_labels() {
    use stiffx::plugins::labeller::{fd_stencil, fd_weights};
    let times = stiffx::ode::output_times(stiffx::ode::Spacing::Log, 0.0, 10.0, 1e-3, 12);
    for j in 0..times.len() {
        let (f3, w3) = fd_weights(&times, j);
        let (g3, v3) = fd_stencil(&times, j, 3);
        assert_eq!(f3, g3);
        for (a, b) in w3.iter().zip(&v3) {
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "j={j}: {w3:?} vs {v3:?}");
        }
    }
    let f = |t: f64| t.powi(4) - 2.0 * t.powi(3) + 0.5 * t * t - t + 3.0;
    let df = |t: f64| 4.0 * t.powi(3) - 6.0 * t * t + t - 1.0;
    for j in 0..times.len() {
        let (first, w) = fd_stencil(&times, j, 5);
        assert_eq!(w.len(), 5);
        assert!(first + 5 <= times.len() && (first..first + 5).contains(&j));
        let d: f64 = w.iter().enumerate().map(|(m, wm)| wm * f(times[first + m])).sum();
        assert!((d - df(times[j])).abs() < 1e-7 * (1.0 + df(times[j]).abs()), "j={j}: {d} vs {}", df(times[j]));
    }
    let (sys, _) = setup();
    let traj = TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.01, ..Default::default() }
        .sample(sys.as_ref(), &[0.3], &mut StdRng::seed_from_u64(1))
        .unwrap();
    let exact = Direct {}.label(sys.as_ref(), &traj).unwrap();
    let e2 = max_rel_err(&FiniteDifference { order: 2 }.label(sys.as_ref(), &traj).unwrap(), &exact);
    let e4 = max_rel_err(&FiniteDifference { order: 4 }.label(sys.as_ref(), &traj).unwrap(), &exact);
    assert!(e4 < e2 / 30.0 && e4 < 1e-5, "order 2: {e2:.2e}, order 4: {e4:.2e}");
    let bad = FiniteDifference { order: 3 }.validate().unwrap_err().to_string();
    assert!(bad.contains("labeller.order") && bad.contains("2, 4 or 6"), "{bad}");
}

/// Two code paths, one dataset: the `trajectory` sampler's integrations written to a CSV file (17
/// significant digits, columns shuffled) and read back by the `data` sampler give bit for bit the same
/// states, and the `finite-difference` labels of order 4 are identical; a grid value without data is
/// a named error.
#[test]
fn data_sampler_reads_back_the_trajectory_samplers_own_trajectories_exactly() {
    use stiffx::plugins::data::DataSampler;
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let grid = [0.05, 0.2];
    let set = TrajectorySampler { per_eps: 3, horizon: 1.0, dt: 0.02, ..Default::default() }
        .sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(7))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.csv");
    let mut text = String::from("z,eps,t,trajectory,y\n");
    for (k, tr) in set.trajectories.iter().enumerate() {
        for (t, x) in tr.times.iter().zip(tr.states.chunks(2)) {
            text += &format!("{:e},{:e},{:e},traj-{k},{:e}\n", x[1], tr.eps, t, x[0]);
        }
    }
    std::fs::write(&path, text).unwrap();
    let data = DataSampler { path: path.to_string_lossy().into_owned(), eps: None };
    let read = data.sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(99)).unwrap();
    assert_eq!(read.x, set.x);
    assert_eq!(read.eps, set.eps);
    assert_eq!(read.origin, set.origin);
    let fd = FiniteDifference { order: 4 };
    assert_eq!(fd.label(sys.as_ref(), &read).unwrap(), fd.label(sys.as_ref(), &set).unwrap());
    let e = data.sample(sys.as_ref(), &[0.05, 0.2, 0.3], &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("no trajectory at eps = 0.3 of the training grid"), "{e}");
    let e = data.sample(sys.as_ref(), &[0.05], &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("is at eps = 0.2, which is not in the training grid (0.05)"), "{e}");
}

/// The same trajectories as a NumPy NPZ archive (what `numpy.savez_compressed(path, trajectory=…,
/// t=…, eps=…, y=…, z=…)` writes: one deflated `.npy` array per column, integer ids) read by the same
/// `data` sampler: bit for bit the states of the integrations, and a bad array named.
#[test]
fn data_sampler_reads_npz_archives_exactly() {
    use npyz::WriterBuilder;
    use stiffx::plugins::data::DataSampler;
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let grid = [0.05, 0.2];
    let set = TrajectorySampler { per_eps: 3, horizon: 1.0, dt: 0.02, ..Default::default() }
        .sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(7))
        .unwrap();
    let mut cols: Vec<(&str, Vec<f64>)> = ["t", "eps", "y", "z"].iter().map(|n| (*n, Vec::new())).collect();
    let mut ids: Vec<i64> = Vec::new();
    for (k, tr) in set.trajectories.iter().enumerate() {
        for (t, x) in tr.times.iter().zip(tr.states.chunks(2)) {
            for (c, v) in cols.iter_mut().zip([*t, tr.eps, x[0], x[1]]) {
                c.1.push(v);
            }
            ids.push(100 + k as i64);
        }
    }
    fn npy<T: npyz::Serialize + npyz::AutoSerialize + Clone>(v: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(&[v.len() as u64])
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(v.iter().cloned()).unwrap();
        w.finish().unwrap();
        out
    }
    let write = |path: &std::path::Path, members: Vec<(String, Vec<u8>)>| {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            zip.start_file(name, opts).unwrap();
            std::io::Write::write_all(&mut zip, &bytes).unwrap();
        }
        zip.finish().unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.npz");
    let mut members = vec![("trajectory.npy".to_string(), npy(&ids))];
    members.extend(cols.iter().map(|(n, v)| (format!("{n}.npy"), npy(v))));
    write(&path, members.clone());
    let data = DataSampler { path: path.to_string_lossy().into_owned(), eps: None };
    let read = data.sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(99)).unwrap();
    assert_eq!(read.x, set.x);
    assert_eq!(read.eps, set.eps);
    assert_eq!(read.origin, set.origin);
    // A NaN in `z` and an unknown array are named by row and array.
    let mut z = cols[3].1.clone();
    z[5] = f64::NAN;
    members[4] = ("z.npy".into(), npy(&z));
    write(&path, members.clone());
    let e = data.sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("row 5 of array `z`: `NaN` is not a finite number"), "{e}");
    members[4] = ("w.npy".into(), npy(&cols[3].1));
    write(&path, members);
    let e = data.sample(sys.as_ref(), &grid, &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("array `w`: unknown column `w`; allowed: `trajectory`, `t`"), "{e}");
}
