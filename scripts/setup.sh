#!/usr/bin/env bash
# Idempotent set-up: system FFmpeg (apt), a virtual environment at .venv, the pinned packages.
# Re-running is cheap: packages are reinstalled only when the lock files or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."

# Another apt run (unattended upgrades, a second setup) holds apt's lock: wait for it, bounded,
# instead of failing at once with apt's raw error.
APT_LOCK_WAIT_S=${APT_LOCK_WAIT_S:-600}
apt_get() {
    local waited=0 out rc
    while true; do
        rc=0
        out=$(DEBIAN_FRONTEND=noninteractive "$@" 2>&1) || rc=$?
        if [ "$rc" = 0 ]; then return 0; fi
        if ! grep -qiE 'could not get lock|unable to acquire|is another process using it' <<<"$out"; then
            echo "$out" >&2
            return "$rc"
        fi
        if [ "$waited" -ge "$APT_LOCK_WAIT_S" ]; then
            echo "setup: another apt run still holds the lock after ${waited}s; try again when it ends" >&2
            echo "       (APT_LOCK_WAIT_S sets how long to wait)" >&2
            return "$rc"
        fi
        [ "$waited" = 0 ] && echo "setup: another apt run holds the lock; waiting up to ${APT_LOCK_WAIT_S}s" >&2
        sleep 5
        waited=$((waited + 5))
    done
}

# torchcodec (and so torchaudio.load) links against the system FFmpeg libraries; probing uses ffprobe.
if ! command -v ffprobe >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q 'libavutil\.so'; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing FFmpeg with apt-get" >&2
        apt_get apt-get update -qq
        apt_get apt-get install -y -qq ffmpeg
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing FFmpeg with sudo apt-get" >&2
        apt_get sudo apt-get update -qq
        apt_get sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg
    else
        echo "setup: FFmpeg is missing and this user cannot install it. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ffmpeg" >&2
        exit 1
    fi
fi

# The test suite checks the web page of 'embedder serve' in a real headless browser (Debian's
# chromium headless shell). Running embedder does not need it: a failed install only warns, and
# EMBEDDER_SETUP_BROWSER=0 skips it (the Docker image does).
if [ "${EMBEDDER_SETUP_BROWSER:-1}" = 1 ] && ! command -v chromium-headless-shell >/dev/null 2>&1 \
        && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing chromium-headless-shell with apt-get (for the web page test)" >&2
        { apt_get apt-get update -qq && apt_get apt-get install -y -qq chromium-headless-shell; } \
            || echo "setup: warning: could not install chromium-headless-shell; the browser test will be skipped" >&2
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing chromium-headless-shell with sudo apt-get (for the web page test)" >&2
        { apt_get sudo apt-get update -qq && apt_get sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell; } \
            || echo "setup: warning: could not install chromium-headless-shell; the browser test will be skipped" >&2
    else
        echo "setup: note: no chromium; the web page test will be skipped (sudo apt-get install chromium-headless-shell)" >&2
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
deps_stamp=.venv/.embedder-deps
# requirements.lock is the runtime; requirements-dev.lock adds the test and Ray extras (the suite
# needs them). EMBEDDER_SETUP_RUNTIME_ONLY=1 installs the runtime alone (the image does).
lock=requirements-dev.lock
[ "${EMBEDDER_SETUP_RUNTIME_ONLY:-0}" = 1 ] && lock=requirements.lock
want=$(cat requirements.lock requirements-dev.lock pyproject.toml <(echo "$lock") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    if [ ! -f "$deps_stamp" ] || [ "$(cat "$deps_stamp")" != "$want" ]; then
        echo "setup: installing Python packages into .venv (first run downloads about 5 GB)" >&2
        quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check -r "$lock"
        echo "$want" > "$deps_stamp"
    fi
    # EMBEDDER_SETUP_DEPS_ONLY=1: the pinned packages alone (the image installs them in a layer of
    # their own, before the code is copied, so a code change does not reinstall 5 GB).
    if [ "${EMBEDDER_SETUP_DEPS_ONLY:-0}" != 1 ]; then
        quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
        echo "$want" > "$stamp"
    fi
fi
