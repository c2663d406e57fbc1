//! Raw arguments → validated [`Config`] and [`RunOptions`] (ripgrep's hiargs): every override applied
//! and checked here, before any work.

use std::path::PathBuf;

use crate::backend::{Backend, Precision};
use crate::config::Config;
use crate::engine::pipeline::RunOptions;
use crate::error::{Error, Result};
use crate::eval::spectral::JacobianMode;

use super::args::{ComputeArgs, DeviceArgs, EvalPrecision, RunArgs};

/// Parses the device options.
pub fn device_options(a: &DeviceArgs) -> Result<(Backend, JacobianMode, Precision)> {
    let backend = a.backend;
    let jacobian = a.jacobian;
    let precision = match a.precision {
        EvalPrecision::Auto if backend.supports_f64() => Precision::F64,
        EvalPrecision::Auto | EvalPrecision::F32 => Precision::F32,
        EvalPrecision::F64 if backend.supports_f64() => Precision::F64,
        EvalPrecision::F64 => {
            return Err(Error::invalid(
                "--precision",
                format!("f64 with --backend {backend}"),
                "f32 or auto on wgpu (WGSL shaders have no f64: it would silently compute in f32); f64 on flex, ndarray or tch",
            ));
        }
    };
    if !backend.is_compiled() {
        return Err(Error::BackendNotCompiled { name: backend.to_string(), feature: backend.feature() });
    }
    Ok((backend, jacobian, precision))
}

/// `--together N`, checked: at least 1.
pub fn together(n: usize) -> Result<usize> {
    Error::at_least_one("--together", n.min(i64::MAX as usize) as i64)?;
    Ok(n)
}

/// The run options of a computing command: its device options, progress unless `--quiet`, figures
/// unless `--no-figures`, and no output directory (set per run).
pub fn run_options(c: &ComputeArgs) -> Result<RunOptions> {
    let (backend, jacobian, eval_precision) = device_options(&c.device)?;
    Ok(RunOptions {
        out: None,
        backend,
        eval_precision,
        jacobian,
        progress: !c.quiet,
        figures: !c.no_figures,
        label: None,
        save_every: Some(c.save_every.unwrap_or_default()),
        together: 1,
    })
}

/// The system a `flag` names: a mechanism file (`.yaml`/`.yml`: the system it defines, no code;
/// `stiffx list` shows the shipped ones) or a registered system's name.
pub fn system_flag(flag: &str, s: &str) -> Result<Box<dyn crate::plugins::system::StiffSystem>> {
    if s.ends_with(".yaml") || s.ends_with(".yml") {
        let m = crate::plugins::mechanism::MechanismSystem::from_file(s)
            .map_err(|e| Error::invalid(flag, s, format!("a readable mechanism file ({e})")))?;
        Ok(Box::new(m))
    } else {
        crate::plugins::registry::system(s)
    }
}

/// Builds the validated config and options of `stiffx run`.
pub fn run_config(a: &RunArgs) -> Result<(Config, RunOptions)> {
    let mut cfg = match &a.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(s) = &a.system {
        // Keep the config's own parameters when it already names this system.
        if crate::plugins::registry::name_of(&cfg.system) != *s {
            cfg.system = system_flag("--system", s)?;
        }
    }
    if let Some(t) = &a.transform {
        cfg.transform = crate::plugins::registry::transform(t)?;
    }
    if let Some(s) = &a.sampler {
        cfg.sampler = crate::plugins::registry::sampler(s)?;
    }
    if let Some(l) = &a.labeller {
        cfg.labeller = crate::plugins::registry::labeller(l)?;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    // A `data` system (chosen by the flags or not) takes its species and grid from the sampler's file.
    cfg.bind_data()?;
    if let Some(e) = a.epochs {
        cfg.train.epochs = e;
    }
    if let Some(b) = a.batch {
        cfg.train.batch = b;
    }
    if let Some(lr) = a.lr {
        cfg.train.lr = lr;
    }
    if let Some(n) = a.lbfgs {
        cfg.train.lbfgs = n;
    }
    if let Some(p) = a.train_precision {
        cfg.train.precision = p;
    }
    cfg.validate()?;
    let opts = run_options(&a.compute)?;
    let out = a.out.clone().unwrap_or_else(|| {
        use crate::plugins::registry::name_of;
        PathBuf::from("runs").join(format!(
            "{}-{}-{}-{}-s{}",
            name_of(&cfg.system),
            name_of(&cfg.transform),
            name_of(&cfg.sampler),
            name_of(&cfg.labeller),
            cfg.seed
        ))
    });
    Ok((cfg, RunOptions { out: Some(out), ..opts }))
}
