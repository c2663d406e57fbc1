//! Datasets cached on disk by their data key, shared by every job (and every worker process) whose
//! system, sampler, labeller and seed agree.
//!
//! `<out>/data/<key hash>/dataset.json` holds the [`Data`] (states, labels, label bias, the seconds
//! its generation took) with round-trip-exact floats, so a job that reads it trains on bit-for-bit the
//! data it would have generated; `key.json` beside it holds the readable key. The first worker to
//! need a dataset takes an exclusive lock on `<key hash>/.lock` (an OS file lock, released even when
//! the process is killed), generates and writes it atomically; a worker that arrives meanwhile waits
//! for the lock and then reads the file. Nothing is ever written in place.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::engine::data::{Data, generate};
use crate::error::{Error, Result};
use crate::io::{sha256_hex, write_atomic};

/// The key of a run's dataset: runs with equal keys share one generated dataset (the sampler's
/// [`fingerprint`](crate::plugins::sampler::Sampler::fingerprint) included: a changed data file is a new key).
pub fn data_key(cfg: &Config) -> String {
    let mut key =
        serde_json::json!({"system": cfg.system, "sampler": cfg.sampler, "labeller": cfg.labeller, "seed": cfg.seed});
    let input = cfg.sampler.fingerprint();
    if !input.is_empty() {
        key["sampler_input"] = input.into();
    }
    key.to_string()
}

/// The first 16 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    sha256_hex(text.as_bytes())[..16].to_string()
}

/// The cache directory of `cfg`'s dataset under `out`.
pub fn dir(out: &Path, cfg: &Config) -> PathBuf {
    out.join("data").join(short_hash(&data_key(cfg)))
}

/// The dataset of `cfg`: read from `<out>/data/…` when a job (of this or another process) has
/// generated it, else generated here under the lock and written there.
pub fn dataset(out: &Path, cfg: &Config) -> Result<Data> {
    let dir = dir(out, cfg);
    let file = dir.join("dataset.json");
    if let Some(d) = read(&file)? {
        return Ok(d);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(".lock");
    let lock: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    // Another worker may have written it while this one waited for the lock.
    if let Some(d) = read(&file)? {
        return Ok(d);
    }
    let data = generate(cfg)?;
    let json =
        serde_json::to_vec(&data).map_err(|e| Error::Unsupported(format!("the dataset does not serialise: {e}")))?;
    write_atomic(&dir.join("key.json"), data_key(cfg).as_bytes())?;
    write_atomic(&file, &json)?;
    // Dropping the file releases the lock.
    drop(lock);
    Ok(data)
}

fn read(file: &Path) -> Result<Option<Data>> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Checkpoint {
            path: file.to_path_buf(),
            message: format!("a cached dataset that does not read back ({e}); delete its folder to regenerate it"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(file, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_dataset_reads_back_bit_for_bit_and_is_generated_once() {
        let cfg = Config::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let a = dataset(out.path(), &cfg).unwrap();
        let file = dir(out.path(), &cfg).join("dataset.json");
        let stamp = std::fs::metadata(&file).unwrap().modified().unwrap();
        let b = dataset(out.path(), &cfg).unwrap();
        assert_eq!(a.set, b.set);
        assert_eq!(
            a.labels.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.labels.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), stamp, "read, not regenerated");
        // Another seed is another dataset.
        let mut other = cfg.clone();
        other.seed += 1;
        assert_ne!(dir(out.path(), &cfg), dir(out.path(), &other));
    }
}
