"""A full disk: a clear error and exit 2 instead of SIGBUS, nothing half-made left, usable once space is freed.

Runs on a real small filesystem (a tmpfs mounted by the test, as root); skipped with the reason
where mounting is not allowed. On tmpfs Qdrant Edge fills its sparse files when it opens a
collection, which is the harshest case: without the checks, 'status' died with SIGBUS here.
"""

import json
import shutil
import subprocess

import pytest

from tests.cli_runner import run_cli


@pytest.fixture
def small_fs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def cli(*args, env):
    return run_cli(*args, env=env, code=None, timeout=300)


def fill(fs, leave_mb: int):
    free = shutil.disk_usage(fs).free
    with open(fs / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_mb * 1_000_000))


def test_create_and_growth_on_a_full_disk(small_fs, tmp_path, media):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(media["tone.wav"], lib / "tone.wav")
    env = {
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(small_fs / "store"),
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_MIN_FREE_MB": "2000",
    }

    # Creating a store needs min_free_mb: refused on this 1.2 GB filesystem, nothing left behind.
    proc = cli("ingest", lib, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "not enough free space to create collection 'media'" in proc.stderr
    assert not (small_fs / "store" / "media_v1").exists()

    # A half-created shard (what a crash during creation leaves) is redone, not stuck.
    (small_fs / "store" / "media_v1" / "segments").mkdir(parents=True)
    (small_fs / "store" / "media_v1" / "segments" / "junk").write_bytes(b"x" * 1000)
    env["EMBEDDER_MIN_FREE_MB"] = "24"
    assert cli("ingest", lib, "--json", env=env).returncode == 0

    # The disk fills up: opening and writing stop with a clear error, never SIGBUS (exit 135).
    fill(small_fs, leave_mb=100)
    shutil.copy(media["tone.mp3"], lib / "tone.mp3")
    # Writes keep the guard: the collection's preallocated files could claim more than is free.
    proc = cli("ingest", lib, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "not enough free space to write to collection" in proc.stderr and "nothing stored is lost" in proc.stderr
    # Reads write nothing (the collection was opened before: opening fills no hole now), so they
    # answer on the nearly full disk, whatever min_free_mb says, and never die with SIGBUS.
    (small_fs / "filler").unlink()
    fill(small_fs, leave_mb=3)
    for kept in (small_fs / "store").glob("*/embedder-reads.json"):
        kept.unlink()  # as another write would leave it: the engine itself must open
    for extra in ({}, {"EMBEDDER_MIN_FREE_MB": "0"}):
        for args in (
            ("search", "a tone", "--json"),
            ("check", "--json"),
            ("items", "list", "--json"),
            ("status", "--json"),
        ):
            proc = cli(*args, env={**env, **extra})
            assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
    assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 1
    # A snapshot that cannot fit: one line, nothing half-made.
    proc = cli("snapshot", "create", env={**env, "EMBEDDER_SNAPSHOT_DIR": str(small_fs / "snaps")})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not enough free space for a snapshot" in proc.stderr
    assert not (small_fs / "snaps").exists() or not any((small_fs / "snaps").iterdir())
    # A write that really meets the full disk (the interaction log, past every guard): exit 2, one line.
    events = tmp_path / "events.csv"
    events.write_text("user,item,weight\n" + "".join(f"user{i},{lib / 'tone.wav'},1\n" for i in range(200_000)))
    proc = cli("interactions", "import", events, env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "full" in proc.stderr and "nothing stored is lost" in proc.stderr

    (small_fs / "filler").unlink()  # space is back: the same command completes, nothing was lost
    proc = cli("ingest", lib, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 2
