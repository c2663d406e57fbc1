//! Every shell command of README.md is exercised, so none can rot. The commands are read from the
//! README's ```bash blocks (continuation lines joined, comments, blank lines and `$ ` prompts dropped)
//! and each must be matched by exactly one rule below; a new README command that no rule covers fails
//! this test, naming the command.
//!
//! Rules:
//! - **stiffx**: `stiffx …`, `./target/release/stiffx …` or `cargo run [flags] -- …` without shell
//!   operators: the same arguments on this build's binary, run in the repository (relative configs
//!   resolve as in the README) but writing only into a temporary folder. Paths under `runs/` and every
//!   relative `--out` are mapped into it; a writing subcommand without `--out` gets one (a spec's jobs
//!   share one output folder per ```bash block, so that `run-job` … `collect` see each other's jobs, and
//!   the SLURM and GNU parallel blocks each run the jobs afresh). `jobs`, which only lists, and the
//!   commands on the `configs/tiny*` files run as written; the others are smoke runs: any other config becomes `configs/tiny.toml`, any other
//!   spec `configs/tiny_sweep.toml` (the original config must still parse, the original spec must still
//!   expand, and a `run-job --index` must be valid for it), `run`/`compare` get `--epochs 2`, `run`
//!   without `--config` gets the tiny one, and `bench` gets a one-repetition, one-batch-size `train`
//!   part. A GPU/optional `--backend` runs as written when compiled in (CUDA and MPS only with
//!   `STIFFX_TEST_GPU=1`, as in `backends.rs`); otherwise the binary must refuse it naming its cargo
//!   feature (exit 2), and the smoke run is repeated on flex.
//! - **cargo/git** (`cargo test …`, `cargo build …`, `INSTA_UPDATE=… cargo test …`, `git diff …`): dry
//!   checks: every `--features` name is a feature of Cargo.toml, a test filter names an existing test,
//!   a `git diff` path exists.
//! - **slurm** (`stiffx jobs SPEC --slurm > FILE`, `sbatch FILE`, `sbatch --dependency=afterok:<id>
//!   --wrap "CMD"`): the script is generated for the smoke spec (and the original spec's array range is
//!   checked too), must hold `#SBATCH --array=0-<N-1>` and pass `bash -n`; `sbatch FILE` runs that
//!   script once per array task with `SLURM_ARRAY_TASK_ID` set, and `--wrap` runs its command by the
//!   stiffx rule.
//! - **parallel** (`… | parallel …`): the same pipeline through `bash -c`, with `stiffx` on `PATH`, the
//!   smoke spec and the block's output folder, when GNU parallel is installed; otherwise it is skipped
//!   (an error under `CI`) and the jobs are run with one `run-job` so that the block's `collect` still
//!   has them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;

use stiffx::backend::Backend;

/// One command of the README: its ```bash block (counted from 0), its first line (1-based) and its text.
#[derive(Debug, Clone)]
struct Cmd {
    block: usize,
    line: usize,
    text: String,
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "README.md:{}: `{}`", self.line, self.text)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stiffx"))
}

/// The commands of the ```bash blocks of `readme`.
fn extract(readme: &str) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    let (mut in_bash, mut block) = (false, 0);
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in readme.lines().enumerate() {
        let trimmed = raw.trim();
        if !in_bash {
            if trimmed == "```bash" {
                in_bash = true;
            }
            // Shell commands belong in ```bash blocks, where this test finds them.
            let lang = trimmed.strip_prefix("```").map(str::trim);
            assert!(
                !lang.is_some_and(|l| ["sh", "shell", "console", "zsh", "shell-session"].contains(&l)),
                "README.md:{}: shell commands go in ```bash blocks (this test reads only those)",
                i + 1
            );
            continue;
        }
        if trimmed.starts_with("```") {
            assert!(pending.is_none(), "README.md:{}: a ```bash block ends inside a continued line", i + 1);
            in_bash = false;
            block += 1;
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        let mut piece = trimmed;
        if text.is_empty() {
            if piece.is_empty() || piece.starts_with('#') {
                continue;
            }
            piece = piece.strip_prefix("$ ").unwrap_or(piece);
        }
        if let Some(head) = piece.strip_suffix('\\') {
            text.push_str(head.trim_end());
            text.push(' ');
            pending = Some((start, text));
        } else {
            text.push_str(piece);
            cmds.push(Cmd { block, line: start, text: text.trim().to_string() });
        }
    }
    assert!(!in_bash, "README.md: a ```bash block is not closed");
    cmds
}

