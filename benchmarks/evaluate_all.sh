#!/usr/bin/env bash
# Evaluate the shipped models on the evaluation pairs of ../shared/data (identities disjoint
# from calibration) and write JSON figures and DET plots to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
for set in lfw_gray:face orl_att:face librispeech:voice fsdd:voice; do
  name=${set%%:*}; modality=${set##*:}
  echo "== $name ($modality)"
  start=$(date +%s)
  python -m verify evaluate --pairs "benchmarks/pairs/${name}_eval.csv" --root "$DATA" \
    --modality "$modality" --json "benchmarks/results/${name}.json" --plot "benchmarks/results/${name}_det.png"
  echo "took $(( $(date +%s) - start )) s"
done
