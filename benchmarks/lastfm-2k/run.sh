#!/usr/bin/env bash
# Reproduce benchmarks/lastfm-2k: popularity vs ALS on HetRec 2011 Last.fm play counts.
# Usage: bash benchmarks/lastfm-2k/run.sh [path/to/lastfm-2k]   (default: ../shared/data/lastfm-2k)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/lastfm-2k}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
embedder=".venv/bin/embedder --store $store"
$embedder interactions import "$data/user_artists.dat" --format tsv --columns user,item,weight --weight-col weight
# The file is sorted by artist id within each user, so its "last" event per user is not the latest
# listen: random-holdout is the meaningful split; leave-last-out is kept to show why.
$embedder eval --split random-holdout --methods popularity,als --seed 0 --out benchmarks/lastfm-2k/random-holdout
$embedder eval --split leave-last-out --methods popularity,als --seed 0 --out benchmarks/lastfm-2k/leave-last-out
