//! A stiff system defined in Python, as a [`StiffSystem`] (`[system] type = "python"`).
//!
//! The Python object (an instance of a class following `stiffx.System`'s protocol) provides a
//! **batched** `rhs(x, eps)` on an `(n, d)` array and an `(n,)` array of stiffness values, optionally a
//! batched `jacobian(x, eps)` returning `(n, d, d)`, its grids, test initial states and either
//! `sample_initial(rng)` or `initial_ranges`. Labelling calls [`StiffSystem::rhs_batch`], so a
//! vectorised NumPy RHS is called once per 1024 states; solvers call the per-point methods. The
//! interpreter lock is taken only around those calls (training and evaluation run without it).
//!
//! Serialised (configs, checkpoints) as the object's `module` and `name` (the class's qualified name)
//! and the SHA-256 of the class's source. Deserialising resolves them in this order: a live object
//! registered by `stiffx.run(system=…)` in this process, else `import module` and
//! `getattr(module, name)` (a class is instantiated without arguments). A class whose source hash
//! differs from the recorded one is refused, so that a checkpoint is never silently evaluated against
//! another system.
//!
//! `rhs` cannot return an error through the trait: a Python exception inside it is stored
//! ([`take_error`]), the point is filled with NaN, and the caller raises the stored exception when the
//! run returns.

use std::collections::HashMap;
use std::sync::Mutex;

use nalgebra::DMatrix;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyAnyMethods, PyType};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use stiffx::plugins::system::StiffSystem;

/// Live objects registered by `stiffx.run(system=…)`, by `(module, name)`.
static LIVE: Mutex<Option<HashMap<(String, String), Py<PyAny>>>> = Mutex::new(None);
/// The first Python exception raised inside a trait method since the last [`take_error`].
static ERROR: Mutex<Option<PyErr>> = Mutex::new(None);

/// The stored Python exception, if a system method raised one.
pub fn take_error() -> Option<PyErr> {
    ERROR.lock().ok().and_then(|mut e| e.take())
}

/// Whether a system method or callback raised since the last [`take_error`]: from then on no Python
/// method is called again (they return NaN at once), and the run's observers stop it at the next stage
/// or epoch, so that one exception does not cost the rest of a long run.
pub fn has_error() -> bool {
    ERROR.lock().map(|e| e.is_some()).unwrap_or(true)
}

/// Keeps `e` (the first one) for [`take_error`].
pub fn store_error(e: PyErr) {
    if let Ok(mut slot) = ERROR.lock() {
        slot.get_or_insert(e);
    }
}

/// The part of a Python system that is written to configs and checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    /// Module that defines the class (`__module__`).
    module: String,
    /// The class's qualified name (`__qualname__`).
    name: String,
    /// SHA-256 of the class's source (`inspect.getsource`); `None` when Python cannot show it.
    #[serde(default)]
    source_sha256: Option<String>,
    /// Informational: dimension and names at the time of writing.
    #[serde(default)]
    dim: Option<usize>,
    #[serde(default)]
    state_names: Option<Vec<String>>,
}

/// A Python-defined system (see the module docs).
#[derive(Debug)]
pub struct PySystem {
    spec: Spec,
    obj: Py<PyAny>,
    dim: usize,
    state_names: Vec<String>,
    param_name: String,
    train_grid: Vec<f64>,
    unseen_grid: Vec<f64>,
    test_states: Vec<Vec<f64>>,
    invariants: Vec<Vec<f64>>,
    ranges: Option<Vec<(f64, f64)>>,
    has_jacobian: bool,
}

/// A clone shares the Python object (a new reference, taken with the interpreter attached): the
/// same instance answers both, as it would in Python.
impl Clone for PySystem {
    fn clone(&self) -> Self {
        Self {
            spec: self.spec.clone(),
            obj: Python::attach(|py| self.obj.clone_ref(py)),
            dim: self.dim,
            state_names: self.state_names.clone(),
            param_name: self.param_name.clone(),
            train_grid: self.train_grid.clone(),
            unseen_grid: self.unseen_grid.clone(),
            test_states: self.test_states.clone(),
            invariants: self.invariants.clone(),
            ranges: self.ranges.clone(),
            has_jacobian: self.has_jacobian,
        }
    }
}

