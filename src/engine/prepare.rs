//! Stage 2 of the run loop: the network-space training and validation sets. A seeded split, the
//! state input map and the input standardisation `u = (φ(x) − μ)/σ` fitted on the training split, the
//! target transform `G = T(F)` fitted on it, and the loss weights of `train.weighting`,
//! `train.difference` and `train.jacobian` ([`crate::train::weights`]).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::config::Config;
use crate::engine::data::*;
use crate::error::{Error, Result};
use crate::model::Normalizer;
use crate::plugins::transform::{TargetTransform, forward_all};
use crate::train::Dataset;
use crate::train::config::Weighting;
use crate::train::weights::*;

/// Network-space training and validation sets, the fitted normaliser and transform.
pub struct Prepared {
    /// Training split.
    pub train: Dataset,
    /// Validation split.
    pub val: Dataset,
    /// Input standardisation fitted on the training split.
    pub normalizer: Normalizer,
    /// Transform fitted on the training split.
    pub transform: Box<dyn TargetTransform>,
}

/// Step 3: seeded split, input standardisation and target transform, both fitted on the training split.
pub fn prepare(cfg: &Config, data: &Data) -> Result<Prepared> {
    let d = data.set.dim;
    let n = data.set.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(cfg.seed ^ 0x5711_7000));
    let n_val = ((n as f64) * cfg.train.val_fraction).round().max(1.0) as usize;
    if n_val >= n {
        return Err(Error::invalid(
            "train.val_fraction",
            cfg.train.val_fraction,
            format!("a fraction that leaves training samples out of {n}"),
        ));
    }
    let (val_idx, train_idx) = order.split_at(n_val);
    let rows = |idx: &[usize]| {
        let mut x = Vec::with_capacity(idx.len() * (d + 1));
        let mut y = Vec::with_capacity(idx.len() * d);
        let mut e = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(data.set.state(i));
            x.push(cfg.model.eps_input.feature(data.set.eps[i]));
            y.extend_from_slice(&data.labels[i * d..(i + 1) * d]);
            e.push(data.set.eps[i]);
        }
        (x, y, e)
    };
    let (mut xt, yt, et) = rows(train_idx);
    let (mut xv, yv, ev) = rows(val_idx);
    let map = cfg.model.state_input.map();
    let state_scale = match map {
        None => Vec::new(),
        Some(crate::model::StateMap::Asinh) => {
            crate::model::state_scales(&xt, d + 1, d, |i| cfg.model.state_quantile.of(i))
        }
        Some(crate::model::StateMap::Log) => crate::model::log_offsets(&xt, d + 1, d),
    };
    let state_map = map.unwrap_or_default();
    state_map.map_rows(&state_scale, &mut xt, d + 1);
    state_map.map_rows(&state_scale, &mut xv, d + 1);
    let normalizer = Normalizer { state_scale, state_map, ..Normalizer::fit(&xt, d + 1) };
    let mut transform = cfg.transform.clone();
    transform.fit(&yt, &et, d)?;
    let mut weights = match cfg.train.weighting {
        Weighting::Uniform => Vec::new(),
        Weighting::Relative => relative_weights(
            &data.set,
            &data.labels,
            transform.as_ref(),
            &(0..d).map(|k| cfg.train.weight_floor.of(k)).collect::<Vec<_>>(),
        ),
    };
    if !weights.is_empty() {
        // Mean weight 1 over the training split, so that losses stay on the scale of the unweighted ones.
        let mean =
            train_idx.iter().flat_map(|&i| &weights[i * d..(i + 1) * d]).sum::<f64>() / (train_idx.len() * d) as f64;
        weights.iter_mut().for_each(|v| *v /= mean);
    }
    let (gt, gv) = (forward_all(transform.as_ref(), &yt, &et, d), forward_all(transform.as_ref(), &yv, &ev, d));
    let pairs = cfg.train.difference > 0.0;
    let (pt, pv) =
        if pairs { (partners(&data.set, train_idx), partners(&data.set, val_idx)) } else { Default::default() };
    let (wt, wv) = if pairs {
        let rms = difference_rms(&pt, &gt, d);
        let (mut wt, mut wv) = (
            difference_weights(&pt, &gt, d, &rms, cfg.train.difference_floor),
            difference_weights(&pv, &gv, d, &rms, cfg.train.difference_floor),
        );
        scale_to_mean(&mut wt, &mut wv, pt.iter().filter(|p| **p != u32::MAX).count() * d, cfg.train.difference);
        (wt, wv)
    } else {
        Default::default()
    };
    let to_ds = |idx: &[usize], x: &[f64], g: &[f64], partner: Vec<u32>, pair_weights: Vec<f64>| Dataset {
        inputs: normalizer.apply(x),
        targets: g.to_vec(),
        // Rows `idx` of the weights; none (uniform) stays none.
        weights: if weights.is_empty() {
            Vec::new()
        } else {
            idx.iter().flat_map(|&i| &weights[i * d..(i + 1) * d]).copied().collect()
        },
        partner,
        pair_weights,
        d_in: d + 1,
        d_out: d,
        ..Default::default()
    };
    let mut train = to_ds(train_idx, &xt, &gt, pt, wt);
    let mut val = to_ds(val_idx, &xv, &gv, pv, wv);
    if cfg.train.jacobian > 0.0 {
        let label = |idx: &[usize]| {
            jacobian_labels(cfg.system.as_ref(), &data.set, &data.labels, idx, &normalizer, transform.as_ref())
        };
        let ((jt, ht), (jv, hv)) = (label(train_idx), label(val_idx));
        if !ht.iter().any(|h| *h) {
            return Err(Error::invalid(
                "train.jacobian",
                cfg.train.jacobian,
                "0 when the training samples hold no trajectory points to label (a cloud with sampler.keep_base = false)",
            ));
        }
        if let Some(e) = jt.iter().chain(&jv).position(|v| !v.is_finite()) {
            return Err(Error::Unsupported(format!(
                "train.jacobian: the system's Jacobian in network space is not finite at a trajectory point (entry {e})"
            )));
        }
        let scale = jacobian_medians(&jt, &ht, d);
        let (mut wt, mut wv) = (
            jacobian_weights(&jt, &ht, d, &scale, cfg.train.jacobian_floor),
            jacobian_weights(&jv, &hv, d, &scale, cfg.train.jacobian_floor),
        );
        scale_to_mean(&mut wt, &mut wv, ht.iter().filter(|h| **h).count() * d * d, cfg.train.jacobian);
        (train.jacobian, train.jacobian_weights, train.jac_axes) = (jt, wt, d);
        (val.jacobian, val.jacobian_weights, val.jac_axes) = (jv, wv, d);
    }
    Ok(Prepared { train, val, normalizer, transform })
}
