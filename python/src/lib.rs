//! `stiffx._stiffx`: the Rust half of the Python package (PyO3). The Python half
//! (`python/stiffx/__init__.py`) gives it shapes, docstrings and progress bars; everything numerical
//! runs here, in the same code as the CLI, so the two cannot drift:
//!
//! - [`Model`]: a checkpoint ([`Checkpoint::load`], format 1 or 2) as the evaluation's
//!   [`LearnedRhs`] — `F = P T⁻¹(a)`, `J = P diag(dT⁻¹/da) ∂a/∂x` (forward or reverse mode), its
//!   eigenvalues, and stiffx's BDF rollouts of the learned and the exact system;
//! - [`run`]: one run of the pipeline from a config (JSON text or a TOML file), with a Python progress
//!   callback as an [`Observer`] and without the interpreter lock while it trains;
//! - [`system::PySystem`]: a system defined in Python as a `StiffSystem`.
//!
//! Every stiffx error is raised as `stiffx.StiffxError` (a `ValueError`) with the CLI's message.

use std::path::PathBuf;

use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stiffx::backend::{Backend, Precision};
use stiffx::config::Config;
use stiffx::engine::checkpoint::Checkpoint;
use stiffx::engine::observe::Observer;
use stiffx::engine::pipeline::RunOptions;
use stiffx::eval::spectral::{JacobianMode, LearnedField, LearnedRhs, eigenvalues};
use stiffx::train::EpochRecord;

mod system;

create_exception!(_stiffx, StiffxError, PyValueError, "An error of stiffx: a bad config, checkpoint or argument.");

/// A stiffx error as a Python exception (the message the CLI prints after `error:`).
fn err(e: stiffx::Error) -> PyErr {
    StiffxError::new_err(e.to_string())
}

/// A stored exception of a Python system, else the stiffx error.
fn err_or_python(e: stiffx::Error) -> PyErr {
    system::take_error().unwrap_or_else(|| err(e))
}

fn backend(name: &str) -> PyResult<Backend> {
    name.parse::<Backend>().map_err(err)
}

fn jacobian_mode(mode: &str) -> PyResult<JacobianMode> {
    match mode {
        "forward" => Ok(JacobianMode::Forward),
        "reverse" => Ok(JacobianMode::Reverse),
        _ => Err(StiffxError::new_err(format!("invalid mode `{mode}`: expected `forward` or `reverse`"))),
    }
}

/// Refuses a system without a right-hand side (a `data` system: a file of trajectories).
fn with_rhs(sys: &dyn stiffx::plugins::system::StiffSystem) -> PyResult<()> {
    if sys.has_reference() {
        return Ok(());
    }
    Err(err(stiffx::Error::invalid(
        "system",
        "data",
        "a system with a right-hand side (a built-in, a mechanism file or a Python system): a `data` system, a file of trajectories, has none",
    )))
}

/// The exact RHS of `sys` at n points through the labeller's code path (batches of 1024 over the rayon
/// threads, without the interpreter lock), or the exception a Python system raised.
fn exact_rhs(
    py: Python<'_>,
    sys: &dyn stiffx::plugins::system::StiffSystem,
    x: &[f64],
    e: &[f64],
) -> PyResult<Vec<f64>> {
    with_rhs(sys)?;
    system::take_error();
    let f = py.detach(|| stiffx::plugins::labeller::exact_rhs_parallel(sys, x, e));
    system::take_error().map_or(Ok(f), Err)
}

/// The exact Jacobians of `sys` at n points as row-major `d × d` blocks, or the exception a Python
/// system raised.
fn exact_jacobian(sys: &dyn stiffx::plugins::system::StiffSystem, x: &[f64], e: &[f64]) -> PyResult<Vec<f64>> {
    with_rhs(sys)?;
    let d = sys.dim();
    system::take_error();
    // nalgebra stores column-major: the transpose's storage is the row-major matrix.
    let j = x.chunks(d).zip(e).flat_map(|(x, e)| sys.jacobian(x, *e).transpose().as_slice().to_vec()).collect();
    system::take_error().map_or(Ok(j), Err)
}

