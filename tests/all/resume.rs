//! Interrupted runs: killed at fixed points (while sampling and labelling, mid-Adam, while saving its
//! state, in the L-BFGS phase, during evaluation) and at a seeded random time, then resumed — the
//! weights, metrics and loss curve are those of the uninterrupted run, bit for bit (flex, the CPU
//! default); SIGTERM stops cleanly; run directories are all or nothing and refuse to be overwritten.

use std::path::Path;
use std::process::Command;

use crate::cli::stiffx;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml");

/// `stiffx run` of the tiny config with an L-BFGS phase, a state every 5 rows, into `out`; `kill`
/// sets `STIFFX_KILL_AT`.
fn run(out: &Path, kill: Option<&str>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
    c.args(["run", "--config", TINY, "--lbfgs", "40", "--save-every", "5e", "--quiet", "--no-figures", "--out"])
        .arg(out);
    if let Some(k) = kill {
        c.env("STIFFX_KILL_AT", k);
    }
    c.output().expect("binary runs")
}

fn resume(out: &Path) -> (i32, String, String) {
    stiffx(&["run", "--resume", out.to_str().unwrap(), "--quiet", "--no-figures"])
}

/// What must be equal between two runs of the same seed: the weights' bytes, the per-eps metrics,
/// the loss curve without its timings, and `metrics.json` without timings and throughput.
fn fingerprint(dir: &Path) -> (Vec<u8>, String, Vec<String>, serde_json::Value) {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()));
    let curve = read("loss_curve.csv");
    let header: Vec<&str> = curve.lines().next().unwrap().split(',').collect();
    let secs = header.iter().position(|h| *h == "seconds").expect("seconds column");
    let rows = curve
        .lines()
        .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != secs).map(|(_, v)| v).collect::<Vec<_>>().join(","))
        .collect();
    let mut m: serde_json::Value = serde_json::from_str(&read("metrics.json")).unwrap();
    let o = m.as_object_mut().unwrap();
    o.remove("seconds");
    o.remove("train_samples_per_sec");
    o["eval"].as_object_mut().unwrap().remove("seconds");
    (std::fs::read(dir.join("checkpoint.safetensors")).unwrap(), read("per_eps.csv"), rows, m)
}