/// Shell words: whitespace-separated, with '…' and "…" quoting (enough for the README's commands).
fn words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut quoted) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => (quote, quoted) = (Some(c), true),
            None if c.is_whitespace() => {
                if quoted || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    quoted = false;
                }
            }
            None => cur.push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in `{s}`");
    if quoted || !cur.is_empty() {
        out.push(cur);
    }
    out
}

const SHELL_OPERATORS: [&str; 8] = ["|", "||", "&&", "&", ";", ">", ">>", "<"];

/// The stiffx arguments of a direct invocation (`stiffx`, `./target/release/stiffx`,
/// `cargo run [cargo flags] -- …`), with the cargo flags of the last form.
fn stiffx_invocation(w: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    match w {
        [first, rest @ ..] if first == "stiffx" || first == "./target/release/stiffx" => Some((rest.to_vec(), vec![])),
        [cargo, run, rest @ ..] if cargo == "cargo" && run == "run" => {
            let dd = rest.iter().position(|a| a == "--")?;
            Some((rest[dd + 1..].to_vec(), rest[..dd].to_vec()))
        }
        _ => None,
    }
}

fn has_shell_syntax(text: &str, w: &[String]) -> bool {
    w.iter().any(|t| SHELL_OPERATORS.contains(&t.as_str())) || text.contains("$(") || text.contains('`')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Stiffx,
    CargoGit,
    Slurm,
    Parallel,
    Python,
}

const RULES: [Rule; 5] = [Rule::Stiffx, Rule::CargoGit, Rule::Slurm, Rule::Parallel, Rule::Python];

/// The words after leading `NAME=value` environment assignments.
fn without_env(w: &[String]) -> &[String] {
    let n = w
        .iter()
        .take_while(|t| {
            t.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        })
        .count();
    &w[n..]
}

impl Rule {
    fn matches(self, c: &Cmd) -> bool {
        let w = words(&c.text);
        let w = w.as_slice();
        match self {
            Rule::Stiffx => stiffx_invocation(w).is_some() && !has_shell_syntax(&c.text, w),
            Rule::CargoGit => {
                let w = without_env(w);
                matches!(w, [a, b, ..] if (a == "cargo" && (b == "test" || b == "build")) || (a == "git" && b == "diff"))
            }
            Rule::Slurm => {
                w.first().is_some_and(|f| f == "sbatch")
                    || (stiffx_invocation(w).is_some()
                        && w.iter().any(|t| t == "--slurm")
                        && w.iter().filter(|t| SHELL_OPERATORS.contains(&t.as_str())).map(String::as_str).eq([">"]))
            }
            Rule::Parallel => w.windows(2).any(|p| p[0] == "|" && p[1] == "parallel"),
            Rule::Python => {
                !has_shell_syntax(&c.text, w)
                    && match w {
                        [pip, install, path, ..] if pip == "pip" && install == "install" => {
                            path.starts_with("./python")
                        }
                        [bash, script, ..] if bash == "bash" => {
                            script.starts_with("scripts/") && script.ends_with(".sh")
                        }
                        [script, ..] if script.starts_with("scripts/") && script.ends_with(".sh") => true,
                        [py, script, ..] if py == "python" || py == "python3" => {
                            script.starts_with("examples/") || script.starts_with("benches/")
                        }
                        _ => false,
                    }
            }
        }
    }
}

/// Captured result of a process.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn stiffx(args: &[String]) -> Ran {
    Command::new(exe()).args(args).current_dir(root()).output().expect("the stiffx binary runs").into()
}

/// `I`, `A-B` and comma-separated lists of them, as `run-job --index` takes them.
fn parse_index(s: &str) -> Vec<usize> {
    s.split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (usize, usize) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
            a..=b
        })
        .collect()
}

/// A prepared stiffx command: the arguments to run and what was changed against the README.
struct Prepared {
    args: Vec<String>,
    notes: Vec<String>,
    /// The backend to fall back to flex from, when the README's is not runnable here.
    unrunnable_backend: Option<Backend>,
}

const WRITES: [&str; 8] = ["run", "eval", "sweep", "compare", "collect", "run-job", "diagnose", "bench"];
const SPEC_SUBS: [&str; 4] = ["jobs", "run-job", "collect", "sweep"];
const TINY_CONFIG: &str = "configs/tiny.toml";
const TINY_SPEC: &str = "configs/tiny_sweep.toml";

struct Tour {
    tmp: tempfile::TempDir,
    features: BTreeSet<String>,
    /// Job counts of the specs, by path as written.
    counts: BTreeMap<String, usize>,
    /// The sbatch scripts written so far (README name → file).
    scripts: BTreeMap<String, PathBuf>,
    report: Vec<String>,
}

fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value.to_string(),
        None => args.extend([flag.to_string(), value.to_string()]),
    }
}

impl Tour {
    fn new() -> Self {
        let cargo: toml::Table = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
        let features = cargo["features"].as_table().expect("[features] in Cargo.toml").keys().cloned().collect();
        Tour {
            tmp: tempfile::tempdir().unwrap(),
            features,
            counts: BTreeMap::new(),
            scripts: BTreeMap::new(),
            report: Vec::new(),
        }
    }

    fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// Number of jobs of a spec (`stiffx jobs SPEC --count`, read-only).
    fn count(&mut self, spec: &str, c: &Cmd) -> usize {
        if let Some(&n) = self.counts.get(spec) {
            return n;
        }
        let r = stiffx(&["jobs".into(), spec.into(), "--count".into()]);
        assert_eq!(r.code, 0, "{c}: `stiffx jobs {spec} --count` fails: {}", r.stderr);
        let n = r.stdout.trim().parse().unwrap_or_else(|_| panic!("{c}: `jobs {spec} --count` printed {:?}", r.stdout));
        self.counts.insert(spec.to_string(), n);
        n
    }

    /// The output folder that a spec's jobs share within one ```bash block.
    fn block_out(&self, c: &Cmd, spec: &str) -> String {
        let stem = Path::new(spec).file_stem().unwrap().to_string_lossy();
        self.tmp().join(format!("block{}", c.block)).join(&*stem).display().to_string()
    }

    /// A path of the README relative to the repository, mapped into the temporary folder.
    fn map_path(&self, p: &str) -> String {
        if Path::new(p).is_absolute() { p.to_string() } else { self.tmp().join(p).display().to_string() }
    }

    fn check_features(&self, c: &Cmd, list: &str) {
        for f in list.split(',').filter(|f| !f.is_empty()) {
            assert!(
                self.features.contains(f),
                "{c}: feature `{f}` is not in Cargo.toml's [features] {:?}",
                self.features
            );
        }
    }

