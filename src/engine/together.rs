//! Runs of one network shape trained together (`--together`, docs/many.md): the pipeline's stages
//! before training (`pipeline::setup`) for every run, one batched training pass
//! per dataset size and epochs done ([`crate::train::many::train_many`]; a run alone in its part trains
//! alone), then
//! each run's evaluation and metrics as if it had trained alone: runs of one system and `[eval]`
//! settings share their reference trajectories, and their learned Jacobians along them come from one
//! stacked pass (`eval::evaluate::prepare_together`), which gives each run the Jacobians it gets alone.

use std::time::Instant;

use super::data::Data;
use super::observe::{Files, Observer};
use super::pipeline::{Bridge, RunOptions, Shared, earlier_training, files_for, finish, note_device, setup};
use crate::config::Config;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::outcome::RunMetrics;
use crate::error::{Error, Result};
use crate::eval::evaluate::prepare_together;
use crate::train::{TrainObserver, TrainState, Trained, train_from};

/// Whether runs of `cfg` can train together with others of its shape ([`crate::train::many`]): no
/// difference or Jacobian loss term, no L-BFGS, no mass-action network, no starting mechanism.
pub fn trains_together(cfg: &Config) -> bool {
    let t = &cfg.train;
    t.difference == 0.0 && t.jacobian == 0.0 && t.lbfgs == 0 && !cfg.model.mass_action() && cfg.model.init.is_none()
}

/// What runs must share to train together: the network (`model`), the training recipe (`train`) and
/// the system's dimension. Data, transform and seed may differ (the training sets' sizes are checked
/// once they are made).
pub fn shape_key(cfg: &Config) -> String {
    let json = |v: serde_json::Result<String>| v.unwrap_or_default();
    format!(
        "{}|{}|{}",
        json(serde_json::to_string(&cfg.model)),
        json(serde_json::to_string(&cfg.train)),
        cfg.system.dim()
    )
}