impl Serialize for PySystem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.spec.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PySystem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = Spec::deserialize(d)?;
        Python::attach(|py| PySystem::resolve(py, spec)).map_err(serde::de::Error::custom)
    }
}

/// `module.name` for messages.
fn dotted(spec: &Spec) -> String {
    format!("{}.{}", spec.module, spec.name)
}

/// SHA-256 of the source of `cls`, or `None` when `inspect.getsource` cannot show it.
fn source_hash(py: Python<'_>, cls: &Bound<'_, PyAny>) -> Option<String> {
    let src: String = py.import("inspect").ok()?.call_method1("getsource", (cls,)).ok()?.extract().ok()?;
    Some(stiffx::io::sha256_hex(src.as_bytes()))
}

impl PySystem {
    /// Registers a live object for this process and returns its system (what `stiffx.run` does).
    pub fn register(py: Python<'_>, obj: Bound<'_, PyAny>) -> PyResult<Self> {
        let cls = obj.get_type();
        let module: String = cls.getattr("__module__")?.extract()?;
        let name: String = cls.getattr("__qualname__")?.extract()?;
        let spec = Spec { source_sha256: source_hash(py, cls.as_any()), module, name, dim: None, state_names: None };
        LIVE.lock()
            .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("registry lock poisoned"))?
            .get_or_insert_with(HashMap::new)
            .insert((spec.module.clone(), spec.name.clone()), obj.clone().unbind());
        Self::from_object(py, spec, obj).map_err(crate::StiffxError::new_err)
    }

    /// Finds the object a spec names (see the module docs) and reads its metadata.
    fn resolve(py: Python<'_>, spec: Spec) -> Result<Self, String> {
        let live = LIVE.lock().ok().and_then(|m| {
            m.as_ref().and_then(|m| m.get(&(spec.module.clone(), spec.name.clone())).map(|o| o.clone_ref(py)))
        });
        let obj = match live {
            Some(o) => o.into_bound(py),
            None => {
                let module = py.import(spec.module.as_str()).map_err(|e| {
                    format!(
                        "a Python-defined system, `{}`: cannot import module `{}` ({e}); make it importable \
                         (PYTHONPATH) or pass the object again with stiffx.run(system=…) / stiffx.load(…, system=…)",
                        dotted(&spec),
                        spec.module
                    )
                })?;
                let mut o = module.into_any();
                for part in spec.name.split('.') {
                    o = o.getattr(part).map_err(|_| {
                        format!("a Python-defined system: module `{}` has no `{}`", spec.module, spec.name)
                    })?;
                }
                if o.is_instance_of::<PyType>() {
                    o = o.call0().map_err(|e| {
                        format!(
                            "a Python-defined system: `{}()` failed ({e}); its class must construct without arguments",
                            dotted(&spec)
                        )
                    })?;
                }
                o
            }
        };
        if let Some(want) = &spec.source_sha256 {
            let now = source_hash(py, obj.get_type().as_any());
            if now.as_ref() != Some(want) {
                return Err(format!(
                    "a Python-defined system, `{}`, has changed since this was written: its source hash is {}, the \
                     recorded one {want}",
                    dotted(&spec),
                    now.as_deref().unwrap_or("unavailable")
                ));
            }
        }
        Self::from_object(py, spec, obj)
    }

    /// Reads the metadata of `obj`, with errors naming the attribute.
    fn from_object(py: Python<'_>, mut spec: Spec, obj: Bound<'_, PyAny>) -> Result<Self, String> {
        let what = dotted(&spec);
        let attr = |n: &str| obj.getattr(n).map_err(|_| format!("Python system `{what}` has no attribute `{n}`"));
        let floats = |n: &str| -> Result<Vec<f64>, String> {
            let v = attr(n)?;
            let v = py
                .import("numpy")
                .and_then(|np| np.call_method1("asarray", (v, "float64")))
                .and_then(|a| a.call_method0("ravel"))
                .and_then(|a| a.call_method0("tolist"));
            v.and_then(|v| v.extract::<Vec<f64>>())
                .map_err(|e| format!("Python system `{what}`.{n}: expected a list of numbers ({e})"))
        };
        let rows = |n: &str| -> Result<Vec<Vec<f64>>, String> {
            let v = attr(n)?;
            let v = py
                .import("numpy")
                .and_then(|np| np.call_method1("asarray", (v, "float64")))
                .and_then(|a| a.call_method0("tolist"));
            v.and_then(|v| v.extract::<Vec<Vec<f64>>>())
                .map_err(|e| format!("Python system `{what}`.{n}: expected a 2-D array of numbers ({e})"))
        };
        let dim: usize =
            attr("dim")?.extract().map_err(|e| format!("Python system `{what}`.dim: expected an int ({e})"))?;
        if dim == 0 {
            return Err(format!("Python system `{what}`.dim: expected an int ≥ 1"));
        }
        let state_names = match obj.getattr("state_names") {
            Ok(v) => v
                .extract::<Vec<String>>()
                .map_err(|e| format!("Python system `{what}`.state_names: expected a list of str ({e})"))?,
            Err(_) => (1..=dim).map(|i| format!("x{i}")).collect(),
        };
        let param_name =
            obj.getattr("param_name").ok().and_then(|v| v.extract::<String>().ok()).unwrap_or_else(|| "eps".into());
        let test_states = rows("test_initial_states")?;
        let invariants = if obj.hasattr("invariants").unwrap_or(false) { rows("invariants")? } else { Vec::new() };
        let ranges = if obj.hasattr("initial_ranges").unwrap_or(false) {
            let r = rows("initial_ranges")?;
            if r.len() != dim || r.iter().any(|p| p.len() != 2 || !(p[0] <= p[1])) {
                return Err(format!(
                    "Python system `{what}`.initial_ranges: expected {dim} pairs (low, high) with low ≤ high"
                ));
            }
            Some(r.into_iter().map(|p| (p[0], p[1])).collect())
        } else {
            None
        };
        let has_sample = obj.hasattr("sample_initial").unwrap_or(false);
        if ranges.is_none() && !has_sample {
            return Err(format!("Python system `{what}`: define `sample_initial(self, rng)` or `initial_ranges`"));
        }
        if !obj.hasattr("rhs").unwrap_or(false) {
            return Err(format!("Python system `{what}` has no method `rhs(self, x, eps)`"));
        }
        let has_jacobian = obj.hasattr("jacobian").unwrap_or(false);
        let sys = Self {
            train_grid: floats("train_grid")?,
            unseen_grid: floats("unseen_grid")?,
            dim,
            state_names,
            param_name,
            test_states,
            invariants,
            ranges,
            has_jacobian,
            obj: obj.unbind(),
            spec: Spec { dim: None, state_names: None, ..spec.clone() },
        };
        spec.dim = Some(sys.dim);
        spec.state_names = Some(sys.state_names.clone());
        let sys = Self { spec, ..sys };
        if sys.state_names.len() != dim {
            return Err(format!("Python system `{what}`.state_names: {} names for dim = {dim}", sys.state_names.len()));
        }
        if let Some(s) = sys.test_states.iter().find(|s| s.len() != dim) {
            return Err(format!(
                "Python system `{what}`.test_initial_states: a state of length {} for dim = {dim}",
                s.len()
            ));
        }
        if sys.train_grid.is_empty() {
            return Err(format!("Python system `{what}`.train_grid: expected at least one stiffness value"));
        }
        Ok(sys)
    }

    /// Calls `method(x, eps)` with `x` as `(n, d)` and `eps` as `(n,)` and returns its result as a flat
    /// C-ordered f64 vector of `n · per_point` numbers.
    fn call(&self, method: &str, x: &[f64], eps: &[f64], per_point: usize) -> PyResult<Vec<f64>> {
        if has_error() {
            return Err(crate::StiffxError::new_err("not called: an earlier call raised"));
        }
        Python::attach(|py| {
            let n = eps.len();
            let xa = PyArray1::from_slice(py, x).reshape([n, self.dim])?;
            let ea = PyArray1::from_slice(py, eps);
            let out = self.obj.bind(py).call_method1(method, (xa, ea))?;
            let np = py.import("numpy")?;
            let arr = np.call_method1("ascontiguousarray", (out, "float64"))?;
            let arr: PyReadonlyArrayDyn<f64> = arr.extract()?;
            if arr.len() != n * per_point {
                return Err(crate::StiffxError::new_err(format!(
                    "Python system `{}`.{method}: returned {} numbers (shape {:?}) for {n} states, expected {} each",
                    dotted(&self.spec),
                    arr.len(),
                    arr.shape(),
                    per_point
                )));
            }
            Ok(arr.as_slice()?.to_vec())
        })
    }
}

