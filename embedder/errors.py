"""Error types and failure records shared by every stage.

A failure on one file never stops a run over many: stages raise :class:`MediaError`, the
pipeline turns it into a :class:`Failure` record, and the CLI prints records, not tracebacks.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

# C0 and C1 control characters and DEL: a newline in a file name would split a log record in two,
# an escape sequence would move a terminal's cursor.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class EmbedderError(Exception):
    """An error the user can act on; the CLI prints its message as one line."""


class SettingsError(EmbedderError):
    """An invalid setting value; the message names the setting."""


class WeightsUnavailableError(EmbedderError):
    """Model weights are not cached locally and could not be downloaded."""


class StoreError(EmbedderError):
    """The vector store cannot be opened or written."""


class MediaError(EmbedderError):
    """A single file failed at one stage of the pipeline.

    Attributes:
        path: the file.
        stage: "discover", "probe", "decode", "encode" or "write".
        reason: a one-line human-readable cause.
    """

    def __init__(self, path: str | Path, stage: str, reason: str):
        self.path = str(path)
        self.stage = stage
        self.reason = reason
        super().__init__(f"{self.path}: {stage}: {reason}")


@dataclass(frozen=True)
class Failure:
    """A record of one file that could not be processed."""

    path: str
    stage: str
    reason: str

    @classmethod
    def from_error(cls, err: MediaError) -> Failure:
        return cls(err.path, err.stage, err.reason)

    def to_dict(self) -> dict:
        return asdict(self)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """Squash an exception's message to a single bounded line for records and logs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def printable_line(text: str) -> str:
    """``text`` with every control character written as a backslash escape (``\\n``, ``\\x1b``),
    so one record stays one line whatever a file name holds."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
