"""Scheduled jobs inside ``embedder serve``, where the server holds the embedded store.

An embedded store has one writer: while ``embedder serve`` holds it, a job started beside it
(``embedder jobs run``, cron) would fail on the lock. So the server runs them: ``serve --schedule``
runs the jobs file's jobs on their schedule, and ``embedder jobs run NAME`` hands its job to a
running server (``POST /jobs/run``), as ``embedder ingest`` hands over an ingest.

Each step runs one of two ways:

- **in the server**, through its open :class:`~embedder.library.Library`, for the steps it has a
  method for as written (:data:`IN_SERVER`: ``ingest PATH...``, ``reembed``, ``interactions
  train``, ``train --config FILE`` and ``interactions prune``, with the options listed there):
  requests go on being answered meanwhile;
- **as its own ``embedder`` process**, the same command cron would run, for every other step
  (``snapshot create``, or a step with other options): the server
  **steps aside** for it. It stops taking requests that need the store (they get 503 with
  ``Retry-After``; ``/health`` stays up, ``/ready`` says why it is not), waits for those in flight,
  releases the store's lock, runs the step, and takes the store back (re-reading what the step
  wrote). A Qdrant server store has no such lock, so there the server never steps aside.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError, one_line

if TYPE_CHECKING:
    from embedder.library import Library
    from pipelines.scheduler import Job

log = logging.getLogger("embedder.serve")
DRAIN_S = 60.0  # how long a step waits for the requests in flight before it gives up
RETRY_AFTER_S = 5  # what a refused request is told


class StoreGate:
    """Requests share the store; a step that runs as its own process takes it from them.

    :meth:`enter` / :meth:`leave` bracket a request (``enter`` says who holds the store instead,
    when a step does); :meth:`taken` holds it for a step: no new request enters, the ones in
    flight finish first.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self.held_by: str | None = None

    def enter(self) -> str | None:
        """Count a request in, or return what holds the store (the request should not run)."""
        with self._cond:
            if self.held_by is not None:
                return self.held_by
            self._in_flight += 1
            return None

    def leave(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    @contextlib.contextmanager
    def taken(self, by: str, drain_s: float = DRAIN_S) -> Iterator[None]:
        """Hold the store for ``by``: new requests are refused, and the ones in flight are waited for.

        Raises:
            EmbedderError: requests still in flight after ``drain_s``.
        """
        with self._cond:
            while self.held_by is not None:  # one step at a time
                self._cond.wait()
            self.held_by = by
            if not self._cond.wait_for(lambda: self._in_flight == 0, timeout=drain_s):
                self.held_by = None
                self._cond.notify_all()
                raise EmbedderError(f"requests still running after {drain_s:.0f} s; '{by}' did not start")
        try:
            yield
        finally:
            with self._cond:
                self.held_by = None
                self._cond.notify_all()


# The steps the server runs through its own Library, with the options each may carry there (option:
# whether it takes a value). Any other option, or any other step, runs as its own process.
IN_SERVER: dict[tuple[str, ...], dict[str, bool]] = {
    ("ingest",): {},
    ("reembed",): {},
    ("interactions", "train"): {"--auto": False, "--model": True, "--seed": True},
    ("interactions", "prune"): {"--older-than": True},
    ("train",): {"--config": True},
}


def in_server(step: list[str]) -> tuple[str, dict[str, str | bool], list[str]] | None:
    """How the server runs ``step`` through its :class:`~embedder.library.Library`, if it does as
    written: ``(command, options, arguments)``, or ``None`` for a step that runs as its own
    process (another command, or an option :data:`IN_SERVER` does not list)."""
    for command, allowed in IN_SERVER.items():
        if tuple(step[: len(command)]) != command:
            continue
        options: dict[str, str | bool] = {}
        arguments: list[str] = []
        rest = iter(step[len(command) :])
        for word in rest:
            if not word.startswith("-"):
                arguments.append(word)
            elif word not in allowed:
                return None
            elif allowed[word]:
                value = next(rest, None)
                if value is None:
                    return None
                options[word] = value
            else:
                options[word] = True
        if (command == ("ingest",)) != bool(arguments):  # ingest takes paths, the others none
            return None
        return " ".join(command), options, arguments
    return None


def run_in_server(library: Library, command: str, options: dict, arguments: list[str]) -> None:
    """Run a step :func:`in_server` recognised, through ``library``.

    Raises:
        EmbedderError: the step failed (files that fail in an ingest are recorded, as the
        ``ingest`` command records them: that is not a failed step).
    """
    if command == "ingest":
        library.ingest(arguments)
    elif command == "reembed":
        library.reembed()
    elif command == "interactions train":
        seed = _number(options.get("--seed", "0"), "--seed", int)
        library.train_recommender(options.get("--model", "als"), auto=bool(options.get("--auto")), seed=seed)
    elif command == "interactions prune":
        days = options.get("--older-than")
        library.prune_events(None if days is None else _number(days, "--older-than", float))
    elif command == "train":
        from embedder.train.config import load_train_config

        config = options.get("--config")
        library.train_head(load_train_config(None if config is None else Path(config)))


def _number(text, option: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise EmbedderError(f"{option} must be a number, not '{text}'") from None


class ServerJobs:
    """Runs jobs for the server: steps in the server where it can, else beside it (see the module).

    A step's own process gets the server's store, collection and models as options, then
    ``flags`` (the global options the server was started with, its config file among them); it
    reads the same environment.
    """

    def __init__(self, library: Library, gate: StoreGate, flags: list[str], busy: Callable[[], bool] = lambda: False):
        self.library = library
        self.gate = gate
        self.flags = flags
        self.busy = busy  # whether the server's own ingest is running (a step beside it waits)
        self._running: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def run(self, job: Job) -> tuple[bool, str]:
        """Run ``job``'s steps in order, stopping at the first failure; ``(ok, one line)``. A job
        never overlaps itself: a second start while it runs is refused."""
        with self._lock:
            running = self._running.setdefault(job.name, threading.Lock())
        if not running.acquire(blocking=False):
            return False, f"job {job.name} is already running in this server"
        try:
            for step in job.steps:
                problem = self._step(job.name, step)
                if problem is not None:
                    return False, f"step '{' '.join(step)}' failed: {problem}"
            return True, f"{len(job.steps)} step(s) done"
        finally:
            running.release()

    def _step(self, job: str, step: list[str]) -> str | None:
        """Run one step; ``None`` when it succeeded, else why not (one line)."""
        recognised = in_server(step)
        where = "in the server" if recognised else "beside the server"
        log.info("job %s: step '%s' %s", job, " ".join(step), where)
        try:
            if recognised is not None:
                run_in_server(self.library, *recognised)
                return None
            return self._beside(job, step)
        except EmbedderError as exc:
            return one_line(str(exc), 300)

    def _beside(self, job: str, step: list[str]) -> str | None:
        settings = self.library.settings
        # The step works on what the server serves, however the server was given its settings.
        served = ["--store", str(settings.store), "--collection", settings.collection, "--models", settings.models]
        command = [sys.executable, "-m", "embedder.cli", *served, *self.flags, *step]
        if self.library.settings.is_server:  # a Qdrant server takes any number of writers
            return _outcome(subprocess.run(command, capture_output=True, text=True))
        while self.busy():  # the server's own ingest holds the store for its writes: let it finish
            time.sleep(1.0)
        with self.gate.taken(f"job {job}: {' '.join(step)}"):
            self.library.step_aside()
            return _outcome(subprocess.run(command, capture_output=True, text=True))


def _outcome(proc: subprocess.CompletedProcess) -> str | None:
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]


__all__ = ["DRAIN_S", "IN_SERVER", "RETRY_AFTER_S", "ServerJobs", "StoreGate", "in_server", "run_in_server"]
