#!/usr/bin/env bash
# Seeds 1-3 of a mechanism system as a reaction network and as the MLP baseline (results/pollu/,
# results/hires/): `bash scripts/reaction_network_seeds.sh pollu` (or hires). Per seed: the mechanism
# identified from exact labels (configs/NAME_identify_exact.toml), the CRNN started from it
# (configs/NAME_crnn.toml), the MLP on the same data (configs/NAME.toml); then both sets of three
# checkpoints evaluated at the unseen eps. Outputs in runs/NAME_*. STIFFX picks the binary.
set -euo pipefail
name=${1:?usage: reaction_network_seeds.sh pollu|hires}
STIFFX=${STIFFX:-target/release/stiffx}
for s in 1 2 3; do
  rm -rf "runs/${name}_id"
  /usr/bin/time -f "identify seed $s: %e s" $STIFFX identify --config "configs/${name}_identify_exact.toml" \
    --threshold 1e-6 --seed "$s" --out "runs/${name}_id" > "runs/${name}_id_s$s.log"
  rm -rf "runs/${name}_id_s$s" && cp -r "runs/${name}_id" "runs/${name}_id_s$s"
  /usr/bin/time -f "crnn seed $s: %e s" $STIFFX run --config "configs/${name}_crnn.toml" --seed "$s" \
    --out "runs/${name}_crnn_s$s" --force --quiet --no-figures
  /usr/bin/time -f "mlp seed $s: %e s" $STIFFX run --config "configs/${name}.toml" --seed "$s" \
    --out "runs/${name}_mlp_s$s" --force --quiet --no-figures
done
$STIFFX eval --checkpoint runs/${name}_crnn_s{1,2,3}/checkpoint.json --unseen --out "runs/${name}_crnn_unseen"
$STIFFX eval --checkpoint runs/${name}_mlp_s{1,2,3}/checkpoint.json --unseen --out "runs/${name}_mlp_unseen"
