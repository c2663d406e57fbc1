//! Adam as training uses it: burn's [`Adam`] (PyTorch's epsilon, 1e-8), with a state that comes back
//! from a saved record in the float type it was saved in.
//!
//! burn 0.22 rebuilds a loaded optimiser state with `Tensor::from_data(data, device)`, which converts
//! to the device's default float type (f32): an f64 run's moments would come back rounded, and the next
//! step would mix f32 and f64 (flex asserts). [`ExactAdam`] takes every step with burn's own
//! [`Adam::step`] — the same operations, so the same bits — and only its state's
//! [`RecordState::state_unflatten`] differs: each moment keeps its record's dtype. The record's layout
//! is burn's (`{id}.momentum.time`, `…moment_1`, `…moment_2`), so states saved before read back.

use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer, RecordState,
    StateSink, StateSource, join_path,
};
use burn::tensor::{Bytes, Device, Tensor};

use crate::error::{Error, Result};

/// burn's Adam with a state restored in its saved float type (see the module docs).
#[derive(Clone)]
pub struct ExactAdam(Adam);

/// [`ExactAdam`]'s state: burn's [`AdamState`].
#[derive(Clone)]
pub struct ExactAdamState<const D: usize>(AdamState<D>);

/// The optimiser of training: Adam with epsilon 1e-8 (PyTorch's; burn's default 1e-5 limits how far the
/// loss can go down), as a module optimiser.
pub fn adam() -> ModuleOptimizer {
    ModuleOptimizer::from(ExactAdam(AdamConfig::new().with_epsilon(1e-8).build()))
}

/// [`adam`] continued from a saved state (burn's optimiser record, burnpack bytes).
pub fn restore(record: Vec<u8>) -> Result<ModuleOptimizer> {
    adam()
        .from_bytes(Bytes::from_bytes_vec(record))
        .map_err(|e| Error::Checkpoint { path: "resume.json".into(), message: format!("unreadable Adam state: {e}") })
}

/// The optimiser's state as burn's record (burnpack bytes), for a resumable state.
pub fn record(optim: &ModuleOptimizer) -> Result<Vec<u8>> {
    let bytes = optim.into_bytes().map_err(|e| Error::io("resume.json", std::io::Error::other(e.to_string())))?;
    Ok(bytes.to_vec())
}

impl<const D: usize> RecordState for ExactAdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.0.state_flatten(prefix, out)
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let p = join_path(prefix, "momentum");
        let time = usize::try_from(src.take_scalar(&p, "time")?).ok()?;
        let mut tensor = |leaf: &str| {
            src.take_tensor(&p, leaf).map(|data| {
                let dtype = data.dtype();
                Tensor::<D>::from_data(data, (device, dtype))
            })
        };
        let moment_1 = tensor("moment_1")?;
        let moment_2 = tensor("moment_2")?;
        let max_moment_2 = tensor("max_moment_2");
        Some(ExactAdamState(AdamState::new(AdaptiveMomentumState { time, moment_1, moment_2, max_moment_2 })))
    }
}

impl Optimizer for ExactAdam {
    type State<const D: usize> = ExactAdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (tensor, state) = self.0.step(lr, tensor, grad, state.map(|s| s.0));
        (tensor, state.map(ExactAdamState))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        ExactAdamState(Adam::to_device(state.0, device))
    }
}
