//! Run-time backend choice. burn 0.22 has no backend type parameter: a [`Device`] is picked at run
//! time and cargo features decide which backends are compiled in (`flex` by default; `ndarray`,
//! `wgpu`, `tch` on request). Asking for a backend that was not compiled in is an error naming the
//! cargo feature to enable.
//!
//! Precision: training runs in f32 (as the paper, and as GPUs prefer); Jacobians and eigenvalues can be
//! computed in f64 ([`Precision::F64`]) on backends that support it (flex, ndarray, tch; not wgpu,
//! whose WGSL shaders have no f64). ndarray computes `sigmoid` (hence SiLU) at f32 accuracy even in
//! f64 — see STACK-FACTS — so f64 spectral work should use flex.
//!
//! burn's own CUDA backend (CubeCL, `burn/cuda`) is not offered: its build downloads an LLVM bundle from
//! GitHub (`tracel-llvm-bundler`), which the machines this was developed and tested on cannot reach, so
//! it could be neither built nor measured here. CUDA goes through libtorch (`tch-cuda`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A burn backend, selectable with `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// burn-flex (pure Rust, SIMD + rayon). Default.
    Flex,
    /// burn-ndarray.
    Ndarray,
    /// burn-wgpu, default adapter (Vulkan, Metal, DX12; lavapipe on a CPU-only Linux machine).
    Wgpu,
    /// libtorch on the CPU.
    #[value(alias = "libtorch")]
    Tch,
    /// libtorch on CUDA device 0.
    #[value(alias = "cuda")]
    TchCuda,
    /// libtorch on Apple MPS.
    #[value(alias = "mps")]
    TchMps,
}

/// Floating-point precision of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit floats (default).
    #[default]
    F32,
    /// 64-bit floats.
    F64,
}

