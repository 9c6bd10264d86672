"""Ingest on a Ray cluster: a real local cluster on loopback, started by the test with ``ray start``.

The same media through the local and the Ray executor give the same points and vectors; a decoder
that crashes on one file is one failure record; a rerun has nothing to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import run_cli
from tests.conftest import copy_media, free_port

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'embedder[ray]'")
REPO = Path(__file__).resolve().parents[1]
NAMES = ("h264.mp4", "tone.mp3", "vp9.webm", "av1.mkv", "truncated.mp4")


@pytest.fixture(scope="module")
def cluster():
    port = free_port()
    # Workers import the test helpers (the crashing decoder) from the repository. A throwaway
    # cluster for this test alone: no token authentication, so the clients need no token either.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    started = subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    yield f"127.0.0.1:{port}"
    if ray.is_initialized():
        ray.shutdown()
    subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=180)


@pytest.fixture
def folder(tmp_path, media):
    return copy_media(media, NAMES, tmp_path / "media")


def _points(store: Path) -> dict:
    from embedder.settings import Settings
    from embedder.store import open_store

    with open_store(Settings(store=str(store))) as media:
        return {r.id: r for r in media.scroll(with_vectors=True)}


def test_ray_and_local_executors_store_the_same_points(cluster, folder, tmp_path):
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_WORKERS": "1"}
    local = json.loads(
        run_cli("ingest", folder, "--json", env={**env, "EMBEDDER_STORE": str(tmp_path / "local")}).stdout
    )
    on_ray = json.loads(
        run_cli(
            "ingest",
            folder,
            "--json",
            "--executor",
            "ray",
            "--ray-address",
            cluster,
            env={**env, "EMBEDDER_STORE": str(tmp_path / "ray")},
        ).stdout
    )
    assert on_ray["counts"] == local["counts"] and on_ray["counts"]["new"] == 4
    assert on_ray["failed"] == local["failed"] and on_ray["failed"][0]["stage"] == "probe"  # truncated.mp4
    assert on_ray["timings"]["executor"] == "ray" and on_ray["timings"]["nodes"] == 1
    assert on_ray["timings"]["frames"] == local["timings"]["frames"] > 0
    a, b = _points(tmp_path / "local"), _points(tmp_path / "ray")
    assert sorted(a) == sorted(b)  # content-hash point ids
    for pid, record in a.items():
        assert set(record.vectors) == set(b[pid].vectors)
        for name, vector in record.vectors.items():
            assert np.allclose(vector, b[pid].vectors[name], atol=1e-5), name
        assert record.payload["segments"] == b[pid].payload["segments"]
    thumbnails = sorted(p.name for p in (tmp_path / "ray" / "thumbnails" / "media").glob("*.jpg"))
    assert thumbnails == sorted(p.name for p in (tmp_path / "local" / "thumbnails" / "media").glob("*.jpg"))
    again = json.loads(
        run_cli(
            "ingest",
            folder,
            "--json",
            "--executor",
            "ray",
            "--ray-address",
            cluster,
            env={**env, "EMBEDDER_STORE": str(tmp_path / "ray")},
        ).stdout
    )
    assert again["counts"]["unchanged"] == 4 and again["counts"]["new"] == 0


def test_a_decoder_crash_on_ray_is_one_failure_record(cluster, folder, tmp_path):
    from embedder.encoders.bundle import schema_for
    from embedder.engine.ray_executor import RayExecutor
    from embedder.engine.stages import IngestStages
    from embedder.media.discover import discover
    from embedder.progress import Progress
    from embedder.settings import Settings
    from embedder.store import open_store
    from tests.media.workers_helpers import decode_but_abort_on_vp9

    class CrashingStages(IngestStages):
        decode = staticmethod(decode_but_abort_on_vp9)

    settings = Settings(store=str(tmp_path / "store"), models="tiny")
    files = [f for f in discover([folder]).files if f.path.name != "truncated.mp4"]
    with open_store(settings) as store:
        store.ensure_collection(schema_for(settings))
        stages = CrashingStages(settings, None, store)  # a driver's stages: the configured image size
        report = RayExecutor(cluster, embedded_store=True).run(stages, files, Progress())
        assert [(f.path, f.stage) for f in report.failed] == [(str(folder / "vp9.webm"), "decode")]
        assert "crashed with signal SIGABRT" in report.failed[0].reason
        stored = {r.payload["path"] for r in store.scroll()}
    assert stored == {str(folder / n) for n in ("h264.mp4", "tone.mp3", "av1.mkv")}
