//! One job of a spec, and how a worker runs it: all or nothing, into its own directory.
//!
//! A job runs in `<out>/.<id>.partial` (a hidden sibling of its directory, locked: [`RunDir`]), then
//! writes the marker [`DONE`] (`{"config_sha256": …}`, the SHA-256 of the resolved config's TOML) and
//! renames the whole directory to `<out>/<id>`. A directory without a matching marker is not a
//! result: the job is redone. A job that was stopped or killed continues from the resumable state
//! it saved, when that state belongs to the same config; otherwise it starts over. So a requeued array
//! task skips its finished job, resumes its interrupted one, and never mixes two attempts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::engine::rundir::RunDir;
use crate::io::sha256_hex;

use crate::config::Config;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::data::Data;
use crate::engine::pipeline::{RunMetrics, RunOptions, run_with_data};
use crate::error::{Error, Result};
use crate::eval::evaluate::{Evaluation, evaluate, write_time_windows, write_traces};
use crate::io::{write_csv, write_json};

pub use crate::engine::rundir::{DONE, Done, config_hash};

/// One run of an experiment: a resolved config and where its results go.
#[derive(Debug, Clone)]
pub struct Job {
    /// Place in the spec's order (what `--index` selects).
    pub index: usize,
    /// Stable id: the job's directory relative to the spec's output directory.
    pub id: String,
    /// The configuration's name within the spec (a sweep's config file stem, a compare cell).
    pub name: String,
    /// The resolved config, seed included (an eval job: its checkpoint's, with the spec's overrides).
    pub config: Config,
    /// What the job does.
    pub task: Task,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// The run loop on `config`: sample, label, train, evaluate (`metrics.json`).
    Train,
    /// Evaluate the checkpoint at `checkpoint` with `config`'s evaluation settings at `eps`
    /// (`evaluation.json`, `per_eps.csv`, `traces.csv`).
    Eval {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// The stiffness values to evaluate.
        eps: Vec<f64>,
    },
}

/// What a finished job left: a run's metrics or a checkpoint's evaluation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A [`Task::Train`] job's `metrics.json`.
    Run(Box<RunMetrics>),
    /// A [`Task::Eval`] job's `evaluation.json`.
    Eval(Box<Evaluation>),
}

impl Outcome {
    /// The run's metrics, `None` for an evaluation.
    pub fn run(self) -> Option<RunMetrics> {
        match self {
            Outcome::Run(m) => Some(*m),
            Outcome::Eval(_) => None,
        }
    }

    /// The evaluation of either kind.
    pub fn evaluation(&self) -> &Evaluation {
        match self {
            Outcome::Run(m) => &m.eval,
            Outcome::Eval(e) => e,
        }
    }
}

