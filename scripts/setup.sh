#!/usr/bin/env bash
# Idempotent set-up: system FFmpeg (apt), a virtual environment at .venv, the pinned packages.
# Re-running is cheap: packages are reinstalled only when requirements.lock or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."

# torchcodec (and so torchaudio.load) links against the system FFmpeg libraries; probing uses ffprobe.
if ! command -v ffprobe >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q 'libavutil\.so'; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing FFmpeg with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing FFmpeg with sudo apt-get" >&2
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "setup: FFmpeg is missing and this user cannot install it. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ffmpeg" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
    "$PYTHON" -m venv .venv
fi

# Some machines' pip configuration names package folders that do not exist; pip warns once per
# package. Drop that noise, keep everything else (and pip's exit status, through pipefail).
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }; }

stamp=.venv/.embedder-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing Python packages into .venv (first run downloads about 5 GB)" >&2
    quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
    quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi
