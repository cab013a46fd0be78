#!/usr/bin/env bash
# Training speed on one GPU and validation BLEU after a fixed training time, for the default Transformer
# (dropout 0.3, as the converged runs use it) at the old and the new batch settings, one run after another:
#   bash scripts/gpu_train_speed.sh DATA OUT MINUTES [old|new]...      (default: old new)
# SRC=DIR runs the `translate` package found in DIR instead (e.g. an older revision, to compare the code too);
# NAME=PREFIX prefixes the runs' names. Each run prints: name, target tokens/s, val BLEU (greedy) at the end, updates.
set -uo pipefail
DATA=$(realpath "${1:?data folder}"); OUT=$(realpath -m "${2:?output folder}"); MINUTES=${3:-1}; shift 3
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OLD=(--lr 1e-3 --set train.warmup_steps=1000)  # the settings of the earlier long runs (4,096-token batches)
NEW=(--max-tokens 16384 --lr 2e-3 --set train.warmup_steps=400)  # 4x the tokens, the learning rate x2 (square root)
for which in "${@:-old new}"; do
  for settings in $which; do
    name=${NAME:-}$settings
    if [ "$settings" = old ]; then flags=("${OLD[@]}"); else flags=("${NEW[@]}"); fi
    (cd "${SRC:-$(dirname "$0")/..}" && $PY -m translate train --arch transformer --data "$DATA" --out "$OUT/$name" \
       --minutes "$MINUTES" --eval-every 0 --set model.dropout=0.3 "${flags[@]}" > "$OUT/$name.json" 2> "$OUT/$name.log") \
    && $PY -c "import json; s = json.load(open('$OUT/$name.json')); print('$name', round(s['train_tokens_per_s']), s['best_val_bleu'], s['step'], sep='\t')" \
    || { echo "$name failed:"; tail -5 "$OUT/$name.log"; }
  done
done
