//! The experiment engine through the CLI: job lists, a simulated SLURM array and GNU parallel whose
//! collected tables equal a local sweep's, requeued and killed jobs, collect with missing jobs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn stiffx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stiffx")).args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spec() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny_sweep.toml").to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `file` without the columns whose header contains `seconds` (wall times differ between runs).
fn without_seconds(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| !header[i].contains("seconds")).collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Markdown file without its wall-time lines and sections.
fn without_wall_time(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = Vec::new();
    let mut skipping = false;
    for l in text.lines() {
        if l.starts_with("## ") {
            skipping = l.contains("Wall time");
        }
        if !skipping && !l.starts_with("Wall time") {
            out.push(l);
        }
    }
    out.join("\n")
}

/// The tables of two output directories agree byte for byte, wall times aside.
fn assert_same_tables(a: &Path, b: &Path) {
    for f in ["table1.csv", "eps_curve.csv"] {
        assert_eq!(without_seconds(&a.join(f)), without_seconds(&b.join(f)), "{f}");
    }
    for f in ["table1.md", "report.md"] {
        assert_eq!(without_wall_time(&a.join(f)), without_wall_time(&b.join(f)), "{f}");
    }
    for run in ["tiny-s1", "tiny-s2", "tiny_identity-s1", "tiny_identity-s2"] {
        for f in ["per_eps.csv", "checkpoint.json", "loss_curve.csv"] {
            let (x, y) = (a.join(run).join(f), b.join(run).join(f));
            let read = |p: &PathBuf| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            if f == "loss_curve.csv" {
                assert_eq!(without_seconds(&x), without_seconds(&y), "{run}/{f}");
            } else {
                assert_eq!(read(&x), read(&y), "{run}/{f}");
            }
        }
    }
}

