"""What the benchmark scripts share: running the ``embedder`` CLI of this checkout, the machine
they ran on, and writing a run's results (JSON beside a Markdown table) and printing the table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDDER = str(ROOT / ".venv" / "bin" / "embedder")


def cli(env: dict, *args: str) -> str:
    """``embedder ARGS`` with ``env``; its stdout, or the run stops with the command's stderr."""
    done = subprocess.run([EMBEDDER, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"embedder {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def command() -> str:
    return " ".join(sys.argv)


def run_record(started: float, **fields) -> dict:
    """A run's results: the machine, the command, ``fields`` and the minutes since ``started``
    (a ``time.perf_counter()`` reading)."""
    minutes = round((time.perf_counter() - started) / 60, 1)
    return {"machine": machine(), "command": command(), **fields, "minutes": minutes}


def save(results: dict, out: Path | None, markdown: Callable[[dict], str], indent: int = 2) -> None:
    """Write ``results`` to ``out`` (JSON) and its table beside it (``.md``), then print the table."""
    text = markdown(results)
    if out:
        out.write_text(json.dumps(results, indent=indent) + "\n")
        out.with_suffix(".md").write_text(text + "\n")
    print(text)