    /// The stiffx rule's rewriting of a command's arguments. `jobs` only lists, so it keeps its spec
    /// and writes nowhere, unless `smoke_jobs` (its `--slurm` script is run later).
    fn prepare(&mut self, c: &Cmd, args: &[String], smoke_jobs: bool) -> Prepared {
        let mut args = args.to_vec();
        let mut notes = Vec::new();
        let sub = args.first().unwrap_or_else(|| panic!("{c}: no subcommand")).clone();
        let mut long = false;
        let mut spec = None;
        let as_written = sub == "jobs" && !smoke_jobs;
        // Configs and specs: the tiny ones as written, the others swapped for the tiny ones.
        for i in 1..args.len() {
            let a = args[i].clone();
            if !a.ends_with(".toml") || a.starts_with('-') {
                continue;
            }
            let is_spec = SPEC_SUBS.contains(&sub.as_str()) && args[i - 1] != "--config";
            let tiny = Path::new(&a).file_name().is_some_and(|n| n.to_string_lossy().starts_with("tiny"));
            if is_spec {
                if !tiny && !as_written {
                    // The original spec still expands; the smoke run uses the tiny one.
                    let n = self.count(&a, c);
                    notes.push(format!("spec {a} ({n} jobs) -> {TINY_SPEC}"));
                    if sub == "run-job"
                        && let Some(k) = args.iter().position(|x| x == "--index")
                    {
                        let idx = parse_index(&args[k + 1]);
                        assert!(idx.iter().all(|&j| j < n), "{c}: --index {} outside the {n} jobs of {a}", args[k + 1]);
                    }
                    args[i] = TINY_SPEC.to_string();
                    long = true;
                }
                spec = Some((a, args[i].clone()));
            } else if !tiny {
                stiffx::config::Config::from_file(&root().join(&a))
                    .unwrap_or_else(|e| panic!("{c}: the README's config {a} does not load: {e}"));
                notes.push(format!("config {a} (loads) -> {TINY_CONFIG}"));
                args[i] = TINY_CONFIG.to_string();
                long = true;
            }
        }
        if sub == "run" && !args.iter().any(|a| a == "--config") {
            args.extend(["--config".to_string(), TINY_CONFIG.to_string()]);
            notes.push(format!("no --config -> --config {TINY_CONFIG}"));
            long = true;
        }
        if sub == "bench" {
            long = true;
            for (flag, value) in
                [("--reps", "1"), ("--batch", "256"), ("--shards", "1"), ("--points", "100"), ("--only", "train")]
            {
                if !args.iter().any(|a| a == flag) {
                    args.extend([flag.to_string(), value.to_string()]);
                    notes.push(format!("{flag} {value}"));
                }
            }
        }
        if long && (sub == "run" || sub == "compare") {
            set_flag(&mut args, "--epochs", "2");
            notes.push("--epochs 2".into());
        }
        // run-job on the smoke spec: the README's indices clamped to its jobs.
        if let Some((orig, now)) = &spec
            && orig != now
            && sub == "run-job"
            && let Some(k) = args.iter().position(|x| x == "--index")
        {
            let n = self.count(now, c);
            let idx: BTreeSet<usize> = parse_index(&args[k + 1]).into_iter().map(|j| j.min(n - 1)).collect();
            let new = idx.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
            notes.push(format!("--index {} -> {new}", args[k + 1]));
            args[k + 1] = new;
        }
        // Outputs: into the temporary folder.
        for i in 1..args.len() {
            let prev = args[i - 1].clone();
            if (prev == "--out" || args[i].starts_with("runs/")) && !args[i].starts_with('-') {
                let mapped = self.map_path(&args[i]);
                if mapped != args[i] {
                    args[i] = mapped;
                }
            }
        }
        if !args.iter().any(|a| a == "--out")
            && !as_written
            && (WRITES.contains(&sub.as_str()) || SPEC_SUBS.contains(&sub.as_str()))
        {
            let out = match (&spec, sub.as_str()) {
                (Some((_, now)), _) => self.block_out(c, now),
                (None, "bench") => self.tmp().join(format!("auto/l{}.json", c.line)).display().to_string(),
                _ => self.tmp().join(format!("auto/l{}", c.line)).display().to_string(),
            };
            args.extend(["--out".to_string(), out]);
            notes.push("--out <tmp>".into());
        }
        // Backends beyond the default: as written where runnable here, else refused by name.
        let mut unrunnable_backend = None;
        if let Some(k) = args.iter().position(|a| a == "--backend") {
            for name in args[k + 1].split(',') {
                let b = Backend::from_str(name).unwrap_or_else(|e| panic!("{c}: --backend {name}: {e}"));
                self.check_features(c, b.feature());
                let gpu_only = matches!(b, Backend::TchCuda | Backend::TchMps);
                if !b.is_compiled() || (gpu_only && std::env::var_os("STIFFX_TEST_GPU").is_none()) {
                    unrunnable_backend = Some(b);
                }
            }
        }
        Prepared { args, notes, unrunnable_backend }
    }

    /// The stiffx rule: prepare, run (with the backend fallback), check.
    fn run_stiffx(&mut self, c: &Cmd, args: &[String]) -> Ran {
        let p = self.prepare(c, args, false);
        let mut how = if p.notes.is_empty() {
            "ran as written".to_string()
        } else {
            format!("smoke run ({})", p.notes.join("; "))
        };
        let mut args = p.args;
        if let Some(b) = p.unrunnable_backend {
            if !b.is_compiled() {
                let r = stiffx(&args);
                let want = format!("--features {}", b.feature());
                assert!(
                    r.code == 2 && r.stderr.contains(&want),
                    "{c}: backend {b} (not compiled in) should exit 2 naming `{want}`; got {}: {}",
                    r.code,
                    r.stderr
                );
                how += &format!("; --backend {b} refused as not compiled in (exit 2, names `{want}`), rerun on flex");
            } else {
                how += &format!("; --backend {b} needs its device (STIFFX_TEST_GPU=1), run on flex");
            }
            let k = args.iter().position(|a| a == "--backend").unwrap();
            args[k + 1] = "flex".into();
        }
        let r = stiffx(&args);
        assert_eq!(r.code, 0, "{c} fails (run as `stiffx {}`):\n{}\n{}", args.join(" "), r.stdout, r.stderr);
        let out = args.iter().position(|a| a == "--out").map(|k| PathBuf::from(&args[k + 1]));
        match args[0].as_str() {
            "run" => {
                let out = out.unwrap();
                let figures = !args.iter().any(|a| a == "--no-figures");
                let files = ["metrics.json", "checkpoint.json", "config.toml", "per_eps.csv", "figures/loss.png"];
                for f in files.into_iter().filter(|f| figures || !f.ends_with(".png")) {
                    assert!(out.join(f).is_file(), "{c}: no {f} in {}", out.display());
                }
            }
            "compare" => {
                let out = out.unwrap();
                for f in ["compare.md", "compare.csv", "compare.png"] {
                    assert!(out.join(f).is_file(), "{c}: no {f} in {}", out.display());
                }
            }
            "jobs" if args.iter().any(|a| a == "--count") => {
                assert!(r.stdout.trim().parse::<usize>().is_ok(), "{c}: --count printed {:?}", r.stdout);
            }
            "jobs" => assert!(r.stdout.contains(" jobs of "), "{c}: {}", r.stdout),
            "list" => assert!(r.stdout.contains("davis-skodje"), "{c}: {}", r.stdout),
            _ => {}
        }
        self.report.push(format!("stiffx   {c}: {how}"));
        r
    }

