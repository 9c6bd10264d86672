"""A small cron scheduler for ``embedder jobs``: due jobs run, a job never overlaps itself, every
outcome is logged, and a failing job does not stop the others.

Each step runs as its own ``embedder`` process, so a crash in one job cannot take the scheduler
down. Cron expressions are parsed by ``croniter``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from embedder.errors import SettingsError
from embedder.settings import read_toml

log = logging.getLogger("embedder.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    cron: str
    steps: tuple[tuple[str, ...], ...]

    def next_after(self, moment: datetime) -> datetime:
        from croniter import croniter

        return croniter(self.cron, moment).get_next(datetime)


def load_jobs(path: str | Path) -> dict[str, Job]:
    """Jobs from a TOML file (see ``pipelines/jobs.toml``).

    Raises:
        SettingsError: a missing file, a bad cron expression or a job without steps, naming it.
    """
    from croniter import croniter

    data = read_toml(path, "jobs file")
    jobs = {}
    for name, spec in (data.get("jobs") or {}).items():
        cron = spec.get("cron", "")
        if not croniter.is_valid(cron):
            raise SettingsError(f"jobs file {path}: job '{name}' has an invalid cron expression '{cron}'")
        steps = spec.get("steps") or []
        if not steps or not all(isinstance(s, list) and s and all(isinstance(a, str) for a in s) for s in steps):
            raise SettingsError(f'jobs file {path}: job \'{name}\' needs steps = [["command", "arg", ...], ...]')
        jobs[name] = Job(name, cron, tuple(tuple(s) for s in steps))
    return jobs


def run_steps(job: Job, extra_args: list[str] | None = None) -> tuple[bool, str]:
    """Run a job's steps as ``embedder`` processes; (ok, a one-line outcome)."""
    for step in job.steps:
        cmd = [sys.executable, "-m", "embedder.cli", *(extra_args or []), *step]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            return False, f"step '{' '.join(step)}' failed: {last}"
    return True, f"{len(job.steps)} step(s) done"


@dataclass
class Scheduler:
    """Runs due jobs. ``clock`` and ``runner`` are injectable, so tests drive it with a fake clock."""

    jobs: dict[str, Job]
    runner: Callable[[Job], tuple[bool, str]] = run_steps
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    next_run: dict[str, datetime] = field(default_factory=dict)
    running: dict[str, threading.Thread] = field(default_factory=dict)
    outcomes: list[dict] = field(default_factory=list)

    def __post_init__(self):
        now = self.clock()
        self.next_run = {name: job.next_after(now) for name, job in self.jobs.items()}

    def tick(self) -> list[str]:
        """Start every job that is due and not already running; returns the names started."""
        now = self.clock()
        started = []
        for name, job in self.jobs.items():
            if self.next_run[name] > now:
                continue
            self.next_run[name] = job.next_after(now)
            thread = self.running.get(name)
            if thread is not None and thread.is_alive():
                self._record(name, "skipped", "still running from its previous start", now)
                continue
            thread = threading.Thread(target=self._run, args=(job,), name=f"job-{name}", daemon=True)
            self.running[name] = thread
            thread.start()
            started.append(name)
        return started

    def _run(self, job: Job) -> None:
        began = self.clock()
        try:
            ok, message = self.runner(job)
        except Exception as exc:  # a broken runner is one failed run, not a dead scheduler
            ok, message = False, f"{type(exc).__name__}: {exc}"
        self._record(job.name, "ok" if ok else "failed", message, began)

    def _record(self, name: str, status: str, message: str, when: datetime) -> None:
        entry = {"job": name, "status": status, "message": message, "started": when.isoformat(timespec="seconds")}
        self.outcomes.append(entry)
        (log.info if status == "ok" else log.warning)("job %s %s: %s", name, status, message)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for running jobs to finish (tests, and a clean shutdown)."""
        for thread in list(self.running.values()):
            thread.join(timeout)

    def serve(self, stop: threading.Event, poll_s: float = 20.0) -> None:
        """Tick until ``stop`` is set."""
        while not stop.is_set():
            self.tick()
            stop.wait(poll_s)
        self.wait_idle()


__all__ = ["Job", "Scheduler", "load_jobs", "run_steps"]