impl Job {
    /// The job's directory under `out`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join(&self.id)
    }

    /// The SHA-256 the job's marker records: of the config's TOML, and for an eval job also of the
    /// checkpoint file and the eps list.
    pub fn hash(&self) -> Result<String> {
        match &self.task {
            Task::Train => Ok(config_hash(&self.config)),
            Task::Eval { checkpoint, eps } => {
                let bytes = std::fs::read(checkpoint).map_err(|e| Error::io(checkpoint, e))?;
                let (toml, eps) = (self.config.to_toml(), format!("{eps:?}"));
                Ok(sha256_hex(&[toml.as_bytes(), &Sha256::digest(&bytes), eps.as_bytes()].concat()))
            }
        }
    }

    /// What the finished job in `out` left, or `None` when it has not finished (no marker, or a
    /// marker of another config or checkpoint: a stale result).
    pub fn finished(&self, out: &Path) -> Result<Option<Outcome>> {
        self.finished_with(out, &self.hash()?)
    }

    /// [`finished`](Self::finished) with the job's [`hash`](Self::hash) already computed.
    fn finished_with(&self, out: &Path, hash: &str) -> Result<Option<Outcome>> {
        let dir = self.dir(out);
        let Ok(text) = std::fs::read_to_string(dir.join(DONE)) else { return Ok(None) };
        let done: Done = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        };
        if done.config_sha256 != hash {
            return Ok(None);
        }
        let file = if self.task == Task::Train { "metrics.json" } else { "evaluation.json" };
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |e: serde_json::Error| Error::Checkpoint {
            path: path.clone(),
            message: format!("unreadable {file} of a finished job: {e}"),
        };
        Ok(Some(match self.task {
            Task::Train => Outcome::Run(Box::new(serde_json::from_str(&text).map_err(bad)?)),
            Task::Eval { .. } => Outcome::Eval(Box::new(serde_json::from_str(&text).map_err(bad)?)),
        }))
    }

    /// Runs the job into `out` unless it has finished (then its metrics are read back). `data` is
    /// a one-entry in-memory cache in front of the on-disk one ([`crate::engine::cache`]).
    pub fn run(&self, out: &Path, opts: &RunOptions, data: &mut HashMap<String, Data>) -> Result<Outcome> {
        // One hash per run: for an eval job it reads the checkpoint file.
        let hash = self.hash()?;
        if let Some(m) = self.finished_with(out, &hash)? {
            return Ok(m);
        }
        let dir = self.dir(out);
        let rd = open_dir(&dir)?;
        // An interrupted attempt of this very config continues from its saved state; anything else in
        // the working directory is stale.
        let resume = match self.task {
            Task::Train => saved_state(&rd, &hash, self, |s| s.continues_in(self.config.train.precision)),
            Task::Eval { .. } => None,
        };
        if resume.is_none() {
            rd.clear()?;
        }
        let label = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let result = match &self.task {
            Task::Train => {
                let key = crate::engine::cache::data_key(&self.config);
                if !data.contains_key(&key) {
                    data.clear();
                    data.insert(key.clone(), crate::engine::cache::dataset(out, &self.config)?);
                }
                let run_opts = RunOptions { out: Some(rd.work.clone()), progress: false, label, ..opts.clone() };
                run_with_data(&self.config, &run_opts, &data[&key], resume).map(|m| Outcome::Run(Box::new(m)))
            }
            Task::Eval { checkpoint, eps } => eval_into(&rd.work, checkpoint, &self.config, eps, opts),
        };
        match result {
            Ok(m) => {
                rd.commit(hash, &self.id)?;
                Ok(m)
            }
            // A stopped run keeps its state to resume; a failed one leaves nothing that could pass for
            // a result.
            Err(e @ Error::Interrupted { .. }) => Err(e.with_resume(&format!(
                "job {} resumes from its saved state when the same command runs again",
                self.id
            ))),
            Err(e) => {
                rd.abandon();
                Err(e)
            }
        }
    }
}

/// The state an interrupted attempt of `job` left in `rd`, when it belongs to the job's config (`hash`)
/// and `usable` accepts it; one that `usable` refuses gets a warning naming its file, and the job
/// starts over.
fn saved_state(
    rd: &RunDir,
    hash: &str,
    job: &Job,
    usable: impl Fn(&crate::train::TrainState) -> Result<()>,
) -> Option<crate::train::TrainState> {
    let r = rd.resumable().ok().flatten().filter(|r| r.config_sha256 == hash)?;
    match usable(&r.train_state) {
        Ok(()) => Some(r.train_state),
        Err(e) => {
            let file = rd.work.join(crate::engine::rundir::RESUME);
            eprintln!("warning: {}: {e}; job {} starts over", file.display(), job.id);
            None
        }
    }
}

/// The job directory `dir`'s working directory, opened (locked), after its parent is made and what
/// killed attempts of older versions left there (`.<id>.partial-<pid>`) is removed.
fn open_dir(dir: &Path) -> Result<RunDir> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let base = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        remove_partials(parent, &base)?;
    }
    RunDir::open(dir)
}

