//! All-or-nothing run directories, resumable. A run (`stiffx run --out DIR`, a job of a sweep) works
//! in the hidden sibling `.<name>.partial` of its directory `DIR`, under an exclusive file lock (a second
//! process on the same run is refused, not interleaved). Training saves its resumable state there
//! ([`RESUME`]: a checkpoint with the training state, every [`SaveEvery`] and at a stop signal), so an
//! interrupted run continues from it. When the run is complete it writes the marker [`DONE`] (the
//! SHA-256 of the resolved config), drops the resumable state and renames the whole directory into
//! place, replacing what was there only then. So `DIR` holds either a complete run or what it held
//! before, never a mix; a directory without a matching marker is not a result.
//!
//! ```text
//! DIR/                 done.json + config.toml, checkpoint.*, metrics.json, per_eps.csv, figures/ …
//! .DIR.partial/        .lock, config.toml, resume.json, checkpoint.*, loss_curve.csv …  (while running)
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::io::{sha256_hex, write_json};
use crate::train::TrainState;

/// The completion marker of a run directory.
pub const DONE: &str = "done.json";
/// The resumable state in a working directory.
pub const RESUME: &str = "resume.json";

/// The marker a complete run leaves in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// SHA-256 of the resolved config's TOML (hex).
    pub config_sha256: String,
    /// The run's id (a job's id, or the directory's name).
    pub id: String,
    /// stiffx version that ran it.
    pub version: String,
}

/// SHA-256 (hex) of a config's TOML and of what its samples depend on besides it
/// ([`Sampler::fingerprint`](crate::plugins::sampler::Sampler::fingerprint): a data file's content),
/// so that a changed data file makes a finished run stale and a saved state foreign.
pub fn config_hash(cfg: &Config) -> String {
    let mut text = cfg.to_toml();
    let data = cfg.sampler.fingerprint();
    if !data.is_empty() {
        // Only when there is one: the hashes of runs that depend on nothing else stay as they were.
        text.push_str("\n# data: ");
        text.push_str(&data);
    }
    sha256_hex(text.as_bytes())
}

/// `resume.json`: a checkpoint of the best weights so far (format 1, one JSON file, so that
/// `stiffx eval --checkpoint` reads it) extended with the training state and the hash of the config it
/// belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resumable {
    /// The best-validation checkpoint so far.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// SHA-256 of the config's TOML ([`config_hash`]) of the run.
    pub config_sha256: String,
    /// Where training stands.
    pub train_state: TrainState,
}

impl Resumable {
    /// Writes it atomically (a kill while saving leaves the previous state whole).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut r = self.clone();
        r.checkpoint.format = crate::engine::checkpoint::FORMAT_V1.into();
        let text = serde_json::to_string(&r).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        crate::io::write_atomic_with(path, text.as_bytes(), || crate::interrupt::kill_point("save"))
    }

    /// Reads one back.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: String| Error::Checkpoint { path: path.to_path_buf(), message: m };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        serde_json::from_str(&text).map_err(|e| bad(format!("not a resumable state: {e}")))
    }
}

/// How often training saves its resumable state (`--save-every`): every so many seconds or epochs
/// (L-BFGS rounds count as epochs), and always after the last one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaveEvery {
    /// At the first row at least this many seconds after the last save.
    Seconds(f64),
    /// Every this many rows.
    Epochs(usize),
}

impl Default for SaveEvery {
    fn default() -> Self {
        SaveEvery::Seconds(60.0)
    }
}

impl std::str::FromStr for SaveEvery {
    type Err = Error;
    /// `90`, `90s`, `5m`, `1h` (time) or `10e` (epochs).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("--save-every", s, "a time 90s, 5m, 1h (or seconds: 90) or epochs 10e, > 0");
        let t = s.trim();
        let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
        if unit == "e" {
            return match num.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(SaveEvery::Epochs(n)),
                _ => Err(bad()),
            };
        }
        let scale = match unit {
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        match num.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(SaveEvery::Seconds(v * scale)),
            _ => Err(bad()),
        }
    }
}

