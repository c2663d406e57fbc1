//! Spec files and their expansion into jobs.
//!
//! Two kinds, told apart by `kind` (default `"sweep"`):
//!
//! ```toml
//! # a sweep (the paper's Table 1): configs × seeds; run ids `<config stem>-s<seed>`
//! out = "runs/table1"
//! seeds = [1, 2, 3]
//! configs = ["baseline.toml", "asinh.toml", "cloud.toml", "asinh_cloud.toml"]  # relative to this file
//! epochs = 60                                                                   # optional override
//! ```
//!
//! ```toml
//! # a comparison: systems × transforms × samplers × seeds; run ids `<system>/<transform>-<sampler>-s<seed>`
//! kind = "compare"
//! out = "runs/compare"
//! systems = ["davis-skodje", "robertson"]
//! transforms = ["identity", "asinh"]
//! samplers = ["trajectory", "cloud"]
//! seeds = [1, 2, 3]
//! configs = ["compare.toml", "robertson.toml"]   # base configs, relative to this file
//! epochs = 30                                     # optional
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compare::{self, CompareSpec};
use super::evalspec::{self, EvalFile};
use super::job::{Job, Outcome, Task};
use super::sweep::{self, SweepConfig};
use crate::config::Config;
use crate::engine::pipeline::{RunMetrics, RunOptions};
use crate::error::{Error, Result};
use crate::eval::evaluate::Evaluation;

/// A compare spec file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareFile {
    /// Always `"compare"`.
    pub kind: String,
    /// Output directory (relative to the working directory).
    pub out: PathBuf,
    /// Registered system names.
    pub systems: Vec<String>,
    /// Registered transform names.
    pub transforms: Vec<String>,
    /// Registered sampler names.
    pub samplers: Vec<String>,
    /// Seeds of every combination.
    pub seeds: Vec<u64>,
    /// Base config files, relative to the spec file (see `engine::compare`).
    pub configs: Vec<PathBuf>,
    /// Optional epoch override.
    #[serde(default)]
    pub epochs: Option<i64>,
}

/// What a spec runs.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A sweep: configs × seeds.
    Sweep(SweepConfig),
    /// Several checkpoints evaluated, one job each ([`super::evalspec`]).
    Eval(EvalFile),
    /// A comparison across systems × transforms × samplers × seeds.
    Compare {
        /// The base configs.
        bases: Vec<Config>,
        /// What to compare.
        spec: CompareSpec,
    },
}

/// A loaded spec: its file, output directory and kind.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file.
    pub path: PathBuf,
    /// Output directory (the file's `out`, or the command line's `--out`).
    pub out: PathBuf,
    /// What it runs.
    pub kind: Kind,
}

/// The results of a spec's jobs, in job order: `None` for jobs that have not finished.
pub type Results = Vec<(Job, Option<Outcome>)>;