    /// The cargo/git rule: dry checks of features, test filters and paths.
    fn dry_check(&mut self, c: &Cmd) {
        let all = words(&c.text);
        let env = &all[..all.len() - without_env(&all).len()];
        for e in env {
            let (k, v) = e.split_once('=').unwrap();
            match k {
                "INSTA_UPDATE" => {
                    assert!(["always", "auto", "new", "unseen", "no", "force"].contains(&v), "{c}: INSTA_UPDATE={v}")
                }
                _ => panic!("{c}: no dry check for the environment variable {k}"),
            }
        }
        let w = without_env(&all);
        let mut checked = Vec::new();
        match (w[0].as_str(), w[1].as_str()) {
            ("git", "diff") => {
                for p in &w[2..] {
                    assert!(!p.starts_with('-'), "{c}: no dry check for `git diff {p}`");
                    assert!(root().join(p).exists(), "{c}: {p} does not exist");
                    checked.push(format!("{p} exists"));
                }
            }
            ("cargo", sub) => {
                let mut i = 2;
                while i < w.len() {
                    let a = w[i].as_str();
                    match a {
                        "--locked" => {
                            assert!(root().join("Cargo.lock").is_file(), "{c}: --locked without Cargo.lock");
                            checked.push("Cargo.lock exists".into());
                        }
                        "--release" | "--all-features" | "--no-default-features" | "--lib" | "--bins" => {}
                        "--features" | "-F" => {
                            i += 1;
                            self.check_features(c, &w[i]);
                            checked.push(format!("features {} exist", w[i]));
                        }
                        "--test" => {
                            i += 1;
                            let t = &w[i];
                            let found = root().join(format!("tests/{t}.rs")).is_file()
                                || root().join(format!("tests/{t}/main.rs")).is_file();
                            assert!(found, "{c}: no test target {t}");
                            checked.push(format!("test target {t} exists"));
                        }
                        "--" => break,
                        _ if a.starts_with('-') => panic!("{c}: no dry check for the cargo flag {a}"),
                        filter if sub == "test" => {
                            let names = test_names();
                            assert!(names.iter().any(|n| n.contains(filter)), "{c}: the filter {filter} names no test");
                            checked.push(format!("filter {filter} names a test"));
                        }
                        other => panic!("{c}: no dry check for the argument {other}"),
                    }
                    i += 1;
                }
            }
            _ => unreachable!(),
        }
        self.report.push(format!(
            "dry      {c}: {}",
            if checked.is_empty() { "nothing to check".into() } else { checked.join(", ") }
        ));
    }

