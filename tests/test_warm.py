"""The warm query process (embedder.warm): the first query command starts 'serve' in the background
for the store, the next ones go through it, a writer makes it step aside, and it exits when idle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


@pytest.fixture
def one_file_store(tmp_path, media):
    """(media folder, store) with one ingested sound, the tiny preset."""
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(media["tone.mp3"], folder / "tone.mp3")
    store = tmp_path / "store"
    with Library.open(load_settings(store=str(store), models="tiny", device="cpu", workers=1)) as lib:
        assert not lib.ingest([str(folder)]).failed
    return folder, store


def test_queries_go_through_a_warm_process_that_steps_aside_for_writers_and_exits_when_idle(one_file_store, media):
    folder, store = one_file_store
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


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_a_terminal_the_second_query_answers_through_the_warm_process(one_file_store):
    """What a person sees in a terminal (tmux): the first 'status' says it starts the warm process,
    the second one is answered through it."""
    folder, store = one_file_store
    session = f"embedder-warm-{os.getpid()}"
    bin_dir = Path(sys.executable).parent
    shell_env = f"PATH={bin_dir}:$PATH EMBEDDER_STORE={store} EMBEDDER_MODELS=tiny EMBEDDER_WARM_IDLE_S=60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", "bash --norc"], check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def typed(line: str, until: str, timeout_s: float = 120) -> str:
        subprocess.run(["tmux", "send-keys", "-t", session, line, "Enter"], check=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until in screen():
                return screen()
            time.sleep(0.3)
        raise AssertionError(f"never saw {until!r}:\n{screen()}")

    try:
        # Each line ends by echoing a word the typed line does not contain ($((1+1)) prints 2).
        typed(f"export {shell_env}; echo READY-$((1+1))", "READY-2")
        first = typed("embedder status; echo FIRST-$((1+1))", "FIRST-2")
        assert "starting a warm query process" in first and "items" in first
        second = typed("embedder status; echo SECOND-$((1+1))", "SECOND-2")
        assert "through embedder serve at http://127.0.0.1:" in second.split("FIRST-2")[-1]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        marker = store / SERVE_FILE
        if marker.exists():  # the warm process would live on for its idle time: stop it here
            os.kill(json.loads(marker.read_text())["pid"], signal.SIGTERM)