/// A complete run directory: the marker, no resumable state, no working directory or temporary file
/// left beside it.
fn assert_complete(dir: &Path) {
    assert!(dir.join("done.json").is_file() && !dir.join("resume.json").exists() && !dir.join(".lock").exists());
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy();
    assert!(!parent.join(format!(".{name}.partial")).exists(), "working directory of {name} left");
    assert!(!parent.join(format!(".{name}.replaced")).exists(), "the replaced run of {name} left");
    let stray: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_run_killed_anywhere_and_resumed_equals_the_uninterrupted_one_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let whole = tmp.path().join("whole");
    assert!(run(&whole, None).status.success());
    let secs = t0.elapsed().as_secs_f64();
    assert_complete(&whole);
    let reference = fingerprint(&whole);
    // 30 Adam epochs (states after 5, 10, …), then L-BFGS rounds.
    for point in ["data:1", "adam:12", "save:3", "lbfgs:2", "eval:1"] {
        let out = tmp.path().join(point.replace(':', "_"));
        let killed = run(&out, Some(point));
        assert_eq!(killed.status.code(), None, "{point}: killed by SIGKILL");
        assert!(!out.exists(), "{point}: nothing at the run directory until it is complete");
        // Not quiet: the progress says where it resumed, so a silent restart cannot pass for a resume.
        let (code, stdout, err) = stiffx(&["run", "--resume", out.to_str().unwrap(), "--no-figures"]);
        assert_eq!(code, 0, "{point}: {err}");
        assert!(stdout.contains("results in"), "{point}: {stdout}");
        let row = err
            .split("resuming after row ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok());
        match point {
            // Killed before its first save: it starts over.
            "data:1" => assert_eq!(row, None, "{point}: {err}"),
            _ => assert!(row.is_some_and(|n| n >= 5), "{point}: no resume from a saved row: {err}"),
        }
        assert_complete(&out);
        assert!(fingerprint(&out) == reference, "{point}: the resumed run differs from the uninterrupted one");
        // The training time counts the first process's rows too (after `eval:1` the resuming process
        // trains nothing): at least the curve's clock at its last row.
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        let curve = std::fs::read_to_string(out.join("loss_curve.csv")).unwrap();
        let col = curve.lines().next().unwrap().split(',').position(|h| h == "seconds").unwrap();
        let last: f64 = curve.lines().last().unwrap().split(',').nth(col).unwrap().parse().unwrap();
        let train = m["seconds"]["train"].as_f64().unwrap();
        assert!(train + 0.01 >= last && last > 0.05, "{point}: train {train} s < the curve's {last} s");
    }
    // At a seeded random time (20–80 % of the uninterrupted run's wall time).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = secs * (0.2 + 0.6 * (x % 1000) as f64 / 1000.0);
        let out = tmp.path().join(format!("random{i}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_stiffx"))
            .args(["run", "--config", TINY, "--lbfgs", "40", "--save-every", "5e", "--quiet", "--no-figures", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs_f64(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let (code, _, err) = resume(&out);
        assert_eq!(code, 0, "random kill {i} after {delay:.2} s ({status}): {err}");
        assert_complete(&out);
        assert!(fingerprint(&out) == reference, "random kill {i} after {delay:.2} s differs");
    }
}

#[test]
fn sigterm_saves_the_state_says_how_to_resume_and_the_resumed_run_is_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    assert!(run(&whole, None).status.success());
    // `eval:1:term`: during the evaluation, which stops between two integration steps.
    for point in ["adam:7:term", "lbfgs:1:term", "eval:1:term"] {
        let out = tmp.path().join(point.replace(':', "_"));
        let stopped = run(&out, Some(point));
        let err = String::from_utf8_lossy(&stopped.stderr);
        assert_eq!(stopped.status.code(), Some(143), "{point}: {err}");
        assert!(err.contains("stopped by SIGTERM") && err.contains("state is saved"), "{err}");
        assert!(err.contains(&format!("stiffx run --resume {}", out.display())), "{err}");
        let work = tmp.path().join(format!(".{}.partial", out.file_name().unwrap().to_string_lossy()));
        // The best checkpoint so far and the state are there, and the state loads as a checkpoint.
        assert!(work.join("checkpoint.json").is_file() && work.join("resume.json").is_file());
        stiffx::engine::checkpoint::Checkpoint::load(&work.join("resume.json")).unwrap();
        let (code, _, err) = resume(&out);
        assert_eq!(code, 0, "{err}");
        assert!(fingerprint(&out) == fingerprint(&whole), "{point}");
    }
}

#[test]
fn run_directories_are_all_or_nothing_and_refused_unless_force_or_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let o = out.to_str().unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["run", "--config", TINY, "--epochs", "3", "--quiet", "--no-figures", "--out", o];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let call = |a: Vec<String>| stiffx(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(call(args(&[])).0, 0);
    let first = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    // A complete run is not overwritten without --force …
    let (code, _, err) = call(args(&["--seed", "2"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds a complete run") && err.contains("--force"), "{err}");
    // … and a killed --force run leaves it whole.
    std::fs::write(out.join("stale.txt"), "an earlier file").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
    c.args(args(&["--seed", "2", "--force", "--save-every", "1e"])).env("STIFFX_KILL_AT", "adam:2");
    assert_eq!(c.output().unwrap().status.code(), None);
    assert_eq!(std::fs::read(out.join("checkpoint.safetensors")).unwrap(), first);
    assert!(out.join("done.json").is_file());
    // The interrupted run in its place is refused without --resume or --force …
    let (code, _, err) = call(args(&["--seed", "2"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds a complete run"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
    let (code, _, err) = call(args(&["--seed", "2"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("an interrupted run") && err.contains(&format!("stiffx run --resume {o}")), "{err}");
    // Killed after epoch 2, before its save: the state is that of epoch 1 (states every epoch).
    assert!(err.contains("state saved after row 1 of"), "{err}");
    // `--check` says so too, and writes nothing.
    let (code, _, err) = call(args(&["--seed", "2", "--check"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("interrupted run") && err.contains("--resume"), "{err}");
    // … while another process holds its lock, nothing runs …
    let lock = std::fs::OpenOptions::new().write(true).open(tmp.path().join(".r.partial/.lock")).unwrap();
    lock.lock().unwrap();
    let (code, _, err) = resume(&out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another stiffx process"), "{err}");
    drop(lock);
    // … and --force discards it and replaces the directory when the new run completes.
    let (code, _, err) = call(args(&["--seed", "3", "--force"]));
    assert_eq!(code, 0, "{err}");
    assert_complete(&out);
    assert!(!out.join("stale.txt").exists());
    // --resume of a complete run says so; of nothing, names the flag.
    let (code, stdout, _) = resume(&out);
    assert_eq!(code, 0);
    assert!(stdout.contains("holds a complete run; nothing to resume"), "{stdout}");
    let nowhere = tmp.path().join("nowhere");
    let (code, _, err) = resume(&nowhere);
    assert_eq!(code, 2);
    assert!(err.contains("--resume") && err.contains("interrupted run"), "{err}");
    assert!(!tmp.path().join(".nowhere.partial").exists(), "a refused --resume creates nothing");
    // `.`, `..` and `/` are never a run directory: the commit would replace them.
    let here = tmp.path().join("here");
    std::fs::create_dir(&here).unwrap();
    std::fs::write(here.join("keep.txt"), "mine").unwrap();
    for dot in [".", "..", "./"] {
        for extra in [&["--force"][..], &["--check"][..]] {
            let o = Command::new(env!("CARGO_BIN_EXE_stiffx"))
                .args(["run", "--config", TINY, "--epochs", "1", "--quiet", "--no-figures", "--out", dot])
                .args(extra)
                .current_dir(&here)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "--out {dot} {extra:?}: {err}");
            assert!(err.contains("--out") && err.contains("a name of its own"), "{err}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(&here).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, ["keep.txt"], "--out . must leave the directory as it was");
    for bad in ["0", "5 days", "-1e", "2.5e"] {
        let (code, _, err) = call(args(&[&format!("--save-every={bad}")]));
        assert_eq!(code, 2, "--save-every {bad}: {err}");
        assert!(err.contains("--save-every"), "{err}");
    }
}

#[test]
fn an_interrupted_sweep_job_resumes_its_run_when_the_same_command_runs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny_sweep.toml");
    let job = |out: &Path, kill: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
        c.args(["run-job", spec, "--index", "0", "--quiet", "--no-figures", "--save-every", "5e", "--out"]).arg(out);
        if let Some(k) = kill {
            c.env("STIFFX_KILL_AT", k);
        }
        c.output().unwrap()
    };
    let whole = tmp.path().join("whole");
    assert!(job(&whole, None).status.success());
    let cut = tmp.path().join("cut");
    let stopped = job(&cut, Some("adam:12:term"));
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(143), "{err}");
    assert!(err.contains("resumes from its saved state when the same command runs again"), "{err}");
    let again = job(&cut, None);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let ids: Vec<_> =
        std::fs::read_dir(&whole).unwrap().flatten().filter(|e| e.path().join("done.json").is_file()).collect();
    assert_eq!(ids.len(), 1);
    let id = ids[0].file_name();
    assert!(fingerprint(&whole.join(&id)) == fingerprint(&cut.join(&id)));
}

/// `--together`: SIGTERM during the second member's evaluation keeps the first member (committed,
/// `done.json`) and says so; the same command then continues the others from the states they saved
/// at their last epoch and finishes all four, each equal to the uninterrupted group's. `--together 0`
/// is refused naming the flag.
#[test]
fn a_group_stopped_during_its_evaluations_keeps_the_evaluated_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny_sweep.toml");
    let sweep = |out: &Path, kill: Option<&str>, together: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
        c.args(["sweep", spec, "--together", together, "--quiet", "--no-figures", "--out"]).arg(out);
        if let Some(k) = kill {
            c.env("STIFFX_KILL_AT", k);
        }
        c.output().unwrap()
    };
    let zero = sweep(&tmp.path().join("zero"), None, "0");
    let err = String::from_utf8_lossy(&zero.stderr);
    assert_eq!(zero.status.code(), Some(2), "{err}");
    assert!(err.contains("--together") && !err.contains("panicked"), "{err}");
    let whole = tmp.path().join("whole");
    assert!(sweep(&whole, None, "4").status.success());
    let cut = tmp.path().join("cut");
    let stopped = sweep(&cut, Some("eval:2:term"), "4");
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(143), "{err}");
    assert!(err.contains("the 1 evaluated are kept"), "{err}");
    assert_eq!(done(&cut).len(), 1, "{:?}", done(&cut));
    // The others saved their states at their last epoch: they continue from them, not from scratch.
    assert_eq!(saved_epochs(&cut), vec![30; 3]);
    // A copy continued job by job (`run-job`, not together): each is only evaluated, from the state
    // of its last epoch, and equals the uninterrupted group's, `trained_together` (4) included.
    let alone = tmp.path().join("alone");
    copy_dir(&cut, &alone);
    let o = Command::new(env!("CARGO_BIN_EXE_stiffx"))
        .args(["run-job", spec, "--index", "0-3", "--quiet", "--no-figures", "--out"])
        .arg(&alone)
        .env("STIFFX_KILL_AT", "adam:1:kill")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for id in done(&whole) {
        assert!(fingerprint(&alone.join(&id)) == fingerprint(&whole.join(&id)), "{id}: continued alone");
    }
    // A second process that trained them again would pass the kill point `adam:1`.
    let again = sweep(&cut, Some("adam:1:kill"), "4");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(done(&cut), done(&whole));
    assert_eq!(done(&whole).len(), 4);
    for id in done(&whole) {
        assert_complete(&cut.join(&id));
        assert!(
            fingerprint(&cut.join(&id)) == fingerprint(&whole.join(&id)),
            "{id} differs from the uninterrupted group's"
        );
    }
}

/// Two runs of one job that trained in passes of different sizes: the same best epoch, and best
/// validation losses equal to the rounding of the batched products (1e-4).
fn assert_same_fit(a: &Path, b: &Path) {
    let m = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap()
    };
    let (ma, mb) = (m(a), m(b));
    assert_eq!(ma["best_epoch"], mb["best_epoch"], "{}", b.display());
    let (x, y) = (ma["best_val_loss"].as_f64().unwrap(), mb["best_val_loss"].as_f64().unwrap());
    assert!((x - y).abs() <= 1e-4 * x, "{}: {x} vs {y}", b.display());
}

/// A copy of the directory `from` (an interrupted sweep, hidden working directories included) at `to`.
fn copy_dir(from: &Path, to: &Path) {
    assert!(Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap().success());
}

/// The finished jobs (a directory with the completion marker) under `dir`, sorted.
fn done(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("done.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The Adam epochs of the states saved in the working directories under `out`, sorted.
fn saved_epochs(out: &Path) -> Vec<usize> {
    let mut v: Vec<usize> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("resume.json"))
        .filter(|p| p.is_file())
        .map(|p| stiffx::engine::rundir::Resumable::load(&p).unwrap().train_state.adam_epochs())
        .collect();
    v.sort_unstable();
    v
}

/// `--together` stopped during training: SIGTERM after the group's 3rd epoch saves every member's
/// state (its own slice of the group's Adam state); SIGKILL after the 7th leaves the states of epoch
/// 5 (`--save-every 5e`). The same command continues the four together from them — a second process
/// that trained from scratch would pass the kill point `adam:28` (`adam:26`) and die — and every job
/// equals the uninterrupted group's bit for bit. One member's state also continues alone (`run-job`),
/// to the group's best epoch and validation loss within the rounding of batched products. Members
/// with states of different epochs, or none, continue in one pass per epoch; a member whose state is
/// damaged starts over alone.
#[test]
fn a_group_stopped_during_training_continues_from_its_members_states() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny_sweep.toml");
    let cmd = |args: &[&str], out: &Path, kill: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
        c.args(args).args(["--quiet", "--no-figures", "--save-every", "5e", "--out"]).arg(out);
        if let Some(k) = kill {
            c.env("STIFFX_KILL_AT", k);
        }
        c.output().unwrap()
    };
    let sweep = |out: &Path, kill: Option<&str>| cmd(&["sweep", spec, "--together", "4"], out, kill);
    let whole = tmp.path().join("whole");
    let o = sweep(&whole, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = done(&whole);
    assert_eq!(ids.len(), 4);
    for id in &ids {
        // Each member saved its states (every 5 epochs) and counts their time.
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(whole.join(id).join("metrics.json")).unwrap()).unwrap();
        assert!(m["seconds"]["save"].as_f64().unwrap() > 0.0, "{id}: {}", m["seconds"]);
    }
    for (kill, saved, check) in [("adam:3:term", 3, "adam:28:kill"), ("adam:7:kill", 5, "adam:26:kill")] {
        let cut = tmp.path().join(kill.replace(':', "_"));
        let stopped = sweep(&cut, Some(kill));
        let err = String::from_utf8_lossy(&stopped.stderr);
        if kill.ends_with("term") {
            assert_eq!(stopped.status.code(), Some(143), "{err}");
            assert!(err.contains("continue from their saved states"), "{err}");
        } else {
            assert_eq!(stopped.status.code(), None, "{kill}: killed by SIGKILL");
        }
        assert!(done(&cut).is_empty(), "{kill}: {:?}", done(&cut));
        assert_eq!(saved_epochs(&cut), vec![saved; 4], "{kill}");
        if kill.ends_with("term") {
            // A copy whose first member's Adam state is damaged: a warning names its file, that job
            // starts over (alone, in a pass of its own), and the other three continue together.
            let bad = tmp.path().join("bad");
            copy_dir(&cut, &bad);
            let file = bad.join(format!(".{}.partial", ids[0])).join("resume.json");
            let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            v["train_state"]["phase"]["state"] = "AAAA".into();
            std::fs::write(&file, v.to_string()).unwrap();
            let o = sweep(&bad, None);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{err}");
            assert!(
                err.contains("warning") && err.contains(&file.display().to_string()) && err.contains("starts over"),
                "{err}"
            );
            assert_eq!(done(&bad), ids);
            for id in &ids {
                // In passes of 1 and 3 instead of 4: equal to the rounding of the batched products.
                assert_same_fit(&whole.join(id), &bad.join(id));
            }
            // A copy whose members hold states of three kinds: the first continued alone to epoch 5
            // and stopped again, the second's state removed (it starts over), the others at epoch 3.
            // The same command trains them in one pass per (size, epochs done) and finishes all four.
            let mixed = tmp.path().join("mixed");
            copy_dir(&cut, &mixed);
            let o = cmd(&["run-job", spec, "--index", "0"], &mixed, Some("adam:2:term"));
            assert_eq!(o.status.code(), Some(143), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(saved_epochs(&mixed), vec![3, 3, 3, 5]);
            let state = |id: &String| mixed.join(format!(".{id}.partial")).join("resume.json");
            let at3 = ids
                .iter()
                .find(|id| stiffx::engine::rundir::Resumable::load(&state(id)).unwrap().train_state.adam_epochs() == 3)
                .unwrap();
            std::fs::remove_file(state(at3)).unwrap();
            assert_eq!(saved_epochs(&mixed), vec![3, 3, 5]);
            let o = sweep(&mixed, None);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(done(&mixed).len(), 4);
            for id in &ids {
                assert_same_fit(&whole.join(id), &mixed.join(id));
            }
            // A copy of the stopped sweep: one member continues alone (`run-job --index 0`) from its
            // share of the group's state.
            let copy = tmp.path().join("alone");
            copy_dir(&cut, &copy);
            let alone = cmd(&["run-job", spec, "--index", "0"], &copy, Some(check));
            assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
            let first = done(&copy);
            assert_eq!(first.len(), 1);
            assert_same_fit(&whole.join(&first[0]), &copy.join(&first[0]));
            // The rows trained in the group before the stop are the group's, bit for bit.
            let rows = |d: &Path| -> Vec<Vec<String>> {
                let text = std::fs::read_to_string(d.join(&first[0]).join("loss_curve.csv")).unwrap();
                let secs = text.lines().next().unwrap().split(',').position(|h| h == "seconds").unwrap();
                text.lines()
                    .take(1 + saved)
                    .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != secs).map(|(_, v)| v.to_string()).collect())
                    .collect()
            };
            assert_eq!(rows(&copy), rows(&whole));
        }
        let again = sweep(&cut, Some(check));
        assert!(
            again.status.success(),
            "{kill}: the group did not continue: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(done(&cut), ids, "{kill}");
        for id in &ids {
            assert_complete(&cut.join(id));
            assert!(
                fingerprint(&cut.join(id)) == fingerprint(&whole.join(id)),
                "{kill}: {id} differs from the uninterrupted group's"
            );
        }
    }
}

/// f64 training (`--train-precision f64`) stopped in its Adam phase continues exactly: Adam's moments
/// come back in f64 (`train::adam`; burn alone restores them in f32, and the next step panicked), so
/// the resumed run equals the uninterrupted one bit for bit. Stopped in its L-BFGS phase, whose history
/// burn restores in f32, `--resume` refuses with exit 2, naming the file and `--force`, no panic, and
/// leaves the state as it was.
#[test]
fn an_f64_run_resumes_exactly_from_adam_and_refuses_from_lbfgs() {
    let tmp = tempfile::tempdir().unwrap();
    let f64run = |out: &Path, kill: Option<&str>, lbfgs: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stiffx"));
        c.args(["run", "--config", TINY, "--train-precision", "f64", "--lbfgs", lbfgs, "--save-every", "5e"])
            .args(["--quiet", "--no-figures", "--out"])
            .arg(out);
        if let Some(k) = kill {
            c.env("STIFFX_KILL_AT", k);
        }
        c.output().unwrap()
    };
    let whole = tmp.path().join("whole");
    assert!(f64run(&whole, None, "0").status.success());
    let cut = tmp.path().join("cut");
    let o = f64run(&cut, Some("adam:12:term"), "0");
    assert_eq!(o.status.code(), Some(143), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, _, err) = resume(&cut);
    assert_eq!(code, 0, "{err}");
    assert_complete(&cut);
    assert!(fingerprint(&cut) == fingerprint(&whole), "the resumed f64 run differs from the uninterrupted one");

    let lb = tmp.path().join("lbfgs");
    let o = f64run(&lb, Some("lbfgs:2:term"), "40");
    assert_eq!(o.status.code(), Some(143), "{}", String::from_utf8_lossy(&o.stderr));
    let work = stiffx::engine::rundir::RunDir::work_of(&lb);
    let before = std::fs::read(work.join("resume.json")).unwrap();
    let (code, _, err) = resume(&lb);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("f64")
            && err.contains("L-BFGS")
            && err.contains("resume.json")
            && err.contains("--force")
            && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(std::fs::read(work.join("resume.json")).unwrap(), before, "the state is left as it was");
}
