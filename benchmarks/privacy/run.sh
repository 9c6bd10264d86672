#!/usr/bin/env bash
# Reproduce benchmarks/privacy: NDCG@10 of the head trained with DP-SGD at epsilon 1, 4 and 8,
# against the same head without DP and popularity, on Last.fm 2k (random 20% holdout per user,
# seeds 0,1,2). About 15 minutes on the 2-core machine, CPU only.
# Usage: bash benchmarks/privacy/run.sh [path/to/lastfm-2k]
set -euo pipefail
cd "$(dirname "$0")/../.."
lastfm=${1:-../shared/data/lastfm-2k}
out=benchmarks/privacy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
embedder=".venv/bin/embedder --store $work/store"
$embedder interactions import "$lastfm/user_artists.dat" --format tsv --columns user,item,weight --weight-col weight
$embedder eval --split random-holdout --methods popularity,trained --seeds 0,1,2 \
    --train-config pipelines/configs/train.toml --out $out/no-dp
for eps in 1 4 8; do
    sed "s/^epsilon = .*/epsilon = $eps.0/" pipelines/configs/train-dp.toml > "$work/train-dp-$eps.toml"
    $embedder eval --split random-holdout --methods trained --seeds 0,1,2 \
        --train-config "$work/train-dp-$eps.toml" --out $out/dp-eps$eps
done
.venv/bin/python benchmarks/privacy/table.py $out