#[typetag::serde(name = "python")]
impl StiffSystem for PySystem {
    fn dim(&self) -> usize {
        self.dim
    }
    fn state_names(&self) -> Vec<String> {
        self.state_names.clone()
    }
    fn param_name(&self) -> String {
        self.param_name.clone()
    }
    fn train_grid(&self) -> Vec<f64> {
        self.train_grid.clone()
    }
    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_grid.clone()
    }
    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        self.rhs_batch(x, &[eps], dx);
    }
    fn rhs_batch(&self, x: &[f64], eps: &[f64], dx: &mut [f64]) {
        match self.call("rhs", x, eps, self.dim) {
            Ok(v) => dx.copy_from_slice(&v),
            Err(e) => {
                store_error(e);
                dx.fill(f64::NAN);
            }
        }
    }
    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        if !self.has_jacobian {
            return stiffx::plugins::system::fd_jacobian(|x, dx| self.rhs(x, eps, dx), x);
        }
        match self.call("jacobian", x, &[eps], self.dim * self.dim) {
            Ok(v) => DMatrix::from_row_slice(self.dim, self.dim, &v),
            Err(e) => {
                store_error(e);
                DMatrix::from_element(self.dim, self.dim, f64::NAN)
            }
        }
    }
    fn initial_unit_dims(&self) -> Option<usize> {
        self.ranges.as_ref().map(Vec::len)
    }
    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let r: Vec<[f64; 2]> = self.ranges.as_ref()?.iter().map(|&(lo, hi)| [lo, hi]).collect();
        stiffx::plugins::system::from_unit_box(&r, u)
    }
    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        if let Some(r) = &self.ranges {
            return r.iter().map(|(lo, hi)| if lo == hi { *lo } else { rng.random_range(*lo..*hi) }).collect();
        }
        // A NumPy generator seeded from the run's generator: deterministic for a given seed.
        let seed: u64 = rng.random();
        if has_error() {
            return vec![f64::NAN; self.dim];
        }
        let got = Python::attach(|py| -> PyResult<Vec<f64>> {
            let g = py.import("numpy.random")?.call_method1("default_rng", (seed,))?;
            let v = self.obj.bind(py).call_method1("sample_initial", (g,))?;
            let v = py.import("numpy")?.call_method1("asarray", (v, "float64"))?.call_method0("ravel")?;
            v.call_method0("tolist")?.extract()
        });
        match got {
            Ok(v) if v.len() == self.dim => v,
            Ok(v) => {
                store_error(crate::StiffxError::new_err(format!(
                    "Python system `{}`.sample_initial: returned {} numbers, expected dim = {}",
                    dotted(&self.spec),
                    v.len(),
                    self.dim
                )));
                vec![f64::NAN; self.dim]
            }
            Err(e) => {
                store_error(e);
                vec![f64::NAN; self.dim]
            }
        }
    }
    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        self.test_states.clone()
    }
    fn invariants(&self) -> Vec<Vec<f64>> {
        self.invariants.clone()
    }
}
