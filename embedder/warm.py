"""A warm query process: the second ``embedder search`` in a terminal answers in well under a second.

A cold ``embedder search`` spends most of its time importing torch and loading the encoders
(about 10 s with the tiny preset here, 15 s full-size). The first query command run in a terminal
on an embedded store therefore starts ``embedder serve`` in the background for the same store
(loopback, a free port, its log in the store's ``.warm.log``) and asks it; the next commands find
it through the store's marker file, as they find any running ``serve``, and pay only the CLI's own
start-up. It exits after ``warm_idle_s`` without a request. It never blocks a writer: a command
that needs the store finds it held by a *warm* server and asks it to exit first
(``POST /warm/exit``, from :mod:`embedder.store.edge` when it finds the lock held), then goes on.

``warm_queries``: ``auto`` (the default) only when stdin and stdout are a terminal, so scripts,
cron and pipes keep the plain in-process path; ``on`` always; ``off`` never.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedder.settings import Settings

WARM_LOG = ".warm.log"
START_TIMEOUT_S = 300.0  # loading full-size encoders on a busy CPU


def wanted(settings: Settings) -> bool:
    """Whether a query command should start (or use) a warm query process."""
    if settings.is_server or settings.server or settings.warm_queries == "off" or settings.warm_idle_s <= 0:
        return False
    return settings.warm_queries == "on" or (sys.stdin.isatty() and sys.stdout.isatty())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(settings: Settings, flags: list[str], say=None) -> str | None:
    """Start a warm ``embedder serve`` for ``settings`` and wait until it is ready; its URL, or
    ``None`` when it did not come up (the caller then answers in-process, as without it)."""
    from embedder.remote import served_by

    store = Path(settings.store).expanduser()
    port = _free_port()
    command = [sys.executable, "-m", "embedder.cli", *flags, "serve", "--port", str(port)]
    command += ["--warm-idle", str(settings.warm_idle_s)]
    if say is not None:
        say(
            f"(starting a warm query process for the next commands; it exits after {settings.warm_idle_s:.0f} s "
            "unused, or when a command needs to write; warm_queries=off turns this off)"
        )
    with open(store / WARM_LOG, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=os.environ.copy()
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None  # it could not start (the store is held by a writer, say): answer in-process
        url = served_by(settings)
        if url is not None and _ready(url):
            return url
        time.sleep(0.2)
    return None


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


__all__ = ["WARM_LOG", "start", "wanted"]
