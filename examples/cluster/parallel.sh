#!/usr/bin/env bash
# Sharded data preparation on one big machine (or over ssh with GNU parallel's -S): 4 shards at once,
# then the merge. The same for the synthetic benchmark: `data synth … --shard {}/4`.
#
#   bash examples/cluster/parallel.sh data/my.jsonl .cache/my-256
set -euo pipefail
manifest=${1:?manifest (JSONL)}
out=${2:?cache folder}
n=${N:-4}
seq 0 $((n - 1)) | parallel --halt now,fail=1 --line-buffer \
  npx l3kit data cache --manifest "$manifest" --out "$out" --per-clip 10 --frame-size 256 --sample-rate 48000 --shard {}/"$n"
npx l3kit data merge "$out"