/// A trained operator loaded from a checkpoint: flat, C-ordered f64 arrays in and out (the Python
/// wrapper reshapes).
#[pyclass(unsendable, module = "stiffx._stiffx")]
pub struct Model {
    // Boxed: burn's device types are 64-byte aligned, more than Python's object allocator gives a
    // pyclass's inline storage.
    ck: Box<Checkpoint>,
    rhs: Box<LearnedRhs>,
    path: PathBuf,
}

/// Checks `x` (n × d) against `eps` (n) and returns them as slices.
fn points<'a>(
    d: usize,
    x: &'a PyReadonlyArray2<'_, f64>,
    eps: &'a PyReadonlyArray1<'_, f64>,
) -> PyResult<(&'a [f64], &'a [f64])> {
    let (xs, es) = (x.as_slice()?, eps.as_slice()?);
    let shape = x.shape();
    if shape[1] != d || shape[0] != es.len() {
        return Err(StiffxError::new_err(format!(
            "x has shape {shape:?} and eps {} values: expected x of shape (n, {d}) and n values of eps",
            es.len()
        )));
    }
    if let Some(e) = es.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
        return Err(StiffxError::new_err(format!("invalid eps {e}: expected finite numbers > 0")));
    }
    Ok((xs, es))
}

#[pymethods]
impl Model {
    /// Loads a checkpoint (its `checkpoint.json`, format 1 or 2, or its directory) onto `backend`
    /// in f64.
    #[new]
    #[pyo3(signature = (path, backend = "flex"))]
    fn new(path: PathBuf, backend: &str) -> PyResult<Self> {
        let device = self::backend(backend)?.device().map_err(err)?;
        let ck = Checkpoint::load(&path).map_err(err_or_python)?;
        let rhs = stiffx::eval::evaluate::learned_rhs(&ck, &device, Precision::F64).map_err(err)?;
        Ok(Self { ck: Box::new(ck), rhs: Box::new(rhs), path })
    }