    /// The slurm rule.
    fn slurm(&mut self, c: &Cmd) {
        let w = words(&c.text);
        if w[0] == "sbatch" {
            match &w[1..] {
                [file] => {
                    let script = self
                        .scripts
                        .get(file)
                        .unwrap_or_else(|| panic!("{c}: {file} was not written by an earlier README command"))
                        .clone();
                    let text = std::fs::read_to_string(&script).unwrap();
                    let range = text.lines().find_map(|l| l.strip_prefix("#SBATCH --array=")).expect("array line");
                    let (a, b) = range.split_once('-').unwrap();
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    // The array tasks, two at a time (the machine has few cores).
                    for chunk in (a..=b).collect::<Vec<_>>().chunks(2) {
                        let children: Vec<_> = chunk
                            .iter()
                            .map(|i| {
                                Command::new("bash")
                                    .arg(&script)
                                    .env("SLURM_ARRAY_TASK_ID", i.to_string())
                                    .env("STIFFX", exe())
                                    .current_dir(self.tmp())
                                    .stdout(Stdio::piped())
                                    .stderr(Stdio::piped())
                                    .spawn()
                                    .expect("bash runs")
                            })
                            .collect();
                        for (i, child) in chunk.iter().zip(children) {
                            let r = Ran::from(child.wait_with_output().unwrap());
                            assert_eq!(r.code, 0, "{c}: array task {i} fails:\n{}", r.stderr);
                        }
                    }
                    self.report
                        .push(format!("slurm    {c}: ran the script's array tasks {a}-{b} with SLURM_ARRAY_TASK_ID"));
                }
                [dep, wrap, cmd] if wrap == "--wrap" => {
                    assert!(dep.starts_with("--dependency=afterok:"), "{c}: {dep}");
                    let inner = Cmd { text: cmd.clone(), ..c.clone() };
                    assert!(Rule::Stiffx.matches(&inner), "{c}: the --wrap command is not a stiffx command");
                    let (args, _) = stiffx_invocation(&words(cmd)).unwrap();
                    self.run_stiffx(&inner, &args);
                    self.report
                        .push(format!("slurm    {c}: checked --dependency=afterok:, ran the --wrap command (above)"));
                }
                _ => panic!("{c}: no rule for this sbatch form"),
            }
            return;
        }
        // stiffx jobs SPEC --slurm > FILE
        let gt = w.iter().position(|t| t == ">").unwrap();
        assert_eq!(w.len(), gt + 2, "{c}: expected `… > FILE`");
        let file = w[gt + 1].clone();
        let (args, _) = stiffx_invocation(&w[..gt]).unwrap();
        assert_eq!(args[0], "jobs", "{c}: --slurm is an option of `jobs`");
        // The original spec's array range, read-only.
        let spec = args.iter().skip(1).find(|a| a.ends_with(".toml")).unwrap_or_else(|| panic!("{c}: no spec")).clone();
        let n = self.count(&spec, c);
        let r = stiffx(&args);
        assert_eq!(r.code, 0, "{c} as written fails: {}", r.stderr);
        assert!(r.stdout.contains(&format!("#SBATCH --array=0-{}", n - 1)), "{c}: {}", r.stdout);
        // The script the smoke spec gets, written and syntax-checked, for the `sbatch` line.
        let p = self.prepare(c, &args, true);
        let r = stiffx(&p.args);
        assert_eq!(r.code, 0, "{c} on the smoke spec fails: {}", r.stderr);
        let tiny_n = self.count(TINY_SPEC, c);
        assert!(r.stdout.contains(&format!("#SBATCH --array=0-{}", tiny_n - 1)), "{c}: {}", r.stdout);
        let path = self.tmp().join(&file);
        std::fs::write(&path, &r.stdout).unwrap();
        let syntax = Ran::from(Command::new("bash").arg("-n").arg(&path).output().unwrap());
        assert_eq!(syntax.code, 0, "{c}: the script fails `bash -n`: {}", syntax.stderr);
        self.scripts.insert(file, path);
        self.report.push(format!(
            "slurm    {c}: as written (--array=0-{}), then on {TINY_SPEC} ({}) into <tmp>/FILE: --array=0-{}, bash -n ok",
            n - 1,
            p.notes.join("; "),
            tiny_n - 1
        ));
    }

    /// The GNU parallel rule.
    fn parallel(&mut self, c: &Cmd) {
        let w = words(&c.text);
        let spec = w.iter().find(|a| a.ends_with(".toml")).unwrap_or_else(|| panic!("{c}: no spec")).clone();
        self.count(&spec, c);
        let tiny = root().join(TINY_SPEC).display().to_string();
        let out = self.block_out(c, TINY_SPEC);
        let last = w.iter().rposition(|t| t == "|").unwrap();
        let tail = &w[last + 1..];
        assert!(
            tail.windows(2).any(|p| p[0] == "stiffx" && p[1] == "run-job"),
            "{c}: parallel runs no `stiffx run-job`"
        );
        let has = Command::new("parallel").arg("--version").output().is_ok_and(|o| o.status.success());
        if !has {
            assert!(std::env::var_os("CI").is_none(), "{c}: CI must have GNU parallel (.ci/run installs it)");
            eprintln!("skipped: GNU parallel is not installed: {c}");
            let n = self.count(TINY_SPEC, c);
            let args: Vec<String> =
                ["run-job", TINY_SPEC, "--index", &format!("0-{}", n - 1), "--out", &out].map(String::from).to_vec();
            let r = stiffx(&args);
            assert_eq!(r.code, 0, "{c}: {}", r.stderr);
            self.report.push(format!("parallel {c}: SKIPPED (no GNU parallel); its jobs ran by one run-job"));
            return;
        }
        let script = format!("set -euo pipefail\n{} --out '{out}'", c.text.replace(&spec, &tiny));
        let path = format!("{}:{}", exe().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
        let r = Ran::from(
            Command::new("bash").arg("-c").arg(&script).env("PATH", path).current_dir(root()).output().unwrap(),
        );
        assert_eq!(r.code, 0, "{c} fails (run as `{script}`):\n{}\n{}", r.stdout, r.stderr);
        self.report.push(format!("parallel {c}: bash -c with stiffx on PATH, {spec} -> {TINY_SPEC}, --out <tmp>"));
    }
}

/// Names of the tests in this crate's test binaries and unit tests, `module::function`, for filters.
fn test_names() -> Vec<String> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![root().join("tests"), root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().with_extension("");
        let parts: Vec<String> = rel.iter().skip(1).map(|s| s.to_string_lossy().into_owned()).collect();
        // tests/all/x.rs -> x (the binary `all`), src/a/b.rs -> a::b.
        let module = if rel.starts_with("tests") && parts.len() > 1 { parts[1..].join("::") } else { parts.join("::") };
        let text = std::fs::read_to_string(&f).unwrap();
        let mut after_test = false;
        for l in text.lines().map(str::trim) {
            if l.starts_with("#[test]") {
                after_test = true;
            } else if after_test {
                if let Some(rest) = l.strip_prefix("fn ").or_else(|| l.strip_prefix("async fn ")) {
                    let name: String = rest.chars().take_while(|ch| ch.is_alphanumeric() || *ch == '_').collect();
                    names.push(format!("{module}::{name}"));
                    names.push(format!("{module}::tests::{name}"));
                    after_test = false;
                } else if !l.starts_with("#[") {
                    after_test = false;
                }
            }
        }
    }
    names
}

