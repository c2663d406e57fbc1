//! `stiffx sweep`, `stiffx compare` and `stiffx diagnose`: the commands that run or examine a whole
//! spec or config here (the engine does the work; these print its tables).

use crate::cli::together;
use crate::cli::{DiagnoseArgs, SweepArgs};
use crate::engine::pipeline::RunOptions;
use crate::error::Result;

/// `stiffx sweep`: expands a spec, runs every job here and collects (a compare spec prints its table).
pub fn sweep(a: &SweepArgs) -> Result<()> {
    let opts = RunOptions { together: together(a.together)?, ..crate::cli::run_options(&a.compute)? };
    let spec = crate::engine::Spec::load(&a.file, a.out.as_deref())?;
    if let crate::engine::spec::Kind::Compare { .. } = spec.kind {
        print!("{}", spec.collect(&spec.run_all(&opts)?, &opts)?);
        return Ok(());
    }
    let rows = crate::engine::local::sweep(&a.file, &opts, a.out.as_deref())?;
    let mut t =
        crate::table::Table::new(["config", "seed", "rollout L2", "|dl_fast|", "|dl_slow|", "S_comb", "fast rel"]);
    for r in &rows {
        t.row([
            r.config.clone(),
            r.seed.to_string(),
            format!("{:.3e}", r.rollout_l2),
            format!("{:.3e}", r.fast_abs),
            format!("{:.3e}", r.slow_abs),
            format!("{:.3e}", r.s_comb),
            format!("{:.2e}", r.fast_rel),
        ]);
    }
    print!("{}", t.console());
    Ok(())
}

/// `stiffx diagnose`: skewness and Q-Q correlation of each target component, raw and transformed, for
/// the trajectory points alone (`base`) and for the whole dataset (`all`, with the cloud), histograms
/// of log10 |value| and Q-Q plots — the paper's sections 5.2–5.3 and Figs. 2–5. The transform is
/// fitted on all samples.
pub fn diagnose(a: &DiagnoseArgs) -> Result<()> {
    let cfg = crate::config::Config::from_file(&a.config)?;
    cfg.validate()?;
    cfg.require_reference("the diagnostics (labels and spectra against the exact ones)")?;
    let data = crate::engine::data::generate(&cfg)?;
    let diag = crate::eval::diagnostics::Diagnostics::of(&cfg, &data)?;
    let source = format!("config `{}`", a.config.display());
    diag.write(&a.out, &source)?;
    crate::figures::paper::diagnostics(&a.out, &diag, &source)?;
    print!("{}", diag.markdown(&source));
    println!("results in {} (diagnostics.md/.csv, histograms.png, qq.png)", a.out.display());
    Ok(())
}

/// `stiffx compare`: writes the comparison as a spec (`<out>/compare_spec.toml`, config paths made
/// absolute, so that `stiffx jobs`/`run-job`/`collect` work on it later), runs it and prints its table.
pub fn compare(a: &crate::cli::CompareArgs) -> Result<()> {
    if let Some(e) = a.epochs {
        crate::Error::at_least_one("--epochs", e)?;
    }
    let bases = a.config.iter().map(|p| crate::config::Config::from_file(p)).collect::<Result<Vec<_>>>()?;
    let opts = RunOptions { together: together(a.together)?, ..crate::cli::run_options(&a.compute)? };
    let file = crate::engine::spec::CompareFile {
        kind: "compare".into(),
        out: a.out.clone(),
        systems: a.systems.clone(),
        transforms: a.transforms.clone(),
        samplers: a.samplers.clone(),
        seeds: a.seeds.clone(),
        configs: a.config.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect(),
        epochs: a.epochs,
    };
    let spec = crate::engine::compare::CompareSpec {
        systems: file.systems.clone(),
        transforms: file.transforms.clone(),
        samplers: file.samplers.clone(),
        seeds: file.seeds.clone(),
        epochs: a.epochs,
    };
    // Checks every name before anything is written.
    crate::engine::compare::jobs(&bases, &spec)?;
    let text = toml::to_string_pretty(&file)
        .map_err(|e| crate::Error::Unsupported(format!("the compare spec does not serialise: {e}")))?;
    crate::io::write_atomic(&a.out.join("compare_spec.toml"), text.as_bytes())?;
    let (_, md) = crate::engine::local::compare(&bases, &spec, &a.out, &opts)?;
    print!("{md}");
    Ok(())
}
