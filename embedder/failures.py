"""Files that failed, remembered by content hash, so an unchanged broken file is not retried on every run.

Without this, every re-ingest of a folder with one broken file decoded it again and, worse,
loaded the models (seconds to tens of seconds) only to fail the same way. A failure is keyed by
the file's SHA-256: when the file changes it has another hash and is tried again; an unchanged
one is reported from memory until ``embedder ingest --retry-failed``. The record lives beside the
store (``failed-<collection>.json``, or in the data directory for a server store).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import Failure

if TYPE_CHECKING:
    from embedder.settings import Settings


def failures_path(settings: Settings) -> Path:
    """Where the failures of ``settings.collection`` are remembered."""
    from embedder.jobs_lock import lock_path

    return lock_path(settings).with_name(f"failed-{settings.collection}.json")


class FailureMemory:
    """Content hash -> the failure it produced (stage, reason, path, when)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            self.entries = {}  # a damaged record only costs a retry
        self.changed = False

    def recalled(self, sha256: str, path: str) -> Failure | None:
        """The remembered failure of this content, reported for ``path``; ``None`` if none."""
        entry = self.entries.get(sha256)
        if entry is None:
            return None
        reason = f"{entry['reason']} (failed on {entry['at']}; unchanged since, so not retried: --retry-failed)"
        return Failure(path, entry["stage"], reason)

    def remember(self, sha256: str, failure: Failure) -> None:
        self.entries[sha256] = {
            "stage": failure.stage,
            "reason": failure.reason,
            "path": failure.path,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.changed = True

    def forget(self, sha256: str) -> None:
        if self.entries.pop(sha256, None) is not None:
            self.changed = True

    def prune(self, is_current) -> None:
        """Forget failures whose file no longer holds that content (``is_current(path, sha256)`` is
        False): the record stays the size of what is broken now, not of everything ever broken."""
        for sha, entry in list(self.entries.items()):
            if not is_current(entry["path"], sha):
                self.forget(sha)

    def save(self) -> None:
        """Write the record atomically (write, rename) when it changed."""
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
        self.changed = False
