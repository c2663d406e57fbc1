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

/// A small Davis–Skodje-shaped trajectory file at `path` (`trajectory,t,eps,y,z`: 4 trajectories of 5
/// times, eps 0.05 and 0.1), for configs that learn from a file.
pub fn write_small_csv(path: &std::path::Path) {
    use std::fmt::Write;
    let mut text = String::from("trajectory,t,eps,y,z\n");
    for k in 0..4 {
        for i in 0..5 {
            let (t, eps) = (0.1 * i as f64, [0.05, 0.1][k % 2]);
            writeln!(text, "tr{k},{t},{eps},{},{}", 1.0 + k as f64 - t, 0.5 - t * t).unwrap();
        }
    }
    std::fs::write(path, text).unwrap();
}
