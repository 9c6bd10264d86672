"""Scheduled jobs inside ``embedder serve``, where the server holds the embedded store.

An embedded store has one writer: while ``embedder serve`` holds it, a job started beside it
(``embedder jobs run``, cron) would fail on the lock. So the server runs them: ``serve --schedule``
runs the jobs file's jobs on their schedule, and ``embedder jobs run NAME`` hands its job to a
running server (``POST /jobs/run``), as ``embedder ingest`` hands over an ingest.

Each step runs one of two ways:

- **in the server**, through its open :class:`~embedder.library.Library`, for the steps it has a
  method for as written (``ingest PATH...`` and ``reembed``, the long ones): requests go on being
  answered meanwhile;
- **as its own ``embedder`` process**, the same command cron would run, for every other step
  (``interactions train``, ``train``, ``snapshot create``, ``interactions prune``, ...): the server
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


def in_server(step: list[str]) -> str | None:
    """Which :class:`~embedder.library.Library` method runs ``step`` in the server, if one does as
    written: ``ingest PATH...`` (no flags) and ``reembed`` (no flags)."""
    if step and step[0] == "ingest" and len(step) > 1 and not any(a.startswith("-") for a in step[1:]):
        return "ingest"
    if step == ["reembed"]:
        return "reembed"
    return None


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
        method = in_server(step)
        log.info("job %s: step '%s' %s", job, " ".join(step), "in the server" if method else "beside the server")
        try:
            if method == "ingest":
                self.library.ingest(step[1:])  # files that fail are recorded; as 'ingest', that is not a failed step
                return None
            if method == "reembed":
                self.library.reembed()
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


__all__ = ["DRAIN_S", "RETRY_AFTER_S", "ServerJobs", "StoreGate", "in_server"]
