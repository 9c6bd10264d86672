"""The README's tour and the getting-started page, run as written: every command line of their
fenced blocks, in order, in a folder laid out as the text assumes (``./media`` with ``talk.mp4``
and ``clip.mp4``, a ``plays.csv`` whose ``video`` column names files as paths), with the tiny
preset. Each must exit 0 with no traceback, and what they print must say they did their job.

Only ``embedder serve`` is not run here (it runs until stopped; ``tests/test_service.py`` serves a
library over real HTTP). ``tests/test_doc_commands.py`` parses every command on every page."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_doc_commands import fenced_commands, parse

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = ("embedder serve",)


def _tour(page: str) -> list[str]:
    return [c for c in fenced_commands((ROOT / page).read_text()) if not c.startswith(NOT_RUN)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, real_media) -> Path:
    """./media as the README assumes it, and a play log naming the files by relative path."""
    from embedder.samples import make_samples

    root = tmp_path_factory.mktemp("tour")
    made = make_samples(root / "media", seconds=2.0)
    shutil.copy(real_media / "nasa_13013.mp4", root / "media" / "talk.mp4")  # speech: "... Goddard ..."
    shutil.copy(made[0], root / "media" / "clip.mp4")
    shutil.copy(made[1], root / "media" / "old.mp4")  # getting-started deletes it
    shutil.copy(made[2], root / "clip.mp4")  # a new file, not in the library
    files = sorted(p.name for p in (root / "media").iterdir() if p.suffix in (".mp4", ".mp3"))
    with open(root / "plays.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["uid", "video", "plays"])
        for n in range(44):  # users who each play a run of neighbouring files: a pattern to learn
            for k in range(4):
                writer.writerow([f"u{n}", f"./media/{files[(n + k) % len(files)]}", 1 + (n * k) % 5])
        writer.writerow(["alice", "media/talk.mp4", 3])
    return root


def _run(command: str, cwd: Path):
    """The command line as a user types it, in ``cwd``: the real CLI in a subprocess."""
    words = shlex.split(command)
    environment = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_SPEECH_MODEL": "pocketsphinx", "EMBEDDER_WARM_QUERIES": "off"}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        environment[name] = value
    done = subprocess.run(
        [sys.executable, "-m", "embedder.cli", *words[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **environment, "EMBEDDER_STORE": str(cwd / "tour-store")},
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_readme_tour_runs_as_written(workspace):
    tour = _tour("README.md")
    assert tour[0] == "embedder inspect ./media" and len(tour) >= 10
    out = {}
    for command in tour:
        parse(command)
        out[command] = _run(command, workspace).stdout
    transcript = next(v for k, v in out.items() if "transcript" in k)
    assert transcript.startswith("WEBVTT") and "goddard space flight" in transcript  # heard at ingest
    imported = next(v for k, v in out.items() if "interactions import" in k)
    # './media/x.mp4' and 'media/x.mp4' joined the stored files: as many items as the store holds
    assert "177 rows" in imported and "0 bad" in imported and "7 items" in imported
    status = json.loads(out["embedder status --json"])
    assert status["points"] == 7  # 9 files, two of them copies of another
    assert sum(status["kinds"].values()) == status["points"]
    assert "best validation ndcg@10" in status["recommend_default"]  # what 'train --auto' chose, and why
    explained = next(v for k, v in out.items() if k.startswith("embedder recommend"))
    assert "best validation ndcg@10" in explained and "you liked" in explained
    rows = [line for line in out['embedder search "goddard space flight" --explain'].splitlines() if "│" in line]
    assert "talk.mp4" in rows[0] and "Goddard Space Flight" in rows[0]  # the words found it, and say where


def test_the_getting_started_page_runs_as_written(workspace):
    tour = _tour("docs/getting-started.md")
    tour = [c for c in tour if c.startswith("embedder")]  # the two 'bash scripts/...' lines are the README's own
    assert len(tour) >= 10
    for command in tour:
        parse(command)
        _run(command, workspace)
