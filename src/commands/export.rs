//! `stiffx export`: a checkpoint (format 1 or 2) rewritten in format 2 — `checkpoint.json` metadata and
//! `checkpoint.safetensors` weights (`docs/checkpoint-format.md`) — for readers outside stiffx: the
//! Python package, `examples/numpy_reader.py`, PyTorch — and, for a reaction network, the mechanism it
//! learned as `mechanism.yaml` (`eval::reactions`), which runs again with `stiffx run --system`.

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
    if let Some(yaml) = ck.learned_mechanism_yaml(a.round, &a.checkpoint.display().to_string()) {
        let path = a.out.join("mechanism.yaml");
        crate::io::write_atomic(&path, yaml.as_bytes())?;
        println!("the learned reaction network as a mechanism → {}", path.display());
    }
    Ok(())
}