impl Backend {
    /// Every backend name accepted by `--backend`.
    pub const NAMES: [&'static str; 6] = ["flex", "ndarray", "wgpu", "tch", "tch-cuda", "tch-mps"];

    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Tch | Backend::TchCuda | Backend::TchMps => "tch",
        }
    }

    /// Backends compiled into this binary.
    pub fn compiled() -> Vec<Backend> {
        [Backend::Flex, Backend::Ndarray, Backend::Wgpu, Backend::Tch, Backend::TchCuda, Backend::TchMps]
            .into_iter()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// Whether the backend computes in true f64. wgpu does not: WGSL has no 64-bit floats, and an f64
    /// tensor on wgpu is computed in f32 (measured by the parity tests: 2e-7 relative error instead of
    /// 1e-15), so spectral evaluations there run in f32.
    pub fn supports_f64(self) -> bool {
        !matches!(self, Backend::Wgpu)
    }

    /// Data-parallel shards per training batch when `train.shards = 0`: 2 on flex and ndarray, whose
    /// elementwise kernels are single-threaded (sharding measured 1.4–1.8× on 2 cores), 1 on libtorch
    /// (already multi-threaded: 2 shards measured 0.70×) and wgpu (one GPU queue).
    pub fn default_shards(self) -> i64 {
        match self {
            Backend::Flex | Backend::Ndarray => 2,
            _ => 1,
        }
    }

    /// Whether the backend's cargo feature was enabled at build time.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Tch | Backend::TchCuda | Backend::TchMps => cfg!(feature = "tch"),
        }
    }

    /// The default backend of this build: flex when compiled in, else the first compiled one.
    pub fn default_compiled() -> Result<Backend> {
        Backend::compiled().into_iter().next().ok_or_else(|| {
            Error::invalid(
                "--backend",
                "(none compiled)",
                "build with at least one backend feature: flex, ndarray, wgpu or tch",
            )
        })
    }

    /// The (non-autodiff) device. Its default float type stays f32; f64 work creates its tensors with
    /// an explicit [`Precision::dtype`] (a burn device's default dtype can be set only once per process).
    #[allow(deprecated, unreachable_code)]
    pub fn device(self) -> Result<Device> {
        if !self.is_compiled() {
            return Err(Error::BackendNotCompiled { name: self.to_string(), feature: self.feature() });
        }
        let device: Device = match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "tch")]
            Backend::Tch => Device::libtorch(),
            #[cfg(feature = "tch")]
            Backend::TchCuda => Device::libtorch_cuda(0),
            #[cfg(feature = "tch")]
            Backend::TchMps => Device::libtorch_mps(),
            #[allow(unreachable_patterns)]
            _ => return Err(Error::BackendNotCompiled { name: self.to_string(), feature: self.feature() }),
        };
        if self.is_gpu() {
            self.probe(&device)?;
        }
        Ok(device)
    }

    /// Whether the backend runs on a GPU (whose runtime may be missing where the binary runs).
    pub fn is_gpu(self) -> bool {
        matches!(self, Backend::Wgpu | Backend::TchCuda | Backend::TchMps)
    }

    /// Starts the device with a one-element round trip. burn's devices are lazy and panic on first use
    /// when their runtime is missing (no CUDA driver, no Vulkan adapter, libtorch without
    /// CUDA); that panic becomes [`Error::BackendUnavailable`] here, before any work is done. The panic
    /// hook is silenced meanwhile (it is process-wide: a panic of another thread in that window prints
    /// nothing, though it still unwinds).
    fn probe(self, device: &Device) -> Result<()> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            burn::tensor::Tensor::<1>::from_floats([1.0f32], device).into_data().try_into_vec::<f32>()
        }));
        std::panic::set_hook(hook);
        let reason = match result {
            Ok(Ok(v)) if v == [1.0] => return Ok(()),
            Ok(Ok(v)) => format!("a round trip of [1.0] returned {v:?}"),
            Ok(Err(e)) => format!("{e:?}"),
            Err(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the device panicked on first use".into()),
        };
        // libtorch's messages carry a C++ backtrace after the first line, as a real or (inside a Debug
        // string) an escaped newline: keep what precedes either.
        let first = reason.split('\n').flat_map(|l| l.split("\\n")).next().unwrap_or_default();
        let hint = self.runtime_hint(library_loads(VULKAN_LOADER)).map_or(String::new(), |h| format!("; {h}"));
        Err(Error::BackendUnavailable { name: self.to_string(), reason: format!("{first}{hint}") })
    }

    /// What a user can do when the GPU backend did not start, given whether the Vulkan loader
    /// ([`VULKAN_LOADER`]) loads: for wgpu, install the loader (its absence shows up in wgpu only as
    /// an opaque `RecvError`) or a Vulkan driver; for libtorch on CUDA, check the driver and the
    /// libtorch build.
    pub fn runtime_hint(self, vulkan_loader: bool) -> Option<String> {
        match self {
            Backend::Wgpu if cfg!(target_os = "macos") => Some(
                "wgpu runs on Metal here: check that the Mac has a Metal GPU (`system_profiler SPDisplaysDataType`)"
                    .into(),
            ),
            Backend::Wgpu if !vulkan_loader => Some(format!(
                "no Vulkan loader ({VULKAN_LOADER}) was found: install it (Debian/Ubuntu: `apt install libvulkan1`; \
                 Fedora: `dnf install vulkan-loader`) or put its directory on LD_LIBRARY_PATH"
            )),
            Backend::Wgpu => Some(
                "the Vulkan loader is there but no adapter started: check the GPU's Vulkan driver \
                 (`vulkaninfo --summary`), or install Mesa's CPU driver lavapipe (`apt install mesa-vulkan-drivers`)"
                    .into(),
            ),
            Backend::TchCuda => Some(
                "check the NVIDIA driver (`nvidia-smi`) and that LIBTORCH (or the torch wheel) is a CUDA build".into(),
            ),
            Backend::TchMps => Some("libtorch's MPS device needs macOS on Apple silicon".into()),
            _ => None,
        }
    }
}

/// The Vulkan loader that wgpu opens at run time on Linux.
pub const VULKAN_LOADER: &str = "libvulkan.so.1";

