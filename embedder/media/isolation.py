"""Run per-file work in child processes, so that a decoder that crashes or hangs costs one record.

Children are forked from a forkserver that has already imported the decoders, so each task starts
in milliseconds. A task that exceeds its timeout is killed; one that dies (a segfault, a C++
``terminate``) is reported with its signal. Up to ``workers`` tasks run at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from embedder.errors import MediaError, one_line

_start_lock = threading.Lock()
_PRELOAD = ["embedder.media.decode", "torch", "torchaudio", "decord", "torchcodec.decoders"]
_context_lock = threading.Lock()
_context: Any = None


def _get_context():
    global _context
    with _context_lock:
        if _context is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context


@contextlib.contextmanager
def _main_not_reimported():
    """Start children without re-running the caller's ``__main__``.

    multiprocessing re-imports the parent's main module in every child, which breaks callers
    that run from stdin, a REPL or an unguarded script. Workers only need the embedder modules
    that hold the task function, so the main module is hidden while a child starts.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved_file = main.__dict__.pop("__file__", None)
    saved_spec = getattr(main, "__spec__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        if saved_file is not None:
            main.__file__ = saved_file
        main.__spec__ = saved_spec


def _child(conn, fn, args) -> None:
    if not os.environ.get("EMBEDDER_DEBUG"):
        # FFmpeg and decord print their own complaints about broken files straight to fd 2;
        # the failure record already says what went wrong, so keep the terminal readable.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    # Decoding in many processes at once: one thread each avoids oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        result = ("ok", fn(*args))
    except MediaError as exc:
        result = ("media-error", (exc.path, exc.stage, exc.reason))
    except BaseException as exc:  # anything else still becomes a record, never a dead run
        result = ("error", f"{type(exc).__name__}: {one_line(exc, 240)}")
    try:
        conn.send(result)
    finally:
        conn.close()


@dataclass
class TaskResult:
    """The outcome of one isolated task: a value, or the error it became."""

    key: Any
    value: Any = None
    error: MediaError | None = None


def run_isolated(fn: Callable, args: tuple, *, path: str, stage: str, timeout_s: float) -> Any:
    """Call ``fn(*args)`` in a child process and return its value.

    Raises:
        MediaError: whatever the child raised, a crash (naming the signal) or a timeout.
    """
    ctx = _get_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    with _start_lock, _main_not_reimported():
        proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            proc.kill()
            raise MediaError(path, stage, f"timed out after {timeout_s:g}s (worker killed)")
        try:
            status, payload = parent.recv()
        except EOFError:
            proc.join(5)
            code = proc.exitcode
            if code is not None and code < 0:
                name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
                raise MediaError(path, stage, f"worker crashed with signal {name}") from None
            raise MediaError(path, stage, f"worker died (exit code {code})") from None
    finally:
        parent.close()
        proc.join(1)
        if proc.is_alive():
            proc.kill()
            proc.join(1)
    if status == "ok":
        return payload
    if status == "media-error":
        raise MediaError(*payload)
    raise MediaError(path, stage, payload)


def map_isolated(
    fn: Callable,
    tasks: Iterable[tuple[Any, tuple]],
    *,
    workers: int,
    timeout_s: float,
    stage: str = "decode",
) -> Iterator[TaskResult]:
    """Run ``fn(*args)`` for each ``(key, args)`` in isolated processes; yield results as they finish.

    ``key`` is usually the file path; it names the file in error records. At most ``2 * workers``
    results wait for the consumer, so a slow consumer (the encoder) bounds memory instead of
    letting decoded frames pile up.
    """
    workers = max(1, workers)

    def one(key, args):
        try:
            return TaskResult(key, value=run_isolated(fn, args, path=str(key), stage=stage, timeout_s=timeout_s))
        except MediaError as exc:
            return TaskResult(key, error=exc)

    pending: set = set()
    task_iter = iter(tasks)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            while len(pending) < 2 * workers:
                nxt = next(task_iter, None)
                if nxt is None:
                    break
                pending.add(pool.submit(one, *nxt))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