    /// State dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.rhs.dim
    }

    /// Names of the state components.
    #[getter]
    fn state_names(&self) -> Vec<String> {
        self.ck.config.system.state_names()
    }

    /// Name of the stiffness parameter.
    #[getter]
    fn param_name(&self) -> String {
        self.ck.config.system.param_name()
    }

    /// Training and held-out stiffness grids.
    #[getter]
    fn grids(&self) -> (Vec<f64>, Vec<f64>) {
        (self.ck.config.system.train_grid(), self.ck.config.system.unseen_grid())
    }

    /// The system's test initial states.
    #[getter]
    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        self.ck.config.system.test_initial_states()
    }

    /// The checkpoint's metadata as JSON: format, epoch, val_loss, path and the resolved config.
    fn metadata_json(&self) -> PyResult<String> {
        let v = serde_json::json!({
            "format": self.ck.format,
            "path": self.path,
            "epoch": self.ck.epoch,
            "val_loss": if self.ck.val_loss.is_finite() { serde_json::json!(self.ck.val_loss) } else { serde_json::Value::Null },
            "system": stiffx::plugins::registry::name_of(&self.ck.config.system),
            "num_params": self.ck.weights.num_params(),
            "config": serde_json::to_value(&self.ck.config).map_err(|e| StiffxError::new_err(e.to_string()))?,
            "reactions": self.ck.weights.reactions(&self.ck.normalizer),
        });
        Ok(v.to_string())
    }

    /// The learned RHS at n points (flat n·d).
    fn rhs<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.rhs.dim, &x, &eps)?;
        Ok(PyArray1::from_vec(py, self.rhs.rhs(x, e)))
    }

    /// The learned Jacobians at n points (flat n·d·d, row-major blocks).
    #[pyo3(signature = (x, eps, mode = "forward"))]
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
        mode: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mode = jacobian_mode(mode)?;
        let (x, e) = points(self.rhs.dim, &x, &eps)?;
        Ok(PyArray1::from_vec(py, self.rhs.jacobian(x, e, mode)))
    }

    /// Eigenvalues of the learned Jacobians, sorted by decreasing modulus: (re, im), each flat n·d.
    fn eigenvalues<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
        let (x, e) = points(self.rhs.dim, &x, &eps)?;
        let ev = eigenvalues(&self.rhs.jacobian(x, e, JacobianMode::Forward), self.rhs.dim);
        let re = ev.iter().flatten().map(|l| l.re).collect();
        let im = ev.iter().flatten().map(|l| l.im).collect();
        Ok((PyArray1::from_vec(py, re), PyArray1::from_vec(py, im)))
    }

    /// The exact RHS of the checkpoint's system (flat n·d).
    fn exact_rhs<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.rhs.dim, &x, &eps)?;
        Ok(PyArray1::from_vec(py, exact_rhs(py, self.ck.config.system.as_ref(), x, e)?))
    }

    /// The exact Jacobians of the checkpoint's system (flat n·d·d, row-major blocks).
    fn exact_jacobian<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.rhs.dim, &x, &eps)?;
        Ok(PyArray1::from_vec(py, exact_jacobian(self.ck.config.system.as_ref(), x, e)?))
    }

    /// stiffx's BDF rollouts of the learned RHS (learned Jacobian in Newton) from each row of `x0`,
    /// sampled at `times`: flat m·T·d; a trajectory on which the solver fails is NaN.
    #[pyo3(signature = (x0, eps, times, rtol = 1e-6, atol = 1e-10))]
    fn rollout<'py>(
        &self,
        py: Python<'py>,
        x0: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
        times: Vec<f64>,
        rtol: f64,
        atol: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.rhs.dim, &x0, &eps)?;
        Ok(PyArray1::from_vec(py, LearnedField::rollout_bdf(self.rhs.as_ref(), x, e, &times, rtol, atol)))
    }

    /// stiffx's BDF solution of the exact system (its analytic or finite-difference Jacobian) from
    /// each row of `x0`, sampled at `times`: flat m·T·d.
    #[pyo3(signature = (x0, eps, times, rtol = 1e-10, atol = 1e-14))]
    fn reference<'py>(
        &self,
        py: Python<'py>,
        x0: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
        times: Vec<f64>,
        rtol: f64,
        atol: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let d = self.rhs.dim;
        let (x, e) = points(d, &x0, &eps)?;
        with_rhs(self.ck.config.system.as_ref())?;
        let mut out = Vec::with_capacity(e.len() * times.len() * d);
        for (x, e) in x.chunks(d).zip(e) {
            let sys = self.ck.config.system.as_ref();
            out.extend(
                stiffx::ode::solve_at_with(sys, *e, x, &times, rtol, atol, false, stiffx::ode::Method::Bdf)
                    .map_err(err_or_python)?,
            );
        }
        Ok(PyArray1::from_vec(py, out))
    }
}

/// A system itself (built-in, mechanism file or Python-defined): its exact RHS and Jacobian through
/// the code that labels training data.
#[pyclass(frozen, module = "stiffx._stiffx")]
pub struct ExactSystem {
    sys: Box<dyn stiffx::plugins::system::StiffSystem>,
}

