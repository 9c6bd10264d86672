#!/usr/bin/env bash
# Reproduce benchmarks/two-tower: the fine-tuned head against ALS and popularity.
#   1. warm items: Last.fm 2k, random 20% holdout per user (no media: the head uses item ids);
#   2. the same with APR adversarial training;
#   3. cold items: generated topic media (tiny preset), items held out with all their events.
# Usage: bash benchmarks/two-tower/run.sh [path/to/lastfm-2k]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/lastfm-2k}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
embedder=".venv/bin/embedder --store $store"
$embedder interactions import "$data/user_artists.dat" --format tsv --columns user,item,weight --weight-col weight
$embedder eval --split random-holdout --methods popularity,als,trained --seed 0 \
    --train-config pipelines/configs/train.toml --out benchmarks/two-tower/lastfm-warm
$embedder eval --split random-holdout --methods trained --seed 0 \
    --train-config pipelines/configs/train-apr.toml --out benchmarks/two-tower/lastfm-warm-apr
.venv/bin/python benchmarks/two-tower/cold_start.py benchmarks/two-tower/cold-start
