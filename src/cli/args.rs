//! The raw `clap` arguments of every subcommand, as typed; `cli/resolve.rs` turns them into a
//! validated configuration (ripgrep's lowargs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::{Backend, Precision};
use crate::eval::spectral::JacobianMode;

/// stiffx — learn stiff ODE right-hand sides and check their eigenstructure.
#[derive(Debug, Parser)]
#[command(name = "stiffx", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Refuse configs whose estimated memory exceeds this (bytes, or 512M, 8G; default: what is free).
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every registered system, transform, sampler and labeller.
    List,
    /// Sample, label, train and evaluate one configuration.
    Run(RunArgs),
    /// Re-evaluate a checkpoint (reproduces `metrics` of the run exactly).
    Eval(EvalArgs),
    /// Measure training throughput, Jacobian + eigenvalue speed and burst-label throughput.
    Bench(BenchArgs),
    /// Run several configurations × seeds (the paper's Table 1) and write table1.csv/.md.
    Sweep(SweepArgs),
    /// Data diagnostics of a config's targets (skewness, Q-Q R, log-histograms; paper Figs. 2–5).
    Diagnose(DiagnoseArgs),
    /// One table of the metrics across systems × transforms × samplers, each with seeds.
    Compare(CompareArgs),
    /// The learned RHS, Jacobian and eigenvalues at given states, entry by entry against the exact ones.
    Inspect(InspectArgs),
    /// Rewrite a checkpoint as checkpoint.json + checkpoint.safetensors (format 2) for other tools.
    Export(ExportArgs),
    /// Identify a mass-action mechanism from a config's data or a CSV of trajectories (a mechanism file).
    Identify(IdentifyArgs),
    /// List the jobs a spec (sweep file or compare spec) expands to; `--slurm` writes an sbatch array.
    Jobs(JobsArgs),
    /// Run some jobs of a spec in this process (one worker: a SLURM array task, a GNU parallel slot).
    RunJob(RunJobArgs),
    /// Build a spec's tables, figures and report from its finished jobs (exit 3 if some are missing).
    Collect(CollectArgs),
}

/// `stiffx jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Spec file: a sweep file (configs/table1.toml) or a compare spec (`kind = "compare"`).
    pub spec: PathBuf,
    /// Output directory (overrides the spec's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print only the number of jobs (for `seq 0 $((N-1)) | parallel …`).
    #[arg(long, conflicts_with = "slurm")]
    pub count: bool,
    /// Print an sbatch script, one array task per job (the device options given pass to every task).
    #[arg(long)]
    pub slurm: bool,
    #[command(flatten)]
    /// Device options (passed to the array tasks with `--slurm`).
    pub device: DeviceArgs,
}

/// `stiffx run-job`.
#[derive(Debug, Args)]
pub struct RunJobArgs {
    /// Spec file.
    pub spec: PathBuf,
    /// Jobs to run: `I`, `A-B` or a comma-separated list (`0-3,7`), as `stiffx jobs` numbers them.
    #[arg(long)]
    pub index: String,
    /// Output directory (overrides the spec's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train up to N jobs of a sweep, compare or run-job together in one batched pass when they
    /// share a shape (the same `[model]`, `[train]` and system dimension; no difference or Jacobian
    /// loss, L-BFGS, mass-action network or `model.init`): each keeps its own data, initialisation, batch order and best weights
    /// (docs/many.md). 1: one by one. Each job saves its own resumable state (`--save-every`, and
    /// on a stop signal); a stopped group continues from them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub together: usize,
    #[command(flatten)]
    /// Progress, figures and device.
    pub compute: ComputeArgs,
}

/// `stiffx collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Spec file.
    pub spec: PathBuf,
    /// Output directory (overrides the spec's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    /// Progress, figures (and the report) and device (the report evaluates the unseen grid of each run).
    pub compute: ComputeArgs,
}

