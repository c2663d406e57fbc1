//! `stiffx export`: a checkpoint (format 1 or 2) rewritten in format 2 — `checkpoint.json` metadata and
//! `checkpoint.safetensors` weights (`docs/checkpoint-format.md`) — for readers outside stiffx: the
//! Python package, `examples/numpy_reader.py`, PyTorch.

use crate::engine::checkpoint::Checkpoint;
use crate::error::Result;

/// `stiffx export CK --out DIR`.
pub fn export(a: &crate::cli::ExportArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.checkpoint)?;
    let json = a.out.join("checkpoint.json");
    ck.save(&json)?;
    println!(
        "{} (format {}) → {} and {} (format {})",
        a.checkpoint.display(),
        ck.format,
        json.display(),
        json.with_extension("safetensors").display(),
        crate::engine::checkpoint::FORMAT
    );
    Ok(())
}
