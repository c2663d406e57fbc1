//! Integration tests of stiffx, one binary (ripgrep style): numerics of the plugins, the learned
//! Jacobian, the pipeline (snapshots, determinism, checkpoints) and the CLI's handling of bad input.

mod backends;
mod checkpoint;
mod cli;
mod compare;
mod crnn_init;
mod data_system;
mod dropin;
mod engine;
mod holdout;
mod identify;
mod jacobian;
mod labels;
mod mechanism;
mod metrics;
mod period;
mod pipeline;
mod readme;
mod registry;
mod resume;
mod sampling;
mod sweep;
mod validate;

/// The tiny config shipped in `configs/`.
pub fn tiny_config() -> stiffx::config::Config {
    stiffx::config::Config::from_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml"))
        .expect("configs/tiny.toml parses")
}
