//! The L-BFGS phase of training (`train.lbfgs`): full-batch L-BFGS after Adam on the same loss
//! ([`polish`]), the full batch evaluated in chunks that keep difference-loss pairs whole.

use burn::optim::{GradientsParams, LBFGSConfig, LineSearchFn};
use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::model::{Mlp, Weights};

use super::config::{LBFGS_ROUND, TrainConfig};
use super::dataset::{Dataset, MIN_SHARD, gradients, sum_parts};
use super::state::LbfgsProgress;

/// Rows per chunk of a full-batch pass ([`full_gradients`]).
const FULL_BATCH_CHUNK: usize = 16_384;

/// The rows of `data` cut into chunks of about [`FULL_BATCH_CHUNK`] for a full-batch pass. With a
/// difference term a chunk holds whole groups (a row and its partners), so that no pair is cut.
fn full_batch_chunks(data: &Dataset) -> Vec<Vec<usize>> {
    let groups = if data.has_pairs() { data.pair_groups() } else { (0..data.len()).map(|i| vec![i]).collect() };
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
    for g in groups {
        if chunks.last().is_some_and(|c| c.len() >= FULL_BATCH_CHUNK) {
            chunks.push(Vec::new());
        }
        chunks.last_mut().expect("one chunk").extend(g);
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

/// The training loss over all of `data` (the mean over its `n · d_out` entries, every term included)
/// times `scale`, and its parameter gradients: [`gradients`] over `chunks`, summed in order.
fn full_gradients(
    model: &Mlp,
    data: &Dataset,
    chunks: &[Vec<usize>],
    scale: f64,
    shards: usize,
    ad: &Device,
) -> (f64, GradientsParams) {
    let total = (data.len() * data.d_out) as f64 / scale;
    let parts = chunks.iter().map(|c| gradients(model, data, c, total, shards.min((c.len() / MIN_SHARD).max(1)), ad));
    sum_parts(model, parts.collect())
}

/// What [`polish`] reports to after each round.
pub(super) trait Hooks {
    /// The round's weights and training loss: validates and records them; returns whether the losses
    /// were finite.
    fn record(&mut self, weights: Weights, train_loss: f64) -> Result<bool>;
    /// After the round is recorded: `progress` of the phase, and `optimizer` serialises L-BFGS's
    /// state (called only when a resumable state is saved).
    fn after(&mut self, model: &Mlp, progress: &LbfgsProgress, optimizer: &dyn Fn() -> Result<Vec<u8>>) -> Result<()>;
}

/// Full-batch L-BFGS from `model` on `train`, [`TrainConfig::lbfgs_rounds`] rounds of up to
/// [`LBFGS_ROUND`] iterations each (a round also ends at its evaluation budget); after each,
/// [`Hooks::record`] validates and reports, then [`Hooks::after`] may save the phase's state. Stops
/// early at a non-finite loss or when a round does not lower the training loss (converged, or at the
/// rounding of the loss). `resume`: the progress and serialised L-BFGS state of an interrupted phase,
/// continued from there (`model` then holds its weights).
/// Returns the number of full-batch loss and gradient evaluations.
pub(super) fn polish(
    mut model: Mlp,
    train: &Dataset,
    cfg: &TrainConfig,
    ad: &Device,
    resume: Option<(LbfgsProgress, Vec<u8>)>,
    hooks: &mut dyn Hooks,
) -> Result<usize> {
    let chunks = full_batch_chunks(train);
    let shards = cfg.shards.max(1) as usize;
    let optim = LBFGSConfig::new()
        .with_max_iter(LBFGS_ROUND)
        .with_max_eval(Some(LBFGS_ROUND * 5 / 4 + 1))
        .with_history_size(cfg.lbfgs_history as usize)
        .with_line_search_fn(LineSearchFn::StrongWolfe)
        .init();
    let (mut optim, mut p) = match resume {
        Some((p, bytes)) => {
            let optim = optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(|e| {
                Error::Checkpoint { path: "resume.json".into(), message: format!("unreadable L-BFGS state: {e}") }
            })?;
            (optim, p)
        }
        None => {
            // The objective is scaled to 1 at the start. burn's L-BFGS (like PyTorch's) keeps a
            // curvature pair only when yᵀs > 1e-10 and stops on absolute changes of 1e-9, thresholds
            // that a loss of ~1e-9 (Robertson's) would fall under at once.
            let (start, _) = full_gradients(&model, train, &chunks, 1.0, shards, ad);
            if !(start.is_finite() && start > 0.0) {
                return Ok(1);
            }
            let scale = 1.0 / start;
            (optim, LbfgsProgress { scale, last: start * scale, evaluations: 1, rounds: 0, finished: false })
        }
    };
    while !p.finished && p.rounds < cfg.lbfgs_rounds() {
        let mut evaluations = 0;
        let (next, loss) = optim.step(1.0, model, |m: Mlp| {
            evaluations += 1;
            full_gradients(&m, train, &chunks, p.scale, shards, ad)
        });
        model = next.project(0.0, cfg.fixed_orders.as_deref());
        p.evaluations += evaluations;
        p.rounds += 1;
        let finite = hooks.record(model.weights(), loss / p.scale)?;
        if !finite || loss.is_nan() || loss >= p.last {
            p.finished = true;
        } else {
            p.last = loss;
        }
        let serialise = || {
            optim
                .into_bytes()
                .map(|b| b.to_vec())
                .map_err(|e| Error::io("resume.json", std::io::Error::other(e.to_string())))
        };
        hooks.after(&model, &p, &serialise)?;
    }
    Ok(p.evaluations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    use crate::model::to_f64;
    use crate::train::dataset::batch_gradients;

    /// The full-batch gradient summed over chunks is the one-batch gradient, and chunks never cut a
    /// difference-loss group.
    #[test]
    fn full_batch_gradient_is_the_sum_over_chunks_that_keep_groups_whole() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let ad = device.clone().autodiff();
        let init = Weights::init(3, 2, 16, 2, 9);
        // The full-batch gradient over several chunks is the gradient of the whole set at once.
        let (big, _) = Dataset::synthetic(2 * FULL_BATCH_CHUNK + 100, 3, 2, 7);
        let model = Mlp::from_weights(&init, &ad, DType::F32).unwrap();
        let chunks = full_batch_chunks(&big);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![FULL_BATCH_CHUNK, FULL_BATCH_CHUNK, 100]);
        let (v, mut g) = full_gradients(&model, &big, &chunks, 2.0, 2, &ad);
        let all: Vec<usize> = (0..big.len()).collect();
        let (v1, g1) = batch_gradients(&model, &big, &all, 1, &ad);
        assert!((v - 2.0 * v1).abs() < 1e-4 * v, "{v} vs 2 × {v1}");
        for layer in &model.layers {
            let (x, y) =
                (to_f64(g.remove::<2>(layer.weight.id).unwrap()), to_f64(g1.get::<2>(layer.weight.id).unwrap()));
            let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(x.iter().zip(&y).all(|(p, q)| (p - 2.0 * q).abs() < 1e-4 * scale));
        }
        // With pairs, a chunk holds whole groups.
        let mut paired = big.clone();
        paired.partner = (0..big.len()).map(|i| if i % 3 == 0 { u32::MAX } else { (i - i % 3) as u32 }).collect();
        paired.pair_weights = vec![1.0; big.len() * 2];
        for c in full_batch_chunks(&paired) {
            assert!(c.len() % 3 == 0 && c.chunks(3).all(|g| g[0] % 3 == 0 && g[1] == g[0] + 1 && g[2] == g[0] + 2));
        }
    }
}
