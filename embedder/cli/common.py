"""Shared pieces of the command line: the typer app, output, error handling, progress."""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text

from embedder.errors import EmbedderError, printable_line

if TYPE_CHECKING:
    from embedder.api import LibraryAPI

app = typer.Typer(
    name="embedder",
    help="Turn a library of video and audio files into searchable, recommendable vectors in Qdrant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class _Console(Console):
    """A console whose text never carries a control character: a newline or an escape sequence in a
    file name is printed as ``\\n`` / ``\\x1b``, so each record stays one line and the terminal is safe."""

    def print(self, *objects, **kwargs) -> None:
        super().print(*(printable_line(o) if isinstance(o, str) else o for o in objects), **kwargs)


# soft_wrap: a line longer than the terminal (or than 80 columns, when redirected to a log) is
# left whole, never split mid-message or mid-path.
out = _Console(soft_wrap=True)
err = _Console(stderr=True, soft_wrap=True)
# Redirected, rich would fit a table to 80 columns by wrapping its cells, splitting a path or a
# matched phrase over lines of a log; there, tables take the width they need (COLUMNS still wins).
REDIRECTED_WIDTH = 1000
for _console in (out, err):
    if not _console.is_terminal and "COLUMNS" not in os.environ:
        _console.width = REDIRECTED_WIDTH


class _Context:
    """Global flags, turned into settings on first use (so --help never builds them)."""

    def __init__(self, config: Path | None, overrides: dict[str, Any]):
        self.config = config
        self.overrides = overrides

    def settings(self, reading: bool = False, **more: Any):
        """The settings; ``reading``: for a command that only reads, which refuses a store that is
        not there instead of creating one (see :func:`embedder.store.factory.require_store`)."""
        from embedder.settings import load_settings

        settings = load_settings(self.config, **{**self.overrides, **more})
        if reading:
            from embedder.store.factory import require_store

            require_store(settings)
        return settings

    def forwarded_flags(self) -> list[str]:
        """These global flags as a command line, for another ``embedder`` process."""
        args = ["--config", str(self.config)] if self.config else []
        for key, value in self.overrides.items():
            if value is not None:
                args += [f"--{key}", str(value)]
        return args

    def _warm(self, settings) -> str | None:
        """The URL of a warm query process started now for this store (:mod:`embedder.warm`), or
        ``None`` where none is wanted or it did not come up."""
        from embedder import warm
        from embedder.store.factory import require_store

        if not warm.wanted(settings):
            return None
        require_store(settings)  # a read-only command never starts anything on a store that is not there
        return warm.start(settings, self.forwarded_flags(), say=lambda line: err.print(line, style="dim"))

    def library(self, remote: bool = False, reading: bool = False, **more: Any) -> LibraryAPI:
        """The :class:`embedder.library.Library` these options name (close it, or use ``with``).

        With ``remote``, a running ``embedder serve`` for the same store answers instead
        (:class:`embedder.remote.RemoteLibrary`), so the command works while it holds the store.
        """
        from embedder.library import Library

        settings = self.settings(**more)
        if remote:
            from embedder.remote import RemoteLibrary, serve_marker, served_by

            url = served_by(settings)
            if url is None and reading:
                url = self._warm(settings)
            elif url is not None and not reading and (serve_marker(settings) or {}).get("warm"):
                url = None  # a writer does not hand its work to a warm query process: it asks it to exit
            if url is not None:
                err.print(f"(through embedder serve at {url})", style="dim", highlight=False)
                return RemoteLibrary(url, settings)
        if reading:
            from embedder.store.factory import require_store

            require_store(settings)
        return Library.open(settings)


def guarded(fn: Callable) -> Callable:
    """Turn errors into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except EmbedderError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:  # every reader of the log: one line, and what to do
            if "full" in str(exc):
                fail(
                    f"the disk holding the interaction log is full ({exc}); free some space and run the command "
                    "again: nothing stored is lost"
                )
            fail(
                f"the interaction log is damaged ({exc}); run 'embedder check', then 'embedder snapshot restore' "
                "to go back to a snapshot"
            )
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if is_disk_full(exc):  # the engine's, a thumbnail's or a snapshot's write: not a bug
                where = getattr(exc, "filename", None)
                fail(
                    f"the disk is full (no space left on the device{f' for {where}' if where else ''}); free some "
                    "space and run the command again: nothing stored is lost ('embedder check' verifies it)"
                )
            if os.environ.get("EMBEDDER_DEBUG"):  # a bug: say so in one line, keep the traceback for debugging
                raise
            err.print(
                Text.assemble(
                    ("internal error:", "red"),
                    f" {type(exc).__name__}: {printable_line(str(exc))} (set EMBEDDER_DEBUG=1 for the traceback)",
                ),
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found the disk full (``ENOSPC``, or the engine's message for it)."""
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc)


