"""Progress reporting that library code can call without knowing about terminals."""

from __future__ import annotations


class Progress:
    """Does nothing; the CLI passes a subclass that draws a bar or prints log lines."""

    def start(self, total: int, label: str) -> None:
        """A phase with ``total`` steps begins."""

    def advance(self, path: str, status: str) -> None:
        """One file finished with ``status`` ("ok", "failed", ...)."""

    def note(self, message: str) -> None:
        """Something worth a log line."""

    def finish(self) -> None:
        """The phase ended."""
