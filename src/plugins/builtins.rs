//! The built-in transforms, samplers and labellers and the `data` system, registered under their typetag names (the
//! built-in systems register themselves in their own files under `systems/`). Registration lives
//! here, not next to each trait, so that the trait files do not depend on the registry.

use super::{cloud, data, data_system, labeller, sampler, transform, union};

crate::register!(transform, transform::Identity, "no target transform: regress the raw RHS");

crate::register!(
    transform,
    transform::Asinh,
    "asinh(F_i/s_i), s_i = median-centred MAD/0.6745 of the training targets"
);

crate::register!(
    sampler,
    sampler::TrajectorySampler,
    "Alg. 2: trajectories from random off-manifold initial states, sampled every dt"
);

crate::register!(
    sampler,
    cloud::CloudSampler,
    "Alg. 3: fuzzy cloud of tangent/normal perturbations around a base sampler's trajectories"
);

crate::register!(
    sampler,
    data::DataSampler,
    "trajectories read from a CSV file (trajectory, t, [eps], one column per state): learn from data"
);

crate::register!(
    sampler,
    union::UnionSampler,
    "the samples of several samplers together (long trajectories for the slow manifold + short ones for the fast transients)"
);

crate::register!(
    system,
    data_system::DataSystem,
    "a file of trajectories as the system, no RHS (species, eps grid and first states from the data sampler's file)"
);

crate::register!(labeller, labeller::Direct, "eq. 15: exact RHS F(x, eps)");

crate::register!(
    labeller,
    labeller::Burst,
    "Alg. 4: central difference of forward/backward micro-integrations (fixed, scaled or Richardson tau)"
);

crate::register!(labeller, labeller::FiniteDifference, "eq. 14: central differences along the stored trajectories");
