"""Reads do not wait for a long ingest on the embedded store: the writer lets go between batches."""

import json
import os
import shutil
import subprocess
import sys
import time


def test_status_and_search_succeed_while_an_ingest_runs(tmp_path, media):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in (
        "h264.mp4",
        "hevc.mp4",
        "vp9.webm",
        "vfr.mp4",
        "long.mp4",
        "tone.mp3",
        "tone.flac",
        "tone.ogg",
        "multistream.mkv",
        "h264_10bit.mp4",
    ):
        shutil.copy(media[name], lib / name)
    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(tmp_path / "store"),
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_MAX_FRAMES": "8",
    }
    cli = [sys.executable, "-m", "embedder.cli"]
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(media["tone.wav"], first / "tone.wav")
    assert subprocess.run([*cli, "ingest", first, "--quiet"], env=env, capture_output=True).returncode == 0

    writer = subprocess.Popen(
        [*cli, "ingest", lib, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    reads, errors = 0, []
    deadline = time.monotonic() + 300
    while writer.poll() is None and time.monotonic() < deadline:
        for args in (["status", "--json"], ["search", "--like", str(first / "tone.wav"), "--include-self", "--json"]):
            proc = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)
            if writer.poll() is not None:
                break  # the ingest ended meanwhile: this read no longer overlaps it
            reads += 1
            if proc.returncode != 0:
                errors.append(proc.stderr.strip())
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert json.loads(out)["counts"]["new"] == 10
    assert errors == [] and reads >= 2  # reads overlapped the ingest and none was refused
