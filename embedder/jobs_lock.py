"""One writing job at a time per store: re-embedding and ingest exclude each other.

The lock is a file lock (flock) beside an embedded store, or in the data directory for a server
store (which then guards one machine: run scheduled jobs from one place).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError

if TYPE_CHECKING:
    from embedder.settings import Settings


def lock_path(settings: Settings) -> Path:
    """The job lock of ``settings``' store and collection (:attr:`Settings.job_lock_file`)."""
    return settings.job_lock_file


@contextlib.contextmanager
def job_lock(settings: Settings, job: str):
    """Hold the store's job lock for ``job``; a second job gets a clear error naming the first."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another job"
            raise EmbedderError(
                f"cannot start {job}: {holder} is running on collection '{settings.collection}'; "
                "jobs that write the same collection run one at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{job} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