/// Several runs of one shape (configs that differ in their seed, or in anything but the network and
/// the training recipe) with their data, trained together in one batched pass
/// ([`crate::train::many::train_many`]) and evaluated one by one, each into its own `opts.out`; the
/// result of each. Runs train together when their training and validation sets also have the same
/// sizes and they continue from the same epoch (`resume`: each run's saved state, if any); one pass
/// per such part, and a run alone in its part trains alone. Every run saves its resumable state every
/// `--save-every` and on a stop signal. A stop signal during the evaluations ends them: the members
/// evaluated so far are in [`Together::results`], the signal in [`Together::stopped`]. An error for
/// the whole group (a stop signal during training, an output that cannot be written) is the outer
/// one; a run that diverges fails alone.
pub fn run_together(members: &[(&Config, RunOptions, &Data)], resume: Vec<Option<TrainState>>) -> Result<Together> {
    assert_eq!(resume.len(), members.len(), "one state or none per member");
    let mut files: Vec<Option<Files>> = members.iter().map(|(_, opts, _)| files_for(opts)).collect();
    let mut lists: Vec<Vec<&mut dyn Observer>> =
        files.iter_mut().map(|f| f.as_mut().map(|f| f as &mut dyn Observer).into_iter().collect()).collect();
    let mut setups = Vec::with_capacity(members.len());
    for ((cfg, opts, data), obs) in members.iter().zip(lists.iter_mut()) {
        setups.push(setup(cfg, opts, data, obs)?);
    }
    crate::interrupt::check(|| {
        "after sampling and labelling, before training (the states saved so far are kept)".into()
    })?;
    for (((_, opts, _), s), r) in members.iter().zip(&setups).zip(&resume) {
        if let Some(r) = r {
            note_device(r, &s.device, Some(opts.label.as_deref().unwrap_or("a job")));
        }
    }
    let mut bridges: Vec<Bridge> = lists
        .iter_mut()
        .zip(&setups)
        .zip(members)
        .map(|((obs, s), (_, opts, _))| Bridge::new(obs, s, opts.out.as_ref().and(opts.save_every)))
        .collect();
    // Networks whose training and validation sets have the same sizes, continuing from the same
    // epoch, share batches: one pass per part, and a run alone in its part trains alone.
    // (training rows, validation rows, epochs done when continuing) → members.
    type Key = (usize, usize, Option<usize>);
    let mut parts: Vec<(Key, Vec<usize>)> = Vec::new();
    for (i, s) in setups.iter().enumerate() {
        let key = (s.prep.train.len(), s.prep.val.len(), resume[i].as_ref().map(TrainState::adam_epochs));
        match parts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => parts.push((key, vec![i])),
        }
    }
    let mut trained: Vec<Option<(Result<Trained>, f64, usize)>> = (0..members.len()).map(|_| None).collect();
    for (_, part) in &parts {
        let t0 = Instant::now();
        let mut chosen: Vec<&mut Bridge> =
            bridges.iter_mut().enumerate().filter(|(i, _)| part.contains(i)).map(|(_, b)| b).collect();
        let results = if let [only] = part[..] {
            let s = &setups[only];
            let b: &mut Bridge = chosen.pop().expect("one bridge");
            vec![train_from(
                &s.init,
                &s.prep.train,
                &s.prep.val,
                &s.train_cfg,
                members[only].0.seed,
                &s.device,
                b,
                resume[only].clone(),
            )]
        } else {
            let many: Vec<crate::train::many::Member> = part
                .iter()
                .map(|&i| crate::train::many::Member {
                    init: &setups[i].init,
                    train: &setups[i].prep.train,
                    val: &setups[i].prep.val,
                    seed: members[i].0.seed,
                    resume: resume[i].as_ref(),
                })
                .collect();
            let mut obs: Vec<&mut dyn TrainObserver> =
                chosen.into_iter().map(|b| b as &mut dyn TrainObserver).collect();
            let s = &setups[part[0]];
            crate::train::many::train_many(&many, &s.train_cfg, &s.device, &mut obs)?
        };
        let secs = t0.elapsed().as_secs_f64();
        for (&i, r) in part.iter().zip(results) {
            // A stop signal during a lone run's training stops the group.
            if let Err(e @ Error::Interrupted { .. }) = r {
                return Err(e);
            }
            let (earlier, size) = earlier_training(resume[i].as_ref(), &setups[i].train_cfg, part.len());
            trained[i] = Some((r, earlier + secs, size));
        }
    }
    let mut out = Together { results: Vec::with_capacity(members.len()), stopped: None };
    // The members' spectral evaluations share their reference trajectories, and their Jacobians
    // along them come from one stacked pass. A failure here is each member's own again when it
    // evaluates alone; a stop signal stops the group before any member is evaluated.
    let cks: Vec<Option<Checkpoint>> = trained
        .iter()
        .zip(&setups)
        .map(|(t, s)| match t {
            Some((Ok(t), _, _)) => {
                let mut ck = s.template.clone();
                ck.weights = t.best.clone();
                Some(ck)
            }
            _ => None,
        })
        .collect();
    let opts = &members[0].1;
    let prepared = match prepare_together(
        &cks.iter().map(Option::as_ref).collect::<Vec<_>>(),
        &members.iter().map(|(cfg, _, _)| cfg.eval_eps()).collect::<Vec<_>>(),
        &setups[0].device,
        opts.eval_precision,
        opts.jacobian,
    ) {
        Ok(p) => p,
        Err(Error::Interrupted { signal, resume, .. }) => {
            let at = format!(
                "before the evaluations of {} networks trained together: none is kept, they continue from their saved states",
                members.len()
            );
            out.stopped = Some(Error::Interrupted { signal, at, resume });
            return Ok(out);
        }
        Err(_) => vec![None; members.len()],
    };
    for (((((cfg, opts, data), s), t), bridge), prepared) in
        members.iter().zip(&setups).zip(trained).zip(bridges).zip(prepared)
    {
        let (t, secs, together) = t.expect("every member trained");
        let r = match t {
            Ok(t) => finish(cfg, opts, data, s, t, bridge, secs, Shared { together, prepared }),
            Err(e) => Err(e),
        };
        // A stop during an evaluation: the members evaluated so far stand, the rest continue from their
        // states (saved at their last epoch).
        let stop = match r {
            Err(Error::Interrupted { signal, resume, .. }) => Some((signal, resume)),
            r => {
                out.results.push(r);
                crate::interrupt::requested().map(|signal| (signal, String::new()))
            }
        };
        if let Some((signal, resume)) = stop {
            let at = format!(
                "during the evaluation of {} networks trained together: the {} evaluated are kept, the others continue from their saved states",
                members.len(),
                out.results.len()
            );
            out.stopped = Some(Error::Interrupted { signal, at, resume });
            break;
        }
    }
    Ok(out)
}

/// What [`run_together`] gives back: the result of each member in order, as far as the evaluation
/// went, and the stop signal that ended it early (then `results` is shorter than the group).
pub struct Together {
    /// Each member's metrics, or the error that ended it alone (a divergence), in member order.
    pub results: Vec<Result<RunMetrics>>,
    /// A stop signal during the evaluations ([`Error::Interrupted`]).
    pub stopped: Option<Error>,
}