impl Spec {
    /// Reads a spec file; `out` overrides its output directory.
    pub fn load(path: &Path, out: Option<&Path>) -> Result<Self> {
        let bad = |m: String| Error::Config { path: path.to_path_buf(), message: m };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let kind = match table.get("kind") {
            None => "sweep",
            Some(toml::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(Error::invalid("kind", other, "\"sweep\" (the default), \"compare\" or \"eval\""));
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let (file_out, kind) = match kind {
            "sweep" => {
                let mut t = table.clone();
                t.remove("kind");
                let sc: SweepConfig = t.try_into().map_err(|e: toml::de::Error| bad(e.to_string()))?;
                (sc.out.clone(), Kind::Sweep(sc))
            }
            "compare" => {
                let cf: CompareFile = table.try_into().map_err(|e: toml::de::Error| bad(e.to_string()))?;
                if cf.configs.is_empty() {
                    return Err(Error::invalid("configs", "[]", "at least one base config file"));
                }
                let bases = cf.configs.iter().map(|c| Config::from_file(&dir.join(c))).collect::<Result<Vec<_>>>()?;
                let spec = CompareSpec {
                    systems: cf.systems,
                    transforms: cf.transforms,
                    samplers: cf.samplers,
                    seeds: cf.seeds,
                    epochs: cf.epochs,
                };
                (cf.out, Kind::Compare { bases, spec })
            }
            "eval" => {
                let ef: EvalFile = table.try_into().map_err(|e: toml::de::Error| bad(e.to_string()))?;
                (ef.out.clone(), Kind::Eval(ef))
            }
            other => return Err(Error::invalid("kind", other, "\"sweep\" (the default), \"compare\" or \"eval\"")),
        };
        let out = out.map(Path::to_path_buf).unwrap_or(file_out);
        Ok(Spec { path: path.to_path_buf(), out, kind })
    }

    /// Every job of the spec, in the spec's order (index = position); each config validated.
    pub fn jobs(&self) -> Result<Vec<Job>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let trains = |named: Vec<(String, Config)>| -> Vec<Job> {
            named
                .into_iter()
                .enumerate()
                .map(|(index, (name, config))| Job {
                    index,
                    id: format!("{name}-s{}", config.seed),
                    name,
                    config,
                    task: Task::Train,
                })
                .collect()
        };
        Ok(match &self.kind {
            Kind::Sweep(sc) => trains(sweep::configs(sc, dir)?),
            Kind::Compare { bases, spec } => trains(compare::jobs(bases, spec)?),
            Kind::Eval(ef) => evalspec::jobs(ef, dir)?
                .into_iter()
                .enumerate()
                .map(|(index, (name, config, task))| Job { index, id: name.clone(), name, config, task })
                .collect(),
        })
    }

    /// The results of every job found finished in the output directory.
    pub fn results(&self) -> Result<Results> {
        self.jobs()?
            .into_iter()
            .map(|j| {
                let m = j.finished(&self.out)?;
                Ok((j, m))
            })
            .collect()
    }

    /// Builds the spec's tables, figures and report from finished jobs and returns the Markdown
    /// summary. Every job must have finished: otherwise [`Error::Incomplete`] names the missing ones.
    pub fn collect(&self, results: &Results, opts: &RunOptions) -> Result<String> {
        let missing: Vec<&Job> = results.iter().filter(|(_, m)| m.is_none()).map(|(j, _)| j).collect();
        if !missing.is_empty() {
            let mut ids: Vec<String> = missing.iter().take(5).map(|j| j.id.clone()).collect();
            if missing.len() > 5 {
                ids.push(format!("… ({} more)", missing.len() - 5));
            }
            return Err(Error::Incomplete {
                spec: self.path.display().to_string(),
                missing: missing.len(),
                total: results.len(),
                ids: ids.join(", "),
                indices: super::job::format_indices(&missing.iter().map(|j| j.index).collect::<Vec<_>>()),
            });
        }
        if let Kind::Eval(_) = self.kind {
            let done: Vec<(String, Config, Evaluation)> = results
                .iter()
                .filter_map(|(j, m)| m.as_ref().map(|m| (j.id.clone(), j.config.clone(), m.evaluation().clone())))
                .collect();
            return evalspec::tables(&self.out, &done, opts.figures);
        }
        let done = train_runs(results);
        match &self.kind {
            Kind::Sweep(sc) => sweep::tables(sc, &self.out, done, opts).map(|(_, md)| md),
            Kind::Compare { bases, spec } => compare::tables(bases, spec, &self.out, done, opts).map(|(_, md)| md),
            Kind::Eval(_) => unreachable!("eval specs return above"),
        }
    }

    /// Expands and runs every unfinished job here, jobs that share a dataset one after the other
    /// (`stiffx sweep` and `stiffx compare` then collect); returns every job with its outcome, in job
    /// order.
    pub fn run_all(&self, opts: &RunOptions) -> Result<Results> {
        let jobs = self.jobs()?;
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_cached_key(|&i| (super::cache::data_key(&jobs[i].config), i));
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        for (i, o) in order.iter().zip(run_indices(&jobs, &order, &self.out, opts)?) {
            outcomes[*i] = Some(o);
        }
        Ok(jobs.into_iter().zip(outcomes).collect())
    }
}

/// The finished training runs of `results` as `(name, config, metrics)`, in job order (evaluations
/// and unfinished jobs left out): what the sweep and compare tables are built from.
pub fn train_runs(results: &Results) -> Vec<(String, Config, RunMetrics)> {
    results
        .iter()
        .filter_map(|(j, m)| m.clone().and_then(Outcome::run).map(|m| (j.name.clone(), j.config.clone(), m)))
        .collect()
}

/// Runs the jobs at `indices` (in that order) in this process, with one progress bar; returns their
/// outcomes in the same order. With `opts.together > 1`, unfinished training jobs of one shape
/// ([`crate::engine::together::shape_key`]) train together first, up to that many at a time.
pub fn run_indices(jobs: &[Job], indices: &[usize], out: &Path, opts: &RunOptions) -> Result<Vec<Outcome>> {
    let bar = crate::engine::pipeline::bar(opts.progress, indices.len() as u64, "jobs");
    let mut done: std::collections::HashMap<usize, Outcome> = std::collections::HashMap::new();
    for group in together_groups(jobs, indices, out, opts)? {
        let refs: Vec<&Job> = group.iter().map(|&i| &jobs[i]).collect();
        bar.set_message(format!("{} jobs together ({} …)", refs.len(), refs[0].id));
        let mut first_err = None;
        for (&i, r) in group.iter().zip(super::job::run_together(&refs, out, opts)?) {
            match r {
                Ok(o) => {
                    done.insert(i, o);
                    bar.inc(1);
                }
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    let mut cache = std::collections::HashMap::new();
    let mut all = Vec::with_capacity(indices.len());
    for &i in indices {
        if let Some(o) = done.remove(&i) {
            all.push(o);
            continue;
        }
        let j = &jobs[i];
        bar.set_message(j.id.clone());
        all.push(j.run(out, opts, &mut cache)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(all)
}

/// The groups (two jobs or more, at most `opts.together`, in `indices`' order) of unfinished training
/// jobs at `indices` that can train together: one shape (a job with a saved state continues from it,
/// with the others saved at the same epoch: [`super::job::run_together`]).
fn together_groups(jobs: &[Job], indices: &[usize], out: &Path, opts: &RunOptions) -> Result<Vec<Vec<usize>>> {
    if opts.together < 2 {
        return Ok(Vec::new());
    }
    let mut by_shape: Vec<(String, Vec<usize>)> = Vec::new();
    for &i in indices {
        let j = &jobs[i];
        if j.task != Task::Train || !crate::engine::together::trains_together(&j.config) || j.finished(out)?.is_some() {
            continue;
        }
        let key = crate::engine::together::shape_key(&j.config);
        match by_shape.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => by_shape.push((key, vec![i])),
        }
    }
    Ok(by_shape
        .into_iter()
        .map(|(_, mut v)| {
            // Jobs with the same data settings (whatever the seed) have datasets of one size: keep them
            // next to each other, so that a chunk of `together` holds as few sizes as possible.
            v.sort_by_cached_key(|&i| {
                let c = &jobs[i].config;
                serde_json::json!({"system": c.system, "sampler": c.sampler, "labeller": c.labeller}).to_string()
            });
            v
        })
        .flat_map(|v| v.chunks(opts.together).map(<[usize]>::to_vec).collect::<Vec<_>>())
        .filter(|g| g.len() > 1)
        .collect())
}