#[test]
fn jobs_lists_stable_ids_counts_and_costs() {
    let d = tempfile::tempdir().unwrap();
    let (code, out, err) = stiffx(&["jobs", &spec(), "--out", p(d.path())]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("4 jobs of"), "{out}");
    for (i, id) in ["tiny-s1", "tiny-s2", "tiny_identity-s1", "tiny_identity-s2"].iter().enumerate() {
        let line = out.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} in {out}"));
        assert!(line.trim_start().starts_with(&i.to_string()) && line.contains("missing"), "{line}");
        // The tiny config: 3 eps × 2 trajectories × 41 points × (K = 2 + base) samples, 30 epochs.
        assert!(line.contains("738") && line.contains("2.21e4"), "{line}");
    }
    let (code, out, _) = stiffx(&["jobs", &spec(), "--count"]);
    assert_eq!((code, out.trim()), (0, "4"));
    let (code, _, err) = stiffx(&["jobs", "configs/nope.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.toml") && err.contains("cannot read"), "{err}");
    let (code, _, err) = stiffx(&["run-job", &spec(), "--index", "4", "--out", p(d.path())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--index") && err.contains("below 4"), "{err}");
}

/// A SLURM array simulated on this machine: the generated sbatch script runs as four processes at
/// once with `SLURM_ARRAY_TASK_ID` = 0..3, then `collect` gives the same tables as a local sweep.
#[test]
fn a_simulated_slurm_array_collects_the_same_tables_as_a_local_sweep() {
    let d = tempfile::tempdir().unwrap();
    let (array, local) = (d.path().join("array"), d.path().join("local"));
    let (code, script, err) = stiffx(&["jobs", &spec(), "--out", p(&array), "--slurm"]);
    assert_eq!(code, 0, "{err}");
    assert!(script.contains("#SBATCH --array=0-3"), "{script}");
    assert!(script.contains("run-job") && script.contains("$SLURM_ARRAY_TASK_ID"), "{script}");
    let file = d.path().join("tiny.sbatch");
    std::fs::write(&file, &script).unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new("bash")
                .arg(&file)
                .env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("STIFFX", env!("CARGO_BIN_EXE_stiffx"))
                .current_dir(d.path())
                .spawn()
                .expect("bash runs")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    // Every task wrote only its own directory; nothing partial is left.
    let leftovers: Vec<_> = std::fs::read_dir(&array)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (code, md, err) = stiffx(&["collect", &spec(), "--out", p(&array), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("| tiny | 1 | asinh |"), "{md}");
    let (code, _, err) = stiffx(&["sweep", &spec(), "--out", p(&local), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_same_tables(&array, &local);
}

/// GNU parallel, the other engine the README documents: `seq 0 3 | parallel stiffx run-job … {}`.
/// CI installs it (`.ci/run`); elsewhere the test says it was skipped.
#[test]
fn gnu_parallel_runs_the_jobs_and_collect_matches_the_array() {
    let has = Command::new("parallel").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has {
        assert!(std::env::var_os("CI").is_none(), "CI must have GNU parallel (.ci/run installs it)");
        eprintln!("skipped: GNU parallel is not installed (apt-get install parallel)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("par");
    let cmd = format!(
        "seq 0 $(( $({exe} jobs {spec} --count) - 1 )) | parallel -j 4 {exe} run-job {spec} --out {out} --quiet --index {{}}",
        exe = env!("CARGO_BIN_EXE_stiffx"),
        spec = spec(),
        out = p(&out)
    );
    let st = Command::new("bash").arg("-c").arg(&cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
    let (code, _, err) = stiffx(&["collect", &spec(), "--out", p(&out), "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    let local = d.path().join("local");
    let (code, _, err) = stiffx(&["sweep", &spec(), "--out", p(&local), "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(without_seconds(&out.join("table1.csv")), without_seconds(&local.join("table1.csv")));
}

/// collect names the missing jobs (exit 3); a requeued job skips a finished run and redoes one that a
/// killed attempt left half-written, never mixing the two.
#[test]
fn collect_names_missing_jobs_and_requeued_jobs_redo_or_skip_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path();
    let (code, _, err) = stiffx(&["run-job", &spec(), "--out", p(out), "--index", "0,2", "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stiffx(&["collect", &spec(), "--out", p(out), "--quiet"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("2 of 4 jobs") && err.contains("tiny-s2") && err.contains("--index 1,3"), "{err}");

    // A finished job is skipped: its files are not touched.
    let ck = out.join("tiny-s1/checkpoint.json");
    let stamp = std::fs::metadata(&ck).unwrap().modified().unwrap();
    let (code, _, err) = stiffx(&["run-job", &spec(), "--out", p(out), "--index", "0", "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::metadata(&ck).unwrap().modified().unwrap(), stamp);

    // A killed attempt of job 1: a partial directory, and a directory without a marker holding a
    // stale file. Both go; the job's directory holds one attempt with its marker.
    let stale = out.join("tiny-s2");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("stale.txt"), "from an earlier attempt").unwrap();
    std::fs::create_dir_all(out.join(".tiny-s2.partial-99999")).unwrap();
    let (code, _, err) = stiffx(&["run-job", &spec(), "--out", p(out), "--index", "1", "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    assert!(!stale.join("stale.txt").exists() && stale.join("done.json").is_file());
    assert!(!out.join(".tiny-s2.partial-99999").exists());

    // A marker of another config (the spec changed) does not count as done.
    let done = stale.join("done.json");
    let text = std::fs::read_to_string(&done).unwrap();
    std::fs::write(&done, text.replace("\"config_sha256\": \"", "\"config_sha256\": \"0")).unwrap();
    let (code, out_text, _) = stiffx(&["jobs", &spec(), "--out", p(out)]);
    assert_eq!(code, 0);
    let line = out_text.lines().find(|l| l.contains("tiny-s2")).unwrap();
    assert!(line.contains("missing"), "{line}");
}

/// An eval spec: one job per checkpoint; each job's `per_eps.csv` equals its training run's byte for
/// byte (two code paths: the run loop and the eval job), and collect writes the mean ± std table.
#[test]
fn an_eval_spec_evaluates_checkpoints_as_jobs_and_reproduces_the_runs() {
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join("runs");
    let (code, _, err) = stiffx(&["run-job", &spec(), "--out", p(&runs), "--index", "0,1", "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    let file = d.path().join("eval.toml");
    std::fs::write(
        &file,
        "kind = \"eval\"\nout = \"unused\"\ncheckpoints = [\"runs/tiny-s1/checkpoint.json\", \"runs/tiny-s2/checkpoint.json\"]\n",
    )
    .unwrap();
    let out = d.path().join("eval");
    let (code, list, err) = stiffx(&["jobs", p(&file), "--out", p(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(list.starts_with("2 jobs") && list.contains("tiny-s1") && list.contains("tiny-s2"), "{list}");
    let (code, _, err) = stiffx(&["collect", p(&file), "--out", p(&out), "--quiet"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = stiffx(&["run-job", p(&file), "--out", p(&out), "--index", "0-1", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for id in ["tiny-s1", "tiny-s2"] {
        let a = std::fs::read(runs.join(id).join("per_eps.csv")).unwrap();
        let b = std::fs::read(out.join(id).join("per_eps.csv")).unwrap();
        assert_eq!(a, b, "{id}: the eval job reproduces the run's per-eps metrics");
    }
    let (code, md, err) = stiffx(&["collect", p(&file), "--out", p(&out), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("| tiny-s1 |") && md.contains("| mean ± std |"), "{md}");
    for f in ["eval.csv", "eval.md", "eps_curve.csv", "errors_vs_eps.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // A missing checkpoint is bad input naming the file; an unknown key names the key.
    std::fs::write(&file, "kind = \"eval\"\nout = \"x\"\ncheckpoints = [\"runs/nope/checkpoint.json\"]\n").unwrap();
    let (code, _, err) = stiffx(&["jobs", p(&file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope/checkpoint.json"), "{err}");
    std::fs::write(&file, "kind = \"eval\"\nout = \"x\"\ncheckpoints = []\nepss = [1.0]\n").unwrap();
    let (code, _, err) = stiffx(&["jobs", p(&file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("epss"), "{err}");
}