/// `stiffx identify`.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// TOML config: its system, sampler and labeller give the labelled data, its `[eval]` the evaluation.
    #[arg(long, required_unless_present = "data", conflicts_with = "data")]
    pub config: Option<PathBuf>,
    /// A CSV file (or NPZ archive) of trajectories as the only input, no config, no system (docs/cli.md).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With `--data`: the order of the finite-difference labels (2, 4 or 6).
    #[arg(long)]
    pub fd_order: Option<usize>,
    /// With `--data`: jackknife refits (default 10; 0: none), their eigenvalue spread the error bar.
    #[arg(long)]
    pub jackknife: Option<usize>,
    /// Output directory (`mechanism.yaml`, `identification.json`, `per_eps.csv`, …).
    #[arg(long)]
    pub out: PathBuf,
    /// Largest total order of the library's monomials (1–4).
    #[arg(long, default_value_t = 2)]
    pub max_order: u32,
    /// Terms whose share of a species' weighted labels is below this are dropped (STLSQ).
    #[arg(long, default_value_t = 1e-3)]
    pub threshold: f64,
    /// Floor of the relative least-squares weights, relative to each species' RMS label.
    #[arg(long, default_value_t = 1e-2)]
    pub weight_floor: f64,
    /// Relative singular value of the (RMS-scaled) labels below which a direction is a conservation law.
    #[arg(long, default_value_t = 1e-5)]
    pub invariant_tol: f64,
    /// Power-law misfit in eps above which a monomial is pruned (≥ 3 eps values; `inf`: never).
    #[arg(long, default_value_t = 0.05)]
    pub power_law_tol: f64,
    /// Leave out points whose relative residual under the full library's fit exceeds this many times
    /// the median (robust to bad finite-difference labels across fast jumps; 0: off).
    #[arg(long, default_value_t = 0.0)]
    pub trim: f64,
    /// Evaluate the unseen stiffness values too (with `--config`).
    #[arg(long, conflicts_with = "data")]
    pub unseen: bool,
    /// A held-out CSV (or NPZ) of trajectories, each rolled out from its first state (`holdout.csv`).
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// With `--config`: the seed of its data (overrides the config's `seed`, as `stiffx run --seed`).
    #[arg(long, conflicts_with = "data")]
    pub seed: Option<u64>,
}

/// `stiffx export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint (its `checkpoint.json`, format 1 or 2, or the directory holding it).
    pub checkpoint: PathBuf,
    /// Directory for `checkpoint.json`, `checkpoint.safetensors` (and a network's `mechanism.yaml`).
    #[arg(long)]
    pub out: PathBuf,
    /// Reaction networks: snap orders and coefficients this close to an integer to it (0: exact).
    #[arg(long, default_value_t = 0.0, value_parser = round_tolerance)]
    pub round: f64,
}

fn round_tolerance(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..0.5).contains(&v) => Ok(v),
        _ => Err(format!("`{s}`: a number in [0, 0.5)")),
    }
}

/// `stiffx inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Checkpoint written by `stiffx run`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Stiffness value.
    #[arg(long)]
    pub eps: f64,
    /// A state, as `dim` comma-separated numbers (`--state 1,3e-5,1.2e-5`); repeat for several.
    #[arg(long, required = true)]
    pub state: Vec<String>,
    /// Also write the comparison as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The true mechanism file: what a reaction network's reactions are matched against (default: the
    /// checkpoint's), and the exact side of a `data` system's checkpoint, which has none.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    #[command(flatten)]
    /// Device options.
    pub device: DeviceArgs,
}

/// `stiffx compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Comma-separated registered systems (see `stiffx list`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub systems: Vec<String>,
    /// Comma-separated registered transforms.
    #[arg(long, value_delimiter = ',', default_value = "identity,asinh")]
    pub transforms: Vec<String>,
    /// Comma-separated registered samplers.
    #[arg(long, value_delimiter = ',', default_value = "trajectory,cloud")]
    pub samplers: Vec<String>,
    /// Comma-separated seeds.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
    /// Base configs (labeller, model, training, evaluation, transform and sampler settings); a system
    /// named by one of them uses that one (`configs/robertson.toml`), the others the first.
    #[arg(long, num_args = 1.., default_value = "configs/compare.toml")]
    pub config: Vec<PathBuf>,
    /// Override the number of epochs.
    #[arg(long)]
    pub epochs: Option<i64>,
    /// Output directory.
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
    /// Train up to N jobs of a sweep, compare or run-job together in one batched pass when they
    /// share a shape (the same `[model]`, `[train]` and system dimension; no difference or Jacobian
    /// loss, L-BFGS, mass-action network or `model.init`): each keeps its own data, initialisation, batch order and best weights
    /// (docs/many.md). 1: one by one. Each job saves its own resumable state (`--save-every`, and
    /// on a stop signal); a stopped group continues from them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub together: usize,
    #[command(flatten)]
    /// Progress, figures and device.
    pub compute: ComputeArgs,
}

