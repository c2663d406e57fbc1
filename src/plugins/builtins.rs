//! The built-in transforms, samplers and labellers, registered under their typetag names (the
//! built-in systems register themselves in their own files under `systems/`). Registration lives
//! here, not next to each trait, so that the trait files do not depend on the registry.

use super::{cloud, data, labeller, sampler, transform};

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

crate::register!(labeller, labeller::Direct, "eq. 15: exact RHS F(x, eps)");

crate::register!(
    labeller,
    labeller::Burst,
    "Alg. 4: central difference of forward/backward micro-integrations (fixed, scaled or Richardson tau)"
);

crate::register!(labeller, labeller::FiniteDifference, "eq. 14: central differences along the stored trajectories");
