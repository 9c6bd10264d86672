"""embedder check finds each kind of damage, --repair re-encodes what it can, snapshots restore the rest."""

import json
import os
import shutil

import pytest

from embedder.check import check_collection, repair
from embedder.encoders.bundle import load_encoders
from embedder.engine.ingest import reingest, run_ingest
from embedder.errors import EmbedderError, StoreError
from embedder.search import search_like
from embedder.settings import load_settings
from embedder.snapshots import create_snapshot, list_snapshots, restore_snapshot
from embedder.store import open_store
from embedder.store.catalog import EdgeCatalog
from tests.cli_runner import run_cli


@pytest.fixture(scope="module")
def encoders():
    return load_encoders(load_settings(models="tiny", device="cpu"))


@pytest.fixture
def world(tmp_path, media, encoders):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm"):
        shutil.copy(media[name], lib / name)
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
    run_ingest([lib], settings, encoders=encoders)
    return lib, settings


def content_chunks(settings):
    root = os.path.join(settings.store, "media_v1", "segments")
    return [os.path.join(root, seg, "vector_storage-content", "vectors", "chunk_0.mmap") for seg in os.listdir(root)]


def check(settings):
    with open_store(settings) as store:
        return check_collection(store, EdgeCatalog(settings.store))


def test_garbage_in_vectors_is_found_refused_and_repaired(world, encoders):
    lib, settings = world
    assert check(settings).healthy and check(settings).points == 3
    for chunk in content_chunks(settings):
        fd = os.open(chunk, os.O_RDWR)
        os.pwrite(fd, os.urandom(1 << 16), 0)  # random bytes over every stored content vector
        os.close(fd)
    report = check(settings)
    assert not report.healthy and len(report.damaged_ids) == 3
    assert all("content vector" in p.problem for p in report.problems)
    with open_store(settings) as store:
        with pytest.raises(
            EmbedderError, match="collection .media. is damaged: point .*content vector (holds non-finite|has length)"
        ):
            search_like(store, str(lib / "tone.mp3"), settings, encoders=encoders)
        repair(report, store, lambda files: reingest(files, settings, store))
    assert sorted(report.repaired) == sorted(str(lib / n) for n in ("h264.mp4", "tone.mp3", "vp9.webm"))
    assert report.fixed and check(settings).healthy
    with open_store(settings) as store:
        assert search_like(store, str(lib / "tone.mp3"), settings, encoders=encoders, include_self=True)[
            0
        ].score == pytest.approx(1.0, abs=1e-4)


def test_a_truncated_chunk_is_found_and_a_snapshot_brings_the_store_back(world, tmp_path):
    lib, settings = world
    made = create_snapshot(settings, "before")
    assert made["name"].endswith("-before") and made["collections"] == ["media_v1"]
    assert made["size_bytes"] < 50e6  # sparse files stay sparse
    for chunk in content_chunks(settings):
        os.truncate(chunk, 100)
    report = check(settings)
    assert len(report.damaged_ids) == 3 and all(p.problem.startswith("vectors cannot be read") for p in report.problems)
    with open_store(settings) as store:
        with pytest.raises(StoreError, match="is damaged .*run 'embedder check' to find the damaged points"):
            list(store.scroll(with_vectors=True))
        repair(report, store, lambda files: reingest(files, settings, store))  # never writes into a cut-short shard
    assert (
        report.repaired == [] and len(report.unrepaired) == 3 and "restore a snapshot" in report.unrepaired[0]["reason"]
    )

    done = restore_snapshot(settings, made["name"])
    assert done["previous_state"].endswith("-pre-restore")
    after = check(settings)
    assert after.healthy and after.points == 3
    names = [s["name"] for s in list_snapshots(settings)]
    assert names == [done["previous_state"], made["name"]]  # newest first; the damaged state was kept
    with pytest.raises(EmbedderError, match="no snapshot 'nope'"):
        restore_snapshot(settings, "nope")


def test_check_cli_exit_codes(world):
    lib, settings = world
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": settings.store}

    def cli(*args):
        return run_cli(*args, env=env, code=None, timeout=300)

    ok = cli("check", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["healthy"] is True
    for chunk in content_chunks(settings):
        os.truncate(chunk, 100)
    bad = cli("check", "--json")
    assert bad.returncode == 3 and json.loads(bad.stdout)["damaged_points"] == 3
    search = cli("search", "--like", str(lib / "tone.mp3"))
    assert search.returncode == 2 and "is damaged" in search.stderr and "Traceback" not in search.stderr
