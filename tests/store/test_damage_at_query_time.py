"""Damaged stores never answer: each test replays one case of the fault campaign (random bytes
in a vector file, a forged kept-reads file, a damaged interaction log) through the real CLI, and
checks that the command fails with one line naming the collection and the next step, and that
``embedder check`` finds it, whichever collection holds it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cli_runner import run_cli


@pytest.fixture
def world(tmp_path, media):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm", "hevc.mp4"):
        shutil.copy(media[name], lib / name)
    store = tmp_path / "store"
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(store), "EMBEDDER_WORKERS": "1", "EMBEDDER_CF_FACTORS": "4"}
    run_cli("ingest", lib, "--json", env=env)
    events = tmp_path / "events.csv"
    names = sorted(os.listdir(lib))
    rows = [f"u{u},{lib / names[(u + k) % len(names)]},1" for u in range(6) for k in range(2)]
    events.write_text("user,item,weight\n" + "\n".join(rows) + "\n")
    run_cli("interactions", "import", events, "--json", env=env)
    run_cli("interactions", "train", "--json", env=env)
    return lib, store, env


def cli(*args, env):
    return run_cli(*args, env=env, code=None, timeout=300)


def vector_chunks(store: Path, collection: str, vector: str) -> list[Path]:
    found = sorted((store / collection / "segments").glob(f"*/vector_storage-{vector}/vectors/chunk_0.mmap"))
    assert found, f"no {vector} vectors in {collection}"
    return found


def scramble(chunks: list[Path], seed: int = 0) -> None:
    """1,500 random bytes at the start of every chunk: the campaign's damage."""
    import random

    rng = random.Random(seed)
    for chunk in chunks:
        fd = os.open(chunk, os.O_RDWR)
        os.pwrite(fd, bytes(rng.getrandbits(8) for _ in range(1500)), 0)
        os.close(fd)


def assert_refused(proc, collection: str):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert f"collection '{collection}' is damaged" in line
    assert "embedder check" in line and "embedder snapshot restore" in line
    assert "e+3" not in proc.stdout and "nan" not in proc.stdout.lower()


def test_random_bytes_in_content_vectors_fail_search_with_the_next_step(world):
    lib, store, env = world
    scramble(vector_chunks(store, "media_v1", "content"))
    assert_refused(cli("search", "a test pattern", "--json", env=env), "media")
    assert_refused(cli("search", "--like", lib / "h264.mp4", env=env), "media")
    report = cli("check", "--json", env=env)
    assert report.returncode == 3 and json.loads(report.stdout)["damaged_points"] >= 1


def test_random_bytes_in_visual_vectors_fail_the_per_modality_search(world):
    _, store, env = world
    scramble(vector_chunks(store, "media_v1", "visual"))
    assert_refused(cli("search", "a test pattern", "--modality", "visual", env=env), "media")
    assert_refused(cli("search", "a test pattern", env=env), "media")  # the table's per-modality cells read them


def test_random_bytes_in_the_users_cf_vectors_fail_recommend_and_check_finds_them(world):
    _, store, env = world
    users = [p.name for p in store.iterdir() if p.name.startswith("media_users_v")]
    assert users == ["media_users_v1"]
    assert cli("check", "--json", env=env).returncode == 0
    scramble(vector_chunks(store, "media_users_v1", "cf"))
    assert_refused(cli("recommend", "--user", "u1", "--strategy", "cf", env=env), "media_users")
    assert_refused(cli("similar-users", "u1", env=env), "media_users")
    report = cli("check", "--json", env=env)
    assert report.returncode == 3, report.stdout
    data = json.loads(report.stdout)
    assert data["healthy"] is False and data["damaged_points"] == 0  # the media collection itself is sound
    users_report = {r["collection"]: r for r in data["collections"]}["media_users_v1"]
    assert users_report["damaged_points"] >= 1 and not users_report["healthy"]


def test_a_forged_kept_reads_file_is_ignored(world):
    _, store, env = world
    honest = json.loads(cli("status", "--json", env=env).stdout)
    assert honest["points"] == 4
    reads = store / "media_v1" / "embedder-reads.json"
    data = json.loads(reads.read_text())
    counts = [e for e in data["entries"] if e[0].startswith("count")]
    assert counts, data["entries"]
    for entry in counts:  # valid JSON, wrong counts: what the campaign wrote
        entry[2] = 1003
    reads.write_text(json.dumps(data))
    assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 4
    del data["mac"]  # no checksum at all
    reads.write_text(json.dumps(data))
    assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 4
    other = store / "media_users_v1"  # a verified file, but another collection's
    if (other / "embedder-reads.json").is_file():
        shutil.copy(other / "embedder-reads.json", reads)
        assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 4


def test_a_damaged_interaction_log_is_one_line_and_check_reports_it(world):
    _, store, env = world
    log = store / "interactions.sqlite"
    assert log.is_file()
    data = bytearray(log.read_bytes())
    page = 4096
    assert len(data) > 2 * page
    data[page : 2 * page] = os.urandom(page)  # the second page: the table's b-tree
    log.write_bytes(bytes(data))
    proc = cli("recommend", "--user", "u1", env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "interaction log" in proc.stderr and "embedder snapshot restore" in proc.stderr
    report = cli("check", "--json", env=env)
    assert report.returncode == 3
    assert json.loads(report.stdout)["interaction_log"]["healthy"] is False
