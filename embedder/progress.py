"""Progress reporting that library code can call without knowing about terminals."""

from __future__ import annotations


class Progress:
    """Does nothing; the CLI passes a subclass that draws a bar or prints log lines."""

    def start(self, total: int, label: str, unit: str = "files") -> None:
        """A phase with ``total`` steps begins; ``unit`` names a step ("files", "bytes", ...)."""

    def advance(self, path: str, status: str) -> None:
        """One file finished with ``status`` ("ok", "failed", ...)."""

    def update(self, completed: int, detail: str = "") -> None:
        """The phase has reached ``completed`` of its total (for work measured in bytes or rows)."""

    def note(self, message: str) -> None:
        """Something worth a log line."""

    def finish(self) -> None:
        """The phase ended."""
