#!/usr/bin/env bash
# Reproduce the Cora column of NCN's Table 2 (HR@100): CN, AA, RA, GAE, NCN, NCNC over SEEDS seeds
# (default 10), each on its own regenerated split; writes results/linkpred_cora_<model>.{md,csv}
# and the summary results/linkpred_cora.{md,csv} (ours mean ± std beside the paper).
#
#   bash scripts/reproduce_linkpred_cora.sh            # all six rows
#   MODELS="ncn ncnc" SEEDS=3 bash scripts/reproduce_linkpred_cora.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-10}
MODELS=${MODELS:-"cn aa ra gae ncn ncnc"}
SWEEPS=${SWEEPS:-outputs/tables/linkpred_cora}
# Cora from the offline copies beside the checkout when GNNLAB_SHARED_DATA names no other folder.
if [ -z "${GNNLAB_SHARED_DATA+set}" ] && [ -d ../shared/data ]; then
  export GNNLAB_SHARED_DATA=$PWD/../shared/data
fi
dirs=()
for model in $MODELS; do
  echo "== $model: $SEEDS seeds"
  start=$(date +%s)
  "$PY" -m gnnlab.table "experiment=linkpred/${model}_cora" logger=csv --seeds "$SEEDS" \
    --sweep-dir "$SWEEPS/$model" --out "results/linkpred_cora_${model}.md"
  echo "== $model done in $(( $(date +%s) - start )) s"
  dirs+=("$SWEEPS/$model")
done
"$PY" -m gnnlab.table --from-dir "${dirs[@]}" --out results/linkpred_cora.md