/// Options of every command that trains or evaluates and writes results: progress, figures, device.
#[derive(Debug, Args, Clone)]
pub struct ComputeArgs {
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Write no PNG figures.
    #[arg(long)]
    pub no_figures: bool,
    /// How often training saves its resumable state: 90s, 5m, 1h or 10e (epochs); default 60s.
    #[arg(long, value_name = "EVERY")]
    pub save_every: Option<crate::engine::rundir::SaveEvery>,
    #[command(flatten)]
    /// Device options.
    pub device: DeviceArgs,
}

/// Options shared by commands that compute.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// Backend (tch-cuda also as cuda, tch-mps as mps, tch as libtorch).
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Jacobian mode of the spectral evaluation.
    #[arg(long, value_enum, default_value_t = JacobianMode::Forward)]
    pub jacobian: JacobianMode,
    /// Precision of the spectral evaluation: auto is f64 where the backend has it, f32 on wgpu.
    #[arg(long, value_enum, default_value_t = EvalPrecision::Auto)]
    pub precision: EvalPrecision,
}

/// `--precision` of the spectral evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalPrecision {
    /// f64 where the backend has it, f32 on wgpu.
    Auto,
    /// 32-bit floats.
    F32,
    /// 64-bit floats (not on wgpu).
    F64,
}

/// The parts of `stiffx bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    /// Training throughput per backend, batch and shard count.
    Train,
    /// The Jacobian (Sobolev) loss's cost.
    Sobolev,
    /// An Adam epoch against an L-BFGS round.
    Lbfgs,
    /// f64 against f32 training.
    Precision,
    /// The reaction network against the MLP.
    Crnn,
    /// Jacobian + eigenvalues.
    Jacobian,
    /// Many networks of one shape trained together (`--models`), aggregate samples/s.
    Models,
    /// Many networks' Jacobians + eigenvalues (`--models`, `--points`) in one stacked pass and one by
    /// one, aggregate points/s.
    ModelsJacobian,
    /// Burst labels per second.
    Burst,
}

/// `stiffx run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Registered system name or a mechanism file (`mechanisms/pollu.yaml`), overriding the config's.
    #[arg(long)]
    pub system: Option<String>,
    /// TOML config file (see configs/).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Target transform name (identity, asinh, …).
    #[arg(long)]
    pub transform: Option<String>,
    /// Sampler name (trajectory, cloud, …).
    #[arg(long)]
    pub sampler: Option<String>,
    /// Labeller name (direct, burst, finite-difference, …).
    #[arg(long)]
    pub labeller: Option<String>,
    /// Seed (data, initialisation, split, batch order).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<i64>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch: Option<i64>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Full-batch L-BFGS iteration budget after Adam, a multiple of 10 (`train.lbfgs`; 0: none).
    #[arg(long)]
    pub lbfgs: Option<i64>,
    /// Training precision (`train.precision`; f64 not on wgpu).
    #[arg(long, value_enum)]
    pub train_precision: Option<Precision>,
    /// Output directory (refused when it holds a run, unless `--force`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace what `--out` holds (when the new run completes) and discard an interrupted run there.
    #[arg(long)]
    pub force: bool,
    /// Check the config and flags (every field, the memory estimate, the output directory) and print
    /// what the run would do; nothing runs and nothing is written. Exit 0 when it would start, 2 when not.
    #[arg(long, conflicts_with = "resume")]
    pub check: bool,
    /// Continue the interrupted run of this output directory (its config and saved state).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["force", "out", "config", "system", "transform", "sampler", "labeller", "seed", "epochs", "batch", "lr", "lbfgs", "train_precision"])]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    /// Progress, figures and device.
    pub compute: ComputeArgs,
}