#[test]
fn every_readme_command_is_exercised() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cmds = extract(&readme);
    assert!(cmds.len() > 10, "only {} commands extracted from README.md's ```bash blocks: {cmds:?}", cmds.len());

    // Every command matched by exactly one rule, checked for all before any runs.
    let mut bad = Vec::new();
    let mut rules = Vec::new();
    for c in &cmds {
        let m: Vec<Rule> = RULES.into_iter().filter(|r| r.matches(c)).collect();
        match m.as_slice() {
            [r] => rules.push(*r),
            [] => bad.push(format!("{c}: matched by no rule")),
            _ => bad.push(format!("{c}: matched by several rules {m:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "README commands without exactly one test rule (add a rule in tests/all/readme.rs):\n{}",
        bad.join("\n")
    );

    let mut tour = Tour::new();
    for (c, rule) in cmds.iter().zip(rules) {
        match rule {
            Rule::Stiffx => {
                let w = words(&c.text);
                let (args, cargo_flags) = stiffx_invocation(&w).unwrap();
                for pair in cargo_flags.windows(2) {
                    if pair[0] == "--features" || pair[0] == "-F" {
                        tour.check_features(c, &pair[1]);
                    }
                }
                tour.run_stiffx(c, &args);
            }
            Rule::CargoGit => tour.dry_check(c),
            Rule::Slurm => tour.slurm(c),
            Rule::Parallel => tour.parallel(c),
            Rule::Python => python_dry_check(c),
        }
    }
    println!("{} README commands:\n{}", cmds.len(), tour.report.join("\n"));
}

/// The Python rule's dry check (the Python tests themselves run in `scripts/python_tests.sh`, which CI
/// runs after `cargo test`): `pip install ./python` needs a maturin project there; a script must exist
/// and parse (`bash -n`, or Python's `py_compile` when a `python3` is on `PATH`).
fn python_dry_check(c: &Cmd) {
    let w = words(&c.text);
    let file = match w.as_slice() {
        [_, _, path, ..] if w[0] == "pip" => {
            let project = root().join(path.trim_start_matches("./").split('[').next().unwrap()).join("pyproject.toml");
            let text = std::fs::read_to_string(&project).unwrap_or_else(|e| panic!("{c}: {}: {e}", project.display()));
            assert!(
                text.contains("build-backend = \"maturin\""),
                "{c}: {} does not build with maturin",
                project.display()
            );
            return;
        }
        [bash, script, ..] if bash == "bash" => script.clone(),
        [py, script, ..] if py.starts_with("python") => script.clone(),
        [script, ..] => script.clone(),
        [] => unreachable!(),
    };
    let path = root().join(&file);
    assert!(path.is_file(), "{c}: {} does not exist", path.display());
    let check = if file.ends_with(".sh") {
        Command::new("bash").arg("-n").arg(&path).status()
    } else {
        Command::new("python3").args(["-m", "py_compile"]).arg(&path).status()
    };
    match check {
        Ok(s) => assert!(s.success(), "{c}: {} does not parse", path.display()),
        Err(e) if file.ends_with(".py") => println!("{c}: no python3 to compile it ({e})"),
        Err(e) => panic!("{c}: cannot run bash: {e}"),
    }
}

#[test]
fn extraction_joins_continuations_and_skips_comments() {
    let md = "text\n```bash\n# a comment\n\n$ stiffx run \\\n  --config configs/tiny.toml\nstiffx list\n```\n```rust\nfn x() {}\n```\n";
    let cmds = extract(md);
    let texts: Vec<&str> = cmds.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["stiffx run --config configs/tiny.toml", "stiffx list"]);
    assert_eq!((cmds[0].line, cmds[1].line), (5, 7));
    assert_eq!(words(r#"sbatch --wrap "stiffx collect a.toml" x"#), ["sbatch", "--wrap", "stiffx collect a.toml", "x"]);
}

fn cmd(text: &str) -> Cmd {
    Cmd { block: 0, line: 1, text: text.to_string() }
}

#[test]
fn each_command_form_has_exactly_its_rule_and_others_none() {
    let cases = [
        ("stiffx list", Some(Rule::Stiffx)),
        ("./target/release/stiffx run --config configs/tiny.toml", Some(Rule::Stiffx)),
        ("cargo run --release --features tch -- run --backend tch-cuda", Some(Rule::Stiffx)),
        ("cargo test --locked", Some(Rule::CargoGit)),
        ("INSTA_UPDATE=always cargo test --locked registry::listing", Some(Rule::CargoGit)),
        ("cargo build --release --features wgpu,tch", Some(Rule::CargoGit)),
        ("git diff tests/all/snapshots", Some(Rule::CargoGit)),
        ("stiffx jobs configs/table1.toml --slurm > job.sbatch", Some(Rule::Slurm)),
        ("sbatch job.sbatch", Some(Rule::Slurm)),
        (r#"sbatch --dependency=afterok:<jobid> --wrap "stiffx collect configs/table1.toml""#, Some(Rule::Slurm)),
        ("seq 0 3 | parallel -j 4 stiffx run-job configs/table1.toml --index {}", Some(Rule::Parallel)),
        // Forms no rule knows: the README test must fail on them.
        ("stiffx jobs configs/table1.toml > jobs.txt", None),
        ("stiffx run && stiffx list", None),
        ("cargo install stiffx", None),
        ("git clone https://example.org/stiffx", None),
        ("docker run stiffx", None),
        ("pip install stiffx", None),
        ("pip install ./python", Some(Rule::Python)),
        ("scripts/python_tests.sh", Some(Rule::Python)),
        ("python examples/scipy_stiff.py", Some(Rule::Python)),
        ("python examples/x.py | tee log", None),
    ];
    for (text, want) in cases {
        let got: Vec<Rule> = RULES.into_iter().filter(|r| r.matches(&cmd(text))).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{text}");
    }
}

#[test]
fn long_commands_become_smoke_runs_in_a_temporary_folder() {
    let mut tour = Tour::new();
    let tmp = tour.tmp().display().to_string();
    let prep = |tour: &mut Tour, text: &str| {
        let (args, _) = stiffx_invocation(&words(text)).unwrap();
        tour.prepare(&cmd(text), &args, false).args.join(" ")
    };
    assert_eq!(
        prep(&mut tour, "stiffx run --system van-der-pol --epochs 500"),
        format!("run --system van-der-pol --epochs 2 --config configs/tiny.toml --out {tmp}/auto/l1")
    );
    assert_eq!(
        prep(&mut tour, "stiffx bench --batch 8192"),
        format!("bench --batch 8192 --reps 1 --shards 1 --points 100 --only train --out {tmp}/auto/l1.json")
    );
    assert_eq!(
        prep(&mut tour, "stiffx compare --systems davis-skodje --config configs/compare.toml --out runs/c"),
        format!("compare --systems davis-skodje --config configs/tiny.toml --out {tmp}/runs/c --epochs 2")
    );
    assert_eq!(
        prep(&mut tour, "stiffx run-job configs/table1.toml --index 2,9-11"),
        format!("run-job configs/tiny_sweep.toml --index 2,3 --out {tmp}/block0/tiny_sweep")
    );
    assert_eq!(
        prep(&mut tour, "stiffx jobs configs/compare_spec.toml --count"),
        "jobs configs/compare_spec.toml --count"
    );
    assert_eq!(
        prep(&mut tour, "stiffx diagnose --config configs/tiny.toml"),
        format!("diagnose --config configs/tiny.toml --out {tmp}/auto/l1")
    );
}