/// Whether the dynamic library `name` can be loaded (`dlopen`, then closed again); `false` where
/// there is no `dlopen` (not Unix).
#[cfg(not(unix))]
pub fn library_loads(_name: &str) -> bool {
    false
}

/// Whether the dynamic library `name` can be loaded (`dlopen`, then closed again).
#[cfg(unix)]
pub fn library_loads(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else { return false };
    // SAFETY: `c` is a valid NUL-terminated string; the handle is closed before returning and no
    // symbol from it is used.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if h.is_null() {
            return false;
        }
        libc::dlclose(h);
    }
    true
}

impl Precision {
    /// `Ok` when `backend` can train in this precision; else an error naming `train.precision` (f64 is
    /// not on wgpu: WGSL has no 64-bit floats, and burn would compute the "f64" tensors in f32).
    pub fn check_training(self, backend: Backend) -> Result<()> {
        if self == Precision::F64 && !backend.supports_f64() {
            return Err(Error::invalid(
                "train.precision",
                "f64",
                format!(
                    "f32 on backend `{backend}` (no 64-bit floats in its shaders); f64 trains on flex, ndarray, tch"
                ),
            ));
        }
        Ok(())
    }

    /// Whether this is f32 (the default).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// The burn float dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Tch => "tch",
            Backend::TchCuda => "tch-cuda",
            Backend::TchMps => "tch-mps",
        };
        f.write_str(s)
    }
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "flex" => Backend::Flex,
            "ndarray" => Backend::Ndarray,
            "wgpu" => Backend::Wgpu,
            "tch" | "libtorch" => Backend::Tch,
            "tch-cuda" | "cuda" => Backend::TchCuda,
            "tch-mps" | "mps" => Backend::TchMps,
            _ => {
                return Err(Error::Unknown {
                    kind: "backend",
                    name: s.to_string(),
                    known: Backend::NAMES.iter().map(|s| s.to_string()).collect(),
                });
            }
        })
    }
}

/// Threads that evaluation work on `device` is split over (the learned RHS and Jacobian on large
/// batches, `eval::spectral::LearnedRhs`): [`Backend::default_shards`] of the device's backend, so 2 on the
/// CPU backends (single-threaded elementwise kernels) and 1 on libtorch and GPUs. A fixed number, not
/// the machine's core count, so that results do not depend on the machine.
pub fn host_shards(device: &Device) -> usize {
    #[cfg(feature = "flex")]
    if *device == Device::flex() {
        return Backend::Flex.default_shards() as usize;
    }
    #[cfg(feature = "ndarray")]
    if *device == Device::ndarray() {
        return Backend::Ndarray.default_shards() as usize;
    }
    let _ = device;
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loader check loads what is there and not what is not; the hints name what to install.
    #[test]
    fn a_gpu_backend_that_cannot_start_says_what_to_install() {
        assert!(library_loads("libc.so.6") && !library_loads("libstiffx-no-such-library.so.7"));
        let missing = Backend::Wgpu.runtime_hint(false).unwrap();
        assert!(missing.contains("libvulkan.so.1") && missing.contains("apt install libvulkan1"), "{missing}");
        let no_adapter = Backend::Wgpu.runtime_hint(true).unwrap();
        assert!(no_adapter.contains("vulkaninfo") && no_adapter.contains("mesa-vulkan-drivers"), "{no_adapter}");
        assert!(Backend::TchCuda.runtime_hint(true).unwrap().contains("nvidia-smi"));
        assert!(Backend::Flex.runtime_hint(false).is_none());
    }

    /// f64 training is refused on wgpu only, with an error naming the field and what is allowed.
    #[test]
    fn f64_training_is_refused_on_wgpu_only() {
        let e = Precision::F64.check_training(Backend::Wgpu).unwrap_err().to_string();
        assert!(e.contains("train.precision") && e.contains("f32 on backend `wgpu`"), "{e}");
        assert!(Precision::F32.check_training(Backend::Wgpu).is_ok());
        for b in [Backend::Flex, Backend::Ndarray, Backend::Tch, Backend::TchCuda, Backend::TchMps] {
            assert!(Precision::F64.check_training(b).is_ok());
        }
    }
}