/// `stiffx eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Checkpoint(s) of `stiffx run`; several (one per seed): also mean ± std (`eps_curve.csv`, Fig. 10).
    #[arg(long, num_args = 1.., required = true)]
    pub checkpoint: Vec<PathBuf>,
    /// Comma-separated stiffness values (default: the config's evaluation grid).
    #[arg(long, value_delimiter = ',')]
    pub eps: Vec<f64>,
    /// Also evaluate the system's unseen grid (paper eq. 33).
    #[arg(long)]
    pub unseen: bool,
    /// Rollout integrator: rk4 (the config's default) or bdf (the learned Jacobian; where RK4 is unstable).
    #[arg(long, value_enum)]
    pub integrator: Option<crate::config::Integrator>,
    /// Evaluation horizon replacing `eval.horizon` (e.g. several cycles, for `period_rel`).
    #[arg(long, allow_hyphen_values = true)]
    pub horizon: Option<f64>,
    /// A CSV of test initial states replacing the system's (`eval.initial_states`; docs/cli.md).
    #[arg(long)]
    pub initial_states: Option<PathBuf>,
    /// Held-out trajectories (CSV: `trajectory`, `t`, optional `eps`, one column per state) to evaluate
    /// on instead of the system's test states: rollouts from each first state (BDF with the learned
    /// Jacobian) and, over the checkpoints, their eigenvalue spread at the data's states beside the
    /// exact error (`data_rollouts.csv`, `data_spectrum.csv`).
    #[arg(long, value_name = "FILE.csv", conflicts_with_all = ["eps", "unseen", "initial_states", "ensemble", "integrator", "horizon"])]
    pub data: Option<PathBuf>,
    /// The true system to evaluate against, replacing the checkpoints' own (a registered name or a
    /// mechanism file): what a `data` system's checkpoint, which has none, is compared with. Its state
    /// names must be the checkpoint's, in the same order; the checkpoint's `[eval]` settings apply.
    #[arg(long, value_name = "NAME|FILE.yaml")]
    pub system: Option<String>,
    /// Output directory (default: `eval/` next to the checkpoint; required with several checkpoints).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With several checkpoints, also evaluate their deep ensemble (mean field, mean Jacobian) in
    /// `ensemble/`, the members' eigenvalue spread checked against the true spectrum (`ensemble.csv`).
    #[arg(long)]
    pub ensemble: bool,
    #[command(flatten)]
    /// Device options.
    pub device: DeviceArgs,
}

/// `stiffx diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// TOML config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "runs/diagnostics")]
    pub out: PathBuf,
}

/// `stiffx sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Spec file: a sweep file (configs/table1.toml) or a compare spec (configs/compare_spec.toml).
    pub file: PathBuf,
    /// Output directory (overrides the sweep file's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train up to N jobs of a sweep, compare or run-job together in one batched pass when they
    /// share a shape (the same `[model]`, `[train]` and system dimension; no difference or Jacobian
    /// loss, L-BFGS, mass-action network or `model.init`): each keeps its own data, initialisation, batch order and best weights
    /// (docs/many.md). 1: one by one. Each job saves its own resumable state (`--save-every`, and
    /// on a stop signal); a stopped group continues from them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub together: usize,
    #[command(flatten)]
    /// Progress, figures and device.
    pub compute: ComputeArgs,
}

/// `stiffx bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backends to measure, comma-separated (e.g. `flex,wgpu,tch`): measured side by side in one run,
    /// repetitions interleaved across backends so that machine noise hits all of them alike.
    #[arg(long, value_enum, default_value = "flex", value_delimiter = ',')]
    pub backend: Vec<Backend>,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Output JSON file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure only these parts (comma-separated); default all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<BenchPart>,
    /// Training batch sizes (comma-separated); each measured epoch is 10 batches of its size.
    #[arg(long, default_value = "8192,1024", value_delimiter = ',')]
    pub batch: Vec<usize>,
    /// Data-parallel shards per batch to measure (comma-separated; 1 = serial).
    #[arg(long, default_value = "1,2,4", value_delimiter = ',')]
    pub shards: Vec<i64>,
    /// Numbers of networks trained together in the `models` part (comma-separated): aggregate
    /// samples/s of each, against one network alone.
    #[arg(long, default_value = "1,3,12,48", value_delimiter = ',')]
    pub models: Vec<usize>,
    /// Points of the Jacobian + eigenvalue measurement.
    #[arg(long, default_value_t = 10_000)]
    pub points: usize,
}
