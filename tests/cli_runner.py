"""Run the real ``embedder`` command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args, env: dict | None = None, code: int | None = 0, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m embedder.cli ARGS`` with ``env`` added to the environment.

    Asserts the exit code (unless ``code`` is None) and that no traceback reached the user.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if code is not None:
        assert proc.returncode == code, (
            f"exit {proc.returncode}, wanted {code}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    assert "Traceback" not in proc.stderr
    return proc