#[pymethods]
impl ExactSystem {
    /// From a `[system]` table as JSON (`{"type": "robertson"}`, `{"type": "mechanism", "file": …}`),
    /// or from a Python object following `stiffx.System`'s protocol.
    #[new]
    #[pyo3(signature = (spec = None, obj = None))]
    fn new(py: Python<'_>, spec: Option<&str>, obj: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let sys: Box<dyn stiffx::plugins::system::StiffSystem> = match (spec, obj) {
            (_, Some(o)) => Box::new(system::PySystem::register(py, o)?),
            (Some(s), None) => serde_json::from_str(s)
                .map_err(|e| err(stiffx::Error::Config { path: "<system>".into(), message: e.to_string() }))?,
            (None, None) => return Err(StiffxError::new_err("give a system spec or a Python system object")),
        };
        with_rhs(sys.as_ref())?;
        for e in sys.train_grid().into_iter().chain(sys.unseen_grid()) {
            sys.check_param(e).map_err(err)?;
        }
        Ok(Self { sys })
    }

    /// State dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.sys.dim()
    }

    /// Names of the state components.
    #[getter]
    fn state_names(&self) -> Vec<String> {
        self.sys.state_names()
    }

    /// Training and held-out stiffness grids.
    #[getter]
    fn grids(&self) -> (Vec<f64>, Vec<f64>) {
        (self.sys.train_grid(), self.sys.unseen_grid())
    }

    /// Test initial states.
    #[getter]
    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        self.sys.test_initial_states()
    }

    /// Linear invariants (conservation laws) `w` with `w·F = 0`.
    #[getter]
    fn invariants(&self) -> Vec<Vec<f64>> {
        self.sys.invariants()
    }

    /// The exact RHS at n points (flat n·d), computed as labelling computes it: batches of 1024 points
    /// over the rayon threads, without the interpreter lock (a Python system takes it per batch).
    fn rhs<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.sys.dim(), &x, &eps)?;
        Ok(PyArray1::from_vec(py, exact_rhs(py, self.sys.as_ref(), x, e)?))
    }

    /// The exact Jacobians at n points (flat n·d·d, row-major blocks).
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        eps: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, e) = points(self.sys.dim(), &x, &eps)?;
        Ok(PyArray1::from_vec(py, exact_jacobian(self.sys.as_ref(), x, e)?))
    }

    /// The system as configs write it (JSON).
    fn spec_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.sys).map_err(|e| StiffxError::new_err(e.to_string()))
    }
}

/// Hands the run loop's progress to a Python callable `callback(stage, done, total, info)`.
struct PyProgress {
    callback: Py<PyAny>,
    rows: usize,
}

impl PyProgress {
    fn call(&self, stage: &str, done: usize, total: usize, info: Option<(f64, f64)>) -> stiffx::Result<()> {
        Python::attach(|py| {
            let info = info.map(|(t, v)| (("train_loss", t), ("val_loss", v)));
            self.callback.call1(py, (stage, done, total, info)).map(|_| ()).map_err(|e| {
                let msg = e.to_string();
                system::store_error(e);
                stiffx::Error::invalid("progress", "callback", format!("a callable that does not raise ({msg})"))
            })
        })
    }
}

impl Observer for PyProgress {
    fn on_data(&mut self, _cfg: &Config, _data: &stiffx::engine::data::Data) -> stiffx::Result<()> {
        self.call("data", 1, 1, None)
    }
    fn on_train_start(&mut self, _ck: &Checkpoint, rows: usize) -> stiffx::Result<()> {
        self.rows = rows;
        self.call("train", 0, rows, None)
    }
    fn on_epoch(&mut self, curve: &[EpochRecord], _improved: bool, _best: &Checkpoint) -> stiffx::Result<()> {
        let last = curve.last().map(|r| (r.train_loss, r.val_loss));
        self.call("train", curve.len(), self.rows, last)
    }
    fn on_trained(&mut self, _ck: &Checkpoint) -> stiffx::Result<()> {
        self.call("evaluate", 0, 1, None)
    }
    fn on_evaluated(&mut self, _ev: &stiffx::engine::observe::Evaluated<'_>) -> stiffx::Result<()> {
        self.call("evaluate", 1, 1, None)
    }
}

/// Stops a run at its next stage or epoch once a Python system method or the progress callback has
/// raised (the exception itself is returned to the caller by [`run`]).
struct StopOnPythonError;

impl StopOnPythonError {
    fn check() -> stiffx::Result<()> {
        if system::has_error() {
            return Err(stiffx::Error::invalid("system", "python", "a Python system whose methods do not raise"));
        }
        Ok(())
    }
}

impl Observer for StopOnPythonError {
    fn on_data(&mut self, _cfg: &Config, _data: &stiffx::engine::data::Data) -> stiffx::Result<()> {
        Self::check()
    }
    fn on_train_start(&mut self, _ck: &Checkpoint, _rows: usize) -> stiffx::Result<()> {
        Self::check()
    }
    fn on_epoch(&mut self, _curve: &[EpochRecord], _improved: bool, _best: &Checkpoint) -> stiffx::Result<()> {
        Self::check()
    }
    fn on_trained(&mut self, _ck: &Checkpoint) -> stiffx::Result<()> {
        Self::check()
    }
    fn on_evaluated(&mut self, _ev: &stiffx::engine::observe::Evaluated<'_>) -> stiffx::Result<()> {
        Self::check()
    }
}

