#!/usr/bin/env bash
# Offline demo: set up (idempotent), make sample media, and show what embedder sees in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EMBEDDER_MODELS=tiny EMBEDDER_STORE="$PWD/.embedder-demo/store"
.venv/bin/python -m embedder.samples .embedder-demo/media
.venv/bin/embedder inspect .embedder-demo/media
