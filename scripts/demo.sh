#!/usr/bin/env bash
# Offline demo: set up (idempotent), make sample media, ingest it with the tiny preset, search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EMBEDDER_MODELS=tiny EMBEDDER_STORE="$PWD/.embedder-demo/store"
.venv/bin/python -m embedder.samples .embedder-demo/media >/dev/null
# Two longer videos made of short clips at known offsets, with subtitles: for moment search.
.venv/bin/python -c "from embedder.samples import make_moment_world as m; m('.embedder-demo/media/moments', clips=4, per_video=2, clip_s=4)"
if [ -d ../shared/media ]; then
    mkdir -p .embedder-demo/media/shared && cp -n ../shared/media/*.mp4 ../shared/media/*.mp3 .embedder-demo/media/shared/ 2>/dev/null || true
fi
.venv/bin/embedder ingest .embedder-demo/media
echo
echo '$ embedder search "orange sunset over the beach"'
.venv/bin/embedder search "orange sunset over the beach" --limit 5
echo
echo '$ embedder search --like .embedder-demo/media/ocean_dive.mp4'
.venv/bin/embedder search --like .embedder-demo/media/ocean_dive.mp4 --limit 3
echo
echo '$ embedder search --like .embedder-demo/media/moments/clips/clip02.mp4 --moments --explain'
.venv/bin/embedder search --like .embedder-demo/media/moments/clips/clip02.mp4 --moments --explain --limit 3
echo
.venv/bin/embedder status
