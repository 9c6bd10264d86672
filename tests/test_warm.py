"""The warm query process (embedder.warm): the first query command starts 'serve' in the background
for the store, the next ones go through it, a writer makes it step aside, and it exits when idle."""

from __future__ import annotations

import json
import os
import shutil
import time

from embedder import Library
from embedder.settings import load_settings
from embedder.store.edge import SERVE_FILE
from tests.cli_runner import run_cli


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_queries_go_through_a_warm_process_that_steps_aside_for_writers_and_exits_when_idle(tmp_path, media):
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(media["tone.mp3"], folder / "tone.mp3")
    store = tmp_path / "store"
    with Library.open(load_settings(store=str(store), models="tiny", device="cpu", workers=1)) as lib:
        assert not lib.ingest([str(folder)]).failed
    env = {"EMBEDDER_STORE": str(store), "EMBEDDER_MODELS": "tiny", "EMBEDDER_WARM_QUERIES": "on"}
    env["EMBEDDER_WARM_IDLE_S"] = "60"
    first = run_cli("search", "tone", "--mode", "dense", "--json", env=env)
    assert "starting a warm query process" in first.stderr
    marker = json.loads((store / SERVE_FILE).read_text())
    assert marker["warm"] is True and _alive(marker["pid"])
    second = run_cli("search", "tone", "--mode", "dense", "--json", env=env)
    assert "through embedder serve" in second.stderr and "starting" not in second.stderr
    assert [h["id"] for h in json.loads(second.stdout)["hits"]] == [h["id"] for h in json.loads(first.stdout)["hits"]]
    # A command with other settings is not answered by it: a new one takes over the store.
    other = run_cli("search", "tone", "--mode", "dense", "--json", env={**env, "EMBEDDER_PERSONAL_WEIGHT": "2"})
    assert "starting a warm query process" in other.stderr and _gone(marker["pid"], 30)
    marker = json.loads((store / SERVE_FILE).read_text())
    # A writer neither fails on the lock nor hands its work over: the warm process steps aside.
    shutil.copy(media["tone.mp3"], folder / "again.mp3")
    wrote = run_cli("ingest", str(folder), "--json", env=env)
    assert "through embedder serve" not in wrote.stderr and json.loads(wrote.stdout)["counts"]["new"] == 1
    assert _gone(marker["pid"], 30) and not (store / SERVE_FILE).exists()
    # Unused, it exits by itself; with warm_queries=off nothing starts at all.
    quick = {**env, "EMBEDDER_WARM_IDLE_S": "2"}
    run_cli("status", "--json", env=quick)
    pid = json.loads((store / SERVE_FILE).read_text())["pid"]
    assert _gone(pid, 30) and not (store / SERVE_FILE).exists()
    plain = run_cli("status", "--json", env={**env, "EMBEDDER_WARM_QUERIES": "off"})
    assert "warm" not in plain.stderr and not (store / SERVE_FILE).exists()