/// Runs the training jobs `group` (none finished, all of one shape:
/// [`crate::engine::together::trains_together`]) together into `out`
/// ([`crate::engine::together::run_together`]), each in its own directory, all or nothing per job.
/// A job stopped earlier continues from the state it saved (when it belongs to the same config),
/// together with the jobs saved at the same epoch. A job that diverges fails alone: its error is in
/// its place.
pub fn run_together(group: &[&Job], out: &Path, opts: &RunOptions) -> Result<Vec<Result<Outcome>>> {
    // What the group holds at once, against the memory limit, before anything is loaded.
    let estimate: f64 = group.iter().flat_map(|j| j.config.memory_estimate()).map(|(_, b)| b).sum();
    crate::resources::check(&[("--together", estimate)], crate::resources::limit())?;
    let mut dirs = Vec::with_capacity(group.len());
    let mut resume = Vec::with_capacity(group.len());
    for j in group {
        let rd = open_dir(&j.dir(out))?;
        let hash = j.hash()?;
        // A state that cannot join the group is this job's loss alone: it starts over.
        let state = saved_state(&rd, &hash, j, |s| crate::train::many::check_state(s, j.config.train.epochs as usize));
        if state.is_none() {
            rd.clear()?;
        }
        resume.push(state);
        dirs.push((rd, hash));
    }
    // One copy of each dataset, whatever the number of jobs that share it.
    let mut data: HashMap<String, Data> = HashMap::new();
    for j in group {
        let key = crate::engine::cache::data_key(&j.config);
        if let std::collections::hash_map::Entry::Vacant(e) = data.entry(key) {
            e.insert(crate::engine::cache::dataset(out, &j.config)?);
        }
    }
    let members: Vec<(&Config, RunOptions, &Data)> = group
        .iter()
        .zip(&dirs)
        .map(|(j, (rd, _))| {
            let label = j.dir(out).file_name().map(|n| n.to_string_lossy().into_owned());
            let d = &data[&crate::engine::cache::data_key(&j.config)];
            (&j.config, RunOptions { out: Some(rd.work.clone()), progress: false, label, ..opts.clone() }, d)
        })
        .collect();
    let together = match crate::engine::together::run_together(&members, resume) {
        Ok(t) => t,
        Err(e @ Error::Interrupted { .. }) => {
            return Err(e.with_resume(
                "the jobs trained together continue from their saved states when the same command runs again",
            ));
        }
        Err(e) => {
            for (rd, _) in dirs {
                rd.abandon();
            }
            return Err(e);
        }
    };
    let mut outcomes = Vec::with_capacity(group.len());
    // Members past a stop have no result: their directories stay, with their states, for the next attempt.
    for ((j, (rd, hash)), r) in group.iter().zip(dirs).zip(together.results) {
        outcomes.push(match r {
            Ok(m) => {
                rd.commit(hash, &j.id)?;
                Ok(Outcome::Run(Box::new(m)))
            }
            Err(e) => {
                rd.abandon();
                Err(e)
            }
        });
    }
    match together.stopped {
        Some(e) => Err(
            e.with_resume("the jobs evaluated are kept; the same command continues the others from their saved states")
        ),
        None => Ok(outcomes),
    }
}

/// Evaluates the checkpoint at `path` with `config` (its own, with a spec's overrides) at `eps` into
/// `dir`: `evaluation.json`, `per_eps.csv`, `traces.csv` and, for log-spaced times, `time_windows.csv`.
fn eval_into(dir: &Path, path: &Path, config: &Config, eps: &[f64], opts: &RunOptions) -> Result<Outcome> {
    let mut ck = Checkpoint::load(path)?;
    ck.config = config.clone();
    let device = opts.backend.device()?;
    let (ev, traces) = evaluate(&ck, eps, &device, opts.eval_precision, opts.jacobian)?;
    write_csv(&dir.join("per_eps.csv"), &ev.per_eps)?;
    write_traces(&dir.join("traces.csv"), &traces, config.system.dim())?;
    write_time_windows(dir, config, &traces)?;
    write_json(&dir.join("evaluation.json"), &ev)?;
    Ok(Outcome::Eval(Box::new(ev)))
}

/// Removes `.<base>.partial-*` directories in `parent`: what killed attempts of older versions left.
fn remove_partials(parent: &Path, base: &str) -> Result<()> {
    let prefix = format!(".{base}.partial-");
    let entries = std::fs::read_dir(parent).map_err(|e| Error::io(parent, e))?;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let p = e.path();
            std::fs::remove_dir_all(&p).map_err(|err| Error::io(&p, err))?;
        }
    }
    Ok(())
}

/// Parses `--index`: `I`, `A-B` (inclusive) or a comma-separated list of both (`0-3,7`), each below
/// `n`; returns the indices sorted, without repeats.
pub fn parse_indices(text: &str, n: usize) -> Result<Vec<usize>> {
    let allowed =
        || format!("job indices below {n} as I, A-B or a comma-separated list (`stiffx jobs SPEC` lists them)");
    let bad = || Error::invalid("--index", text, allowed());
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let i = part.parse::<usize>().map_err(|_| bad())?;
                (i, i)
            }
        };
        if a > b || b >= n {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `--index` text for a set of indices: runs of consecutive indices as `A-B`.
pub fn format_indices(idx: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { idx[i].to_string() } else { format!("{}-{}", idx[i], idx[j]) });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_parse_as_single_ranges_and_lists_and_refuse_the_rest() {
        assert_eq!(parse_indices("3", 12).unwrap(), vec![3]);
        assert_eq!(parse_indices("0-3,7,2", 12).unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_indices(" 10 - 11 ", 12).unwrap(), vec![10, 11]);
        for bad in ["12", "3-1", "", "a", "1-", "-1", "0-12"] {
            let e = parse_indices(bad, 12).unwrap_err().to_string();
            assert!(e.contains("--index") && e.contains("below 12"), "{bad}: {e}");
        }
        assert_eq!(format_indices(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(parse_indices(&format_indices(&[0, 1, 2, 3, 7, 9, 10]), 12).unwrap(), vec![0, 1, 2, 3, 7, 9, 10]);
    }
}
