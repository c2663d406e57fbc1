//! One job of a spec, and how a worker runs it: all or nothing, into its own directory.
//!
//! A job runs in `<out>/.<id>.partial-<pid>` (a hidden sibling of its directory), then writes the
//! marker [`DONE`] (`{"config_sha256": …}`, the SHA-256 of the resolved config's TOML) and renames the
//! whole directory to `<out>/<id>`. A directory without a matching marker is not a result: it is
//! removed and the job redone, as are partial directories that a killed attempt left. So concurrent
//! workers never write the same file, and a requeued array task either skips its finished job or redoes
//! it cleanly, never mixing two attempts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::engine::data::Data;
use crate::engine::pipeline::{RunMetrics, RunOptions, run_with_data};
use crate::error::{Error, Result};
use crate::io::write_json;

/// The completion marker of a job's directory.
pub const DONE: &str = "done.json";

/// One run of an experiment: a resolved config and where its results go.
#[derive(Debug, Clone)]
pub struct Job {
    /// Place in the spec's order (what `--index` selects).
    pub index: usize,
    /// Stable id: the job's directory relative to the spec's output directory.
    pub id: String,
    /// The configuration's name within the spec (a sweep's config file stem, a compare cell).
    pub name: String,
    /// The resolved config, seed included.
    pub config: Config,
}

/// The marker a finished job leaves in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// SHA-256 of the resolved config's TOML (hex).
    pub config_sha256: String,
    /// The job's id.
    pub id: String,
    /// stiffx version that ran it.
    pub version: String,
}

/// SHA-256 (hex) of a config's TOML.
pub fn config_hash(cfg: &Config) -> String {
    Sha256::digest(cfg.to_toml().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Job {
    /// The job's directory under `out`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join(&self.id)
    }

    /// The metrics of the finished job in `out`, or `None` when it has not finished (no marker, or
    /// a marker of another config: a stale result).
    pub fn finished(&self, out: &Path) -> Result<Option<RunMetrics>> {
        let dir = self.dir(out);
        let Ok(text) = std::fs::read_to_string(dir.join(DONE)) else { return Ok(None) };
        let done: Done = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        };
        if done.config_sha256 != config_hash(&self.config) {
            return Ok(None);
        }
        let path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Checkpoint { path, message: format!("unreadable metrics of a finished job: {e}") })
    }

    /// Runs the job into `out` unless it has finished (then its metrics are read back). `data` is
    /// a one-entry in-memory cache in front of the on-disk one ([`crate::engine::cache`]).
    pub fn run(&self, out: &Path, opts: &RunOptions, data: &mut HashMap<String, Data>) -> Result<RunMetrics> {
        if let Some(m) = self.finished(out)? {
            return Ok(m);
        }
        let dir = self.dir(out);
        let parent = dir.parent().unwrap_or(out).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let base = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        remove_partials(&parent, &base)?;
        let partial = parent.join(format!(".{base}.partial-{}", std::process::id()));
        let key = crate::engine::cache::data_key(&self.config);
        if !data.contains_key(&key) {
            data.clear();
            data.insert(key.clone(), crate::engine::cache::dataset(out, &self.config)?);
        }
        let label = Some(base.clone());
        let run_opts = RunOptions { out: Some(partial.clone()), progress: false, label, ..opts.clone() };
        let result = run_with_data(&self.config, &run_opts, &data[&key]);
        let m = match result {
            Ok(m) => m,
            Err(e) => {
                // A failed attempt leaves nothing that could pass for a result.
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        let done = Done {
            config_sha256: config_hash(&self.config),
            id: self.id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        write_json(&partial.join(DONE), &done)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::rename(&partial, &dir).map_err(|e| Error::io(&dir, e))?;
        Ok(m)
    }
}

/// Removes `.<base>.partial-*` directories in `parent`: what killed attempts of the job left.
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
