#!/usr/bin/env bash
# The long runs of the comparison, all at once on one GPU (or one after another with SEQUENTIAL=1 on a CPU):
#   bash scripts/long_runs.sh DATA OUT MINUTES
# Each config in scripts/configs/long-*.toml trains for MINUTES of training time, then is scored on
# test_2016_flickr with beam 5. Logs, configs and scores land in OUT/<name>/.
set -uo pipefail
DATA=${1:?data folder}; OUT=${2:?output folder}; MINUTES=${3:-60}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
run() {
  local cfg=$1 name; name=$(basename "$cfg" .toml); name=${name#long-}
  if [ -f "$OUT/$name/last.pt" ]; then resume=--resume; else resume=; fi
  $PY -m translate train --config "$cfg" --data "$DATA" --out "$OUT/$name" --minutes "$MINUTES" $resume \
    > "$OUT/$name.train.json" 2> "$OUT/$name.train.log"
  $PY -m translate evaluate "$OUT/$name" --data "$DATA" --split test_2016_flickr --beam 5 > "$OUT/$name.test.json" 2>> "$OUT/$name.train.log"
  $PY -m translate evaluate "$OUT/$name" --data "$DATA" --split test_2016_flickr --beam 1 > /dev/null 2>> "$OUT/$name.train.log"
}
for cfg in scripts/configs/long-*.toml; do
  if [ "${SEQUENTIAL:-0}" = 1 ]; then run "$cfg"; else run "$cfg" & fi
done
wait
