"""kill -9 at random points of an ingest and of a re-embed: every state in between opens, and the
reruns end with exact counts and no duplicates.

Each run is killed at a random moment within the length of an uninterrupted run, and the next
run is the 'rerun' of the one before (it may be killed too); a final run goes to the end. The
points are seeded (EMBEDDER_FAULT_SEED) and their number is EMBEDDER_FAULT_POINTS (20).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

POINTS = int(os.environ.get("EMBEDDER_FAULT_POINTS", "20"))
SEED = int(os.environ.get("EMBEDDER_FAULT_SEED", "0"))
NAMES = ("h264.mp4", "hevc.mp4", "vp9.webm", "vfr.mp4", "tone.mp3", "tone.flac", "multistream.mkv", "h264_10bit.mp4")


def cli(args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "embedder.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def timed(args, env) -> float:
    started = time.monotonic()
    proc = cli(args, env)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - started


def kill_at(args, env, delay: float) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "embedder.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


def state(env, with_status: bool = False) -> dict:
    """The store must open after any kill; returns paths -> point ids, the total and the status."""
    listing = cli(["items", "list", "-n", "1000", "--json"], env)
    assert listing.returncode == 0, listing.stderr
    page = json.loads(listing.stdout)
    by_path: dict[str, list[str]] = {}
    for item in page["items"]:
        for path in item["paths"]:
            by_path.setdefault(path, []).append(item["id"])
    out = {"total": page["total"], "by_path": by_path}
    if with_status:
        status = cli(["status", "--json"], env)
        assert status.returncode == 0, status.stderr
        out["status"] = json.loads(status.stdout)
    return out


@pytest.fixture
def library(tmp_path, media):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in NAMES:
        shutil.copy(media[name], lib / name)
    return lib


@pytest.mark.slow
def test_kill_ingest_at_random_points(library, tmp_path):
    env = {**os.environ, "EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1",
           "EMBEDDER_MAX_FRAMES": "4"}
    clean = timed(["ingest", library, "--quiet"], {**env, "EMBEDDER_STORE": str(tmp_path / "clean")})
    rng = random.Random(SEED)
    killed = 0
    for _ in range(POINTS):
        killed += kill_at(["ingest", library, "--quiet"], env, rng.uniform(0.2, clean)) == -signal.SIGKILL
        now = state(env)
        assert all(len(ids) == 1 for ids in now["by_path"].values())  # never two points for one file
        assert set(now["by_path"]) <= {str(library / n) for n in NAMES}
    assert killed >= POINTS // 2  # most kills landed inside a run
    assert cli(["ingest", library, "--quiet"], env).returncode == 0
    final = state(env, with_status=True)
    assert final["status"]["points"] == final["total"] == len(NAMES) == len(final["by_path"])
    assert cli(["check"], env).returncode == 0


@pytest.mark.slow
def test_kill_reembed_at_random_points(library, tmp_path):
    env = {**os.environ, "EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1",
           "EMBEDDER_MAX_FRAMES": "4"}
    assert cli(["ingest", library, "--quiet"], env).returncode == 0
    other = {**env, "EMBEDDER_CLIP_MODEL": "tiny-clip-b"}  # a model change: a blue-green rebuild
    shutil.copytree(tmp_path / "store", tmp_path / "clean")
    clean = timed(["reembed", "--quiet"], {**other, "EMBEDDER_STORE": str(tmp_path / "clean")})
    rng = random.Random(SEED + 1)
    for _ in range(POINTS):
        kill_at(["reembed", "--quiet"], other, rng.uniform(0.2, clean))
        now = state(env)  # the alias serves one complete version at every moment
        assert now["total"] == len(NAMES) == len(now["by_path"])
    assert cli(["reembed", "--quiet"], other).returncode == 0
    final = state(other, with_status=True)
    assert final["status"]["points"] == len(NAMES) and final["status"]["collection"] != "media_v1"
    assert final["status"]["models"]["visual"] == ["open_clip:embedder-tiny-clip/random@1b"]
    assert json.loads(cli(["reembed", "--dry-run", "--json"], other).stdout)["stale"] == 0
    assert cli(["check"], other).returncode == 0
