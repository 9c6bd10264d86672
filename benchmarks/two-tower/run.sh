#!/usr/bin/env bash
# Reproduce benchmarks/two-tower: the fine-tuned head against a tuned ALS and popularity, seeds 0,1,2.
#   1. warm items: Last.fm 2k (play counts), random 20% holdout per user (no media: the head uses item ids);
#   2. the same with APR adversarial training;
#   3. warm items: MovieLens 100K (ratings, threshold 3), random 20% holdout of the positives;
#   4. cold items: generated topic media (tiny preset), items held out with all their events.
# ALS is tuned per seed on a validation split carved from that seed's training part (--tune); the
# head starts from ALS factors with the same settings. About 45 minutes on the 2-core machine.
# Usage: bash benchmarks/two-tower/run.sh [path/to/lastfm-2k] [path/to/ml-100k]
set -euo pipefail
cd "$(dirname "$0")/../.."
lastfm=${1:-../shared/data/lastfm-2k}
ml=${2:-../shared/data/ml-100k}
out=benchmarks/two-tower
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
embedder=".venv/bin/embedder --store $store/lastfm"
$embedder interactions import "$lastfm/user_artists.dat" --format tsv --columns user,item,weight --weight-col weight
$embedder eval --split random-holdout --methods popularity,als,trained --seeds 0,1,2 --tune \
    --train-config pipelines/configs/train.toml --out $out/lastfm-warm
$embedder eval --split random-holdout --methods als,trained --seeds 0,1,2 --tune \
    --train-config pipelines/configs/train-apr.toml --out $out/lastfm-warm-apr
# MovieLens 100K is never committed (its terms forbid redistribution): only derived metrics are.
embedder=".venv/bin/embedder --store $store/ml"
$embedder interactions import "$ml/u.data" --format tsv --columns user,item,rating,ts --rating-col rating \
    --rating-threshold 3 --time-col ts
$embedder eval --split random-holdout --methods popularity,als,trained --seeds 0,1,2 --tune \
    --train-config pipelines/configs/train.toml --out $out/ml100k-warm
.venv/bin/python benchmarks/independent/implicit_als.py ml100k "$ml/u.data" --seeds 0,1,2 > $out/ml100k-independent-als.json
.venv/bin/python benchmarks/two-tower/cold_start.py $out/cold-start