/// Parses a config: JSON text (from a dict) or, with `is_path`, a TOML file.
fn parse_config(config: &str, is_path: bool) -> PyResult<Config> {
    let cfg = if is_path {
        Config::from_file(std::path::Path::new(config)).map_err(err)?
    } else {
        Config::from_json(config).map_err(err)?
    };
    cfg.validate().map_err(err)?;
    Ok(cfg)
}

/// Runs the pipeline for a config and returns its metrics as JSON. `system`: a Python object that
/// replaces the config's `[system]`; `progress`: a callable or None; `out`: the run directory (None:
/// write nothing).
#[pyfunction]
#[pyo3(signature = (config, is_path, out = None, system = None, progress = None, backend = "flex", figures = false, seed = None))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    config: &str,
    is_path: bool,
    out: Option<PathBuf>,
    system: Option<Bound<'_, PyAny>>,
    progress: Option<Py<PyAny>>,
    backend: &str,
    figures: bool,
    seed: Option<u64>,
) -> PyResult<String> {
    let mut cfg = if let Some(obj) = system {
        let sys = system::PySystem::register(py, obj)?;
        // The config's own [system] (if any) is replaced by the Python object.
        // Validated only with the Python system in place (a data sampler with the `direct` labeller is
        // refused for the file's own data system, not for a system with a RHS).
        let mut v: serde_json::Value = if is_path {
            let cfg = Config::from_file(std::path::Path::new(config)).map_err(err)?;
            serde_json::to_value(cfg).map_err(|e| StiffxError::new_err(e.to_string()))?
        } else {
            serde_json::from_str(config).map_err(|e| StiffxError::new_err(e.to_string()))?
        };
        v["system"] = serde_json::to_value(&sys as &dyn stiffx::plugins::system::StiffSystem)
            .map_err(|e| StiffxError::new_err(e.to_string()))?;
        parse_config(&v.to_string(), false)?
    } else {
        parse_config(config, is_path)?
    };
    if let Some(s) = seed {
        cfg.seed = s;
    }
    let opts = RunOptions { out, backend: self::backend(backend)?, figures, ..RunOptions::default() };
    system::take_error();
    let metrics = py.detach(move || -> stiffx::Result<String> {
        let data = stiffx::engine::data::generate(&cfg)?;
        let mut files = opts.out.as_ref().map(|o| stiffx::engine::observe::Files {
            out: o.clone(),
            hash: String::new(),
            figures: opts.figures,
            label: o.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned()),
        });
        let mut bar = progress.map(|callback| PyProgress { callback, rows: 0 });
        let mut stop = StopOnPythonError;
        let mut observers: Vec<&mut dyn Observer> = vec![&mut stop];
        if let Some(f) = files.as_mut() {
            observers.push(f);
        }
        if let Some(b) = bar.as_mut() {
            observers.push(b);
        }
        let m = stiffx::engine::pipeline::run_observed(&cfg, &opts, &data, &mut observers, None)?;
        serde_json::to_string(&m).map_err(|e| stiffx::Error::io("<metrics>", std::io::Error::other(e)))
    });
    // A Python exception inside the system or the callback comes first: it is the cause.
    if let Some(e) = system::take_error() {
        return Err(e);
    }
    metrics.map_err(err)
}

/// The version of the stiffx crate inside.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Registered plugins: (kind, name, description) for every system, transform, sampler and labeller.
#[pyfunction]
fn plugins() -> Vec<(String, String, String)> {
    stiffx::plugins::registry::list()
        .into_iter()
        .map(|e| (e.kind.to_string(), e.name, e.description.to_string()))
        .collect()
}

#[pymodule]
fn _stiffx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    stiffx::resources::keep_freed_memory();
    m.add("StiffxError", m.py().get_type::<StiffxError>())?;
    m.add_class::<Model>()?;
    m.add_class::<ExactSystem>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(plugins, m)?)?;
    Ok(())
}
