#!/usr/bin/env bash
# Reproduce benchmarks/lastfm-2k: popularity vs ALS on HetRec 2011 Last.fm play counts, against an
# independent implicit-ALS script on the same split. About 4 minutes on the 2-core machine.
# Usage: bash benchmarks/lastfm-2k/run.sh [path/to/lastfm-2k]   (default: ../shared/data/lastfm-2k)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/lastfm-2k}
out=benchmarks/lastfm-2k
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
embedder=".venv/bin/embedder --store $store"
$embedder interactions import "$data/user_artists.dat" --format tsv --columns user,item,weight --weight-col weight
# The reference: plain implicit ALS (64 factors, log1p confidence), no embedder code, same split.
.venv/bin/python benchmarks/independent/implicit_als.py lastfm "$data/user_artists.dat" --seeds 0,1,2 \
    > $out/independent-als.json
# The file is sorted by artist id within each user, so its "last" event per user is not the latest
# listen: random-holdout is the meaningful split; leave-last-out is kept to show why.
$embedder eval --split random-holdout --methods popularity,als --seeds 0,1,2 --out $out/random-holdout
$embedder eval --split random-holdout --methods als --seeds 0,1,2 --tune --out $out/random-holdout-tuned
$embedder eval --split leave-last-out --methods popularity,als --seed 0 --out $out/leave-last-out
