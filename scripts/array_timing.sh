#!/usr/bin/env bash
# A SLURM-style array simulated on this machine against a serial sweep of the same spec, repetitions
# interleaved: N workers (`stiffx run-job --index i`, one process each, all at once) then `collect`,
# against `stiffx sweep`; checks that the collected table1.csv equals the serial one (timing columns
# aside). Usage: scripts/array_timing.sh [STIFFX_BINARY] [REPS]   (results/engine/README.md)
set -euo pipefail
B=${1:-./target/release/stiffx}
REPS=${2:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/spec.toml" <<SPEC
# 4 jobs: the tiny config and its identity twin, seeds 1-2, 2000 epochs each
out = "$tmp/serial"
seeds = [1, 2]
configs = ["$root/configs/tiny.toml", "$root/configs/tiny_identity.toml"]
epochs = 2000
SPEC
n=$("$B" jobs "$tmp/spec.toml" --count)
for rep in $(seq 1 "$REPS"); do
  rm -rf "$tmp/serial" "$tmp/array"
  t0=$(date +%s.%N)
  "$B" sweep "$tmp/spec.toml" --out "$tmp/serial" --quiet --no-figures > /dev/null
  t1=$(date +%s.%N)
  for i in $(seq 0 $((n - 1))); do "$B" run-job "$tmp/spec.toml" --out "$tmp/array" --index "$i" --quiet --no-figures > /dev/null & done
  wait
  "$B" collect "$tmp/spec.toml" --out "$tmp/array" --quiet --no-figures > /dev/null
  t2=$(date +%s.%N)
  same=$(diff <(cut -d, -f1-15 "$tmp/serial/table1.csv") <(cut -d, -f1-15 "$tmp/array/table1.csv") > /dev/null && echo identical || echo DIFFERENT)
  echo "rep $rep: serial sweep $(echo "$t1 - $t0" | bc) s, $n workers + collect $(echo "$t2 - $t1" | bc) s, table1.csv $same"
done
