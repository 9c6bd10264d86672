"""kill -9 at random points of an ingest and of a re-embed: every state in between opens, and the
reruns end with exact counts and no duplicates.

Each run is killed at a random moment within the length of an uninterrupted run; the next run is
its rerun (it may be killed too), a run that completes is checked and the work starts over, and a
final run goes to the end. The points are seeded (EMBEDDER_FAULT_SEED) and their number is
EMBEDDER_FAULT_POINTS (12 by default, to keep the suite near 15 minutes; set it higher for a deeper run).
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

from tests.conftest import copy_media

POINTS = int(os.environ.get("EMBEDDER_FAULT_POINTS", "12"))
SEED = int(os.environ.get("EMBEDDER_FAULT_SEED", "0"))
NAMES = ("h264.mp4", "hevc.mp4", "vp9.webm", "vfr.mp4", "tone.mp3", "tone.flac", "multistream.mkv", "h264_10bit.mp4")


def cli(args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "embedder.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def timed(args, env) -> float:
    started = time.monotonic()
    proc = cli(args, env)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - started


def kill_at(args, env, delay: float) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedder.cli", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    return copy_media(media, NAMES, tmp_path / "lib")


def kill_until(points: int, args, env, clean: float, rng, check_killed, check_done, reset) -> list[int]:
    """Run ``args`` again and again, each killed at a random moment within a clean run's length,
    until ``points`` kills have landed. After a kill the store must pass ``check_killed`` (and the
    next run is its rerun); a run that completes must pass ``check_done``, then ``reset`` starts
    the work over so that later kills land inside real work."""
    codes = []
    while codes.count(-signal.SIGKILL) < points and len(codes) < 4 * points:
        code = kill_at(args, env, rng.uniform(0.2, clean))
        codes.append(code)
        assert code in (0, -signal.SIGKILL), codes  # a run that was not killed completed
        if code == 0:
            check_done()
            reset()
        else:
            check_killed()
    assert codes.count(-signal.SIGKILL) == points, (clean, codes)
    return codes


@pytest.mark.slow
def test_kill_ingest_at_random_points(library, tmp_path):
    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(tmp_path / "store"),
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_MAX_FRAMES": "4",
    }
    clean = timed(["ingest", library, "--quiet"], {**env, "EMBEDDER_STORE": str(tmp_path / "clean")})
    every = {str(library / n) for n in NAMES}

    def partial():
        now = state(env)
        assert all(len(ids) == 1 for ids in now["by_path"].values())  # never two points for one file
        assert set(now["by_path"]) <= every and now["total"] == len(now["by_path"])

    def complete():
        now = state(env)
        assert set(now["by_path"]) == every and now["total"] == len(NAMES)

    kill_until(
        POINTS,
        ["ingest", library, "--quiet"],
        env,
        clean,
        random.Random(SEED),
        partial,
        complete,
        lambda: shutil.rmtree(tmp_path / "store"),
    )
    assert cli(["ingest", library, "--quiet"], env).returncode == 0  # the rerun of the last kill
    complete()
    assert state(env, with_status=True)["status"]["points"] == len(NAMES)
    assert cli(["check"], env).returncode == 0


@pytest.mark.slow
def test_kill_reembed_at_random_points(library, tmp_path):
    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(tmp_path / "store"),
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_MAX_FRAMES": "4",
    }
    assert cli(["ingest", library, "--quiet"], env).returncode == 0
    other = {**env, "EMBEDDER_CLIP_MODEL": "tiny-clip-b"}  # a model change: a blue-green rebuild
    shutil.copytree(tmp_path / "store", tmp_path / "before")
    shutil.copytree(tmp_path / "store", tmp_path / "clean")
    clean = timed(["reembed", "--quiet"], {**other, "EMBEDDER_STORE": str(tmp_path / "clean")})

    def serving():  # the alias serves one complete version at every moment
        now = state(env)
        assert now["total"] == len(NAMES) == len(now["by_path"])

    def rebuilt():
        assert json.loads(cli(["reembed", "--dry-run", "--json"], other).stdout)["stale"] == 0
        serving()

    def reset():
        shutil.rmtree(tmp_path / "store")
        shutil.copytree(tmp_path / "before", tmp_path / "store")

    kill_until(POINTS, ["reembed", "--quiet"], other, clean, random.Random(SEED + 1), serving, rebuilt, reset)
    assert cli(["reembed", "--quiet"], other).returncode == 0
    final = state(other, with_status=True)
    assert final["status"]["points"] == len(NAMES) and final["status"]["collection"] != "media_v1"
    assert final["status"]["models"]["visual"] == ["open_clip:embedder-tiny-clip/random@1b"]
    rebuilt()
    assert cli(["check"], other).returncode == 0