/// A run's directory and its working sibling, locked while this value lives.
#[derive(Debug)]
pub struct RunDir {
    /// Where the complete run goes.
    pub dir: PathBuf,
    /// Where it works: `.<name>.partial` beside `dir`.
    pub work: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Creates (or opens) the working directory of `dir` and takes its lock; refused when another
    /// process holds it. Removes what killed writes left (hidden temporary files).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::check_path(dir)?;
        let work = Self::work_of(dir);
        std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        let lock_path = work.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(Error::Occupied {
                message: format!(
                    "another stiffx process is running into {} now (it holds {}); wait for it or stop it",
                    dir.display(),
                    lock_path.display()
                ),
            });
        }
        let rd = RunDir { dir: dir.to_path_buf(), work, _lock: lock };
        rd.remove_temporaries()?;
        Ok(rd)
    }

    /// Refuses `.`, `..` and `/` as a run directory: the commit replaces the directory, so their
    /// contents would be deleted.
    pub fn check_path(dir: &Path) -> Result<()> {
        match dir.file_name() {
            Some(_) => Ok(()),
            None => Err(Error::invalid("--out", dir.display(), "a directory with a name of its own (not ., .. or /)")),
        }
    }

    /// The working directory of `dir`: `.<name>.partial` beside it.
    pub fn work_of(dir: &Path) -> PathBuf {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.join(format!(".{name}.partial"))
    }

    /// The marker of a complete run in `dir` when its hash is `hash`.
    pub fn finished(dir: &Path, hash: &str) -> bool {
        std::fs::read_to_string(dir.join(DONE))
            .ok()
            .and_then(|t| serde_json::from_str::<Done>(&t).ok())
            .is_some_and(|d| d.config_sha256 == hash)
    }

    /// What `dir` holds that a new run would replace: `None` when it is absent or empty.
    pub fn occupant(dir: &Path) -> Option<String> {
        let mut entries = std::fs::read_dir(dir).ok()?;
        entries.next()?.ok()?;
        Some(if dir.join(DONE).exists() { "a complete run".into() } else { "files (not a complete run)".into() })
    }

    /// Whether the working directory holds an interrupted run (its config or a resumable state).
    pub fn interrupted(&self) -> bool {
        Self::holds_interrupted(&self.work)
    }

    /// [`interrupted`](Self::interrupted) for a working directory `work` not opened (no lock taken).
    pub fn holds_interrupted(work: &Path) -> bool {
        work.join("config.toml").exists() || work.join(RESUME).exists()
    }

    /// The resumable state, if one was saved.
    pub fn resumable(&self) -> Result<Option<Resumable>> {
        let path = self.work.join(RESUME);
        if path.exists() { Resumable::load(&path).map(Some) } else { Ok(None) }
    }

    /// Empties the working directory (a fresh start), keeping the lock.
    pub fn clear(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.work).map_err(|e| Error::io(&self.work, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name() == ".lock" {
                continue;
            }
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.map_err(|err| Error::io(&p, err))?;
        }
        Ok(())
    }

    /// Removes the hidden temporary files of killed atomic writes (`.tmp*`) in the working directory
    /// and its subdirectories (`figures/`).
    fn remove_temporaries(&self) -> Result<()> {
        fn sweep(dir: &Path) -> Result<()> {
            let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            for e in entries.flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().starts_with(".tmp") {
                    let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                    r.map_err(|err| Error::io(&p, err))?;
                } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                    sweep(&p)?;
                }
            }
            Ok(())
        }
        sweep(&self.work)
    }

    /// Completes the run: writes the marker, moves what `dir` held aside (`.<name>.replaced`),
    /// renames the working directory (lock and resumable state included: a process that dies on the
    /// way leaves a state that `--resume` finishes) to `dir`, then drops the state, the lock file and
    /// the old contents. The lock is held throughout.
    pub fn commit(self, hash: String, id: &str) -> Result<()> {
        let done = Done { config_sha256: hash, id: id.to_string(), version: env!("CARGO_PKG_VERSION").into() };
        write_json(&self.work.join(DONE), &done)?;
        let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = self.work.with_file_name(format!(".{name}.replaced"));
        let remove_all = |p: &Path| match std::fs::remove_dir_all(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
            _ => Ok(()),
        };
        // What an earlier commit that died left aside.
        remove_all(&aside)?;
        if self.dir.exists() {
            std::fs::rename(&self.dir, &aside).map_err(|e| Error::io(&self.dir, e))?;
        }
        std::fs::rename(&self.work, &self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for f in [RESUME, ".lock"] {
            let p = self.dir.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        remove_all(&aside)
    }

    /// Gives up a run that failed (not one that was stopped: its state stays to resume): removes the
    /// working directory.
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_every_parses_times_and_epochs_and_refuses_the_rest() {
        assert_eq!("90".parse::<SaveEvery>().unwrap(), SaveEvery::Seconds(90.0));
        assert_eq!("5m".parse::<SaveEvery>().unwrap(), SaveEvery::Seconds(300.0));
        assert_eq!("1.5h".parse::<SaveEvery>().unwrap(), SaveEvery::Seconds(5400.0));
        assert_eq!("10e".parse::<SaveEvery>().unwrap(), SaveEvery::Epochs(10));
        for bad in ["", "0", "-3s", "0e", "2.5e", "5 days", "nan", "inf", "1x"] {
            let e = bad.parse::<SaveEvery>().unwrap_err().to_string();
            assert!(e.contains("--save-every") && e.contains("10e"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_second_process_on_the_same_run_is_refused_and_temporaries_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        let a = RunDir::open(&dir).unwrap();
        std::fs::write(a.work.join(".tmpXYZ"), b"half").unwrap();
        std::fs::create_dir(a.work.join("figures")).unwrap();
        std::fs::write(a.work.join("figures/.tmpABC"), b"half a png").unwrap();
        let e = RunDir::open(&dir).unwrap_err().to_string();
        assert!(e.contains("another stiffx process"), "{e}");
        drop(a);
        let b = RunDir::open(&dir).unwrap();
        assert!(!b.work.join(".tmpXYZ").exists() && !b.work.join("figures/.tmpABC").exists() && !b.interrupted());
        std::fs::write(b.work.join("config.toml"), b"seed = 1").unwrap();
        assert!(b.interrupted() && RunDir::occupant(&dir).is_none());
        // The commit replaces an earlier run wholesale, leaving nothing aside.
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("old.txt"), b"earlier run").unwrap();
        b.commit("abc".into(), "r").unwrap();
        assert!(RunDir::finished(&dir, "abc") && !RunDir::finished(&dir, "abd"));
        assert_eq!(RunDir::occupant(&dir).as_deref(), Some("a complete run"));
        assert!(!dir.join(".lock").exists() && !tmp.path().join(".r.partial").exists());
        assert!(!dir.join("old.txt").exists() && !tmp.path().join(".r.replaced").exists());
        for dot in [".", "..", "/"] {
            let e = RunDir::open(Path::new(dot)).unwrap_err().to_string();
            assert!(e.contains("--out") && e.contains("a name of its own"), "{dot}: {e}");
        }
    }
}