def fail(message: str, code: int = 2):
    """Print ``message`` as the one ``error:`` line (control characters escaped) and exit."""
    err.print(Text.assemble(("error:", "red"), " ", printable_line(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


def plain(text: str | None) -> Text:
    """A table cell or line part printed as it is: no markup read from it, control characters escaped."""
    return Text(printable_line(text or ""))


def short_path(path: str | None) -> str | None:
    """A path relative to the working directory when it is inside it (tables stay readable)."""
    if not path:
        return path
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _global(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML config file (else $EMBEDDER_CONFIG or ./embedder.toml)."
    ),
    store: str | None = typer.Option(
        None, "--store", help="Store directory, or http(s) URL of a Qdrant server (env EMBEDDER_STORE)."
    ),
    collection: str | None = typer.Option(None, "--collection", help="Collection name (env EMBEDDER_COLLECTION)."),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Model preset: default, tiny (random weights, for tests and demos) or bench (default sizes, "
        "random weights: for measuring speed only) (env EMBEDDER_MODELS).",
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (env EMBEDDER_DEVICE)."),
    workers: int | None = typer.Option(None, "--workers", help="Decoder processes (env EMBEDDER_WORKERS)."),
) -> None:
    """Settings precedence: defaults < config file < EMBEDDER_* environment < these flags."""
    ctx.obj = _Context(
        config, {"store": store, "collection": collection, "models": models, "device": device, "workers": workers}
    )


class TerminalProgress:
    """A rich progress bar (files/s, ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, quiet: bool = False, per_item: bool = True):
        self.quiet = quiet
        self.per_item = per_item  # plain mode: a line per file; off for per-batch progress
        self.tty = err.is_terminal
        self.bar = None
        self.task = None
        self.done = 0
        self.total = 0
        self.unit = "files"
        self.last_logged = 0

    def start(self, total: int, label: str, unit: str = "files") -> None:
        self.total, self.done, self.label, self.unit = total, 0, label, unit
        self.last_logged = 0
        if self.quiet or not self.tty:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        class Rate(TextColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                if speed is None:
                    return super().render(task)
                return f"{speed / 1e6:.1f} MB/s" if unit == "bytes" else f"{speed:.2f} {unit}/s"

        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            count,
            Rate(""),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task(label, total=total)

    def advance(self, path: str, status: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            if not self.per_item:  # e.g. the running loss
                self.bar.update(self.task, description=f"{self.label} {path}")
        elif not self.quiet and self.per_item:
            err.print(
                f"[{self.done}/{self.total}] {status}: {path}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def update(self, completed: int, detail: str = "") -> None:
        self.done = completed
        if self.bar is not None:
            self.bar.update(self.task, completed=completed)
        elif not self.quiet and self.total and completed - self.last_logged >= self.total / 10:
            self.last_logged = completed  # plain mode (logs, cron): a line every tenth
            err.print(f"{self.label}: {100 * completed / self.total:.0f}% {detail}", highlight=False, markup=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(message, highlight=False, markup=False, soft_wrap=True)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
