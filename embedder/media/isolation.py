"""Run per-file work in child processes, so that a decoder that crashes or hangs costs one record.

Children are forked from a forkserver that has already imported the decoders. A task that exceeds
its timeout is killed; one that dies (a segfault, a C++ ``terminate``) is reported with its signal.

:func:`run_isolated` runs one task in a fresh child. :func:`map_isolated` keeps up to ``workers``
children alive and hands each one file after another (:class:`IsolatedRunner` keeps one, for a
caller that gets one file at a time): a fork of a process holding torch costs
~40 ms, as much as decoding a short clip. A child that crashed or was killed is replaced, and
each is retired after :data:`TASKS_PER_WORKER` files, so a decoder that leaks memory cannot grow
for a whole run.

Results cross back through shared memory when they carry more than :data:`HANDOFF_MIN_BYTES` of
array data (a video's frames are megabytes): the pipe then carries only the pickled structure,
and the arrays arrive as views of one shared block, with no copy on this side. When shared
memory is short (a container's small ``/dev/shm``), the pipe is used.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Any

from embedder.errors import MediaError, one_line

_start_lock = threading.Lock()
_PRELOAD = ["embedder.media.decode", "torch", "torchaudio", "decord", "torchcodec.decoders"]
_context_lock = threading.Lock()
_context: Any = None
TASKS_PER_WORKER = 100
HANDOFF_MIN_BYTES = 1 << 20


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


def _prepare_child() -> None:
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


def _call(fn, args) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except MediaError as exc:
        return ("media-error", (exc.path, exc.stage, exc.reason))
    except BaseException as exc:  # anything else still becomes a record, never a dead run
        return ("error", f"{type(exc).__name__}: {one_line(exc, 240)}")


def _pack(result: tuple[str, Any]) -> tuple:
    """The message that carries ``result`` to the parent.

    A value is pickled once (protocol 5, arrays out of band). Its arrays go into one shared block
    when they add up to :data:`HANDOFF_MIN_BYTES` and the block can be reserved; otherwise they
    travel in the pipe beside the pickle. Errors travel as they are.
    """
    status, value = result
    if status != "ok":
        return ("as-is", result)
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:  # not picklable out of band: the pipe's pickler reports it
        return ("as-is", result)
    raws = [b.raw() for b in buffers]
    name = _to_shared(raws) if sum(r.nbytes for r in raws) >= HANDOFF_MIN_BYTES else None
    if name is None:
        return ("pipe", data, [bytearray(r) for r in raws])  # bytearray: the arrays stay writable
    return ("shared", name, data, [r.nbytes for r in raws])


def _to_shared(raws: list[memoryview]) -> str | None:
    """Copy ``raws`` into a new shared block; its name, or ``None`` when shared memory is short."""
    total = sum(r.nbytes for r in raws)
    try:
        block = shared_memory.SharedMemory(create=True, size=total)
    except OSError:
        return None
    try:
        # Reserve the pages now: a full /dev/shm is an error here, not a SIGBUS while copying.
        os.posix_fallocate(block._fd, 0, total)
        offset = 0
        for raw in raws:
            block.buf[offset : offset + raw.nbytes] = raw
            offset += raw.nbytes
    except OSError:
        block.close()
        block.unlink()
        return None
    block.close()
    # The block stays registered with the resource tracker (one process, shared by the parent,
    # the forkserver and every worker) until the parent has mapped it: if either side is killed
    # in between, the tracker removes it when the run's processes are gone.
    return block.name


def _unpack(message: tuple) -> tuple[str, Any]:
    """The ``(status, payload)`` a child sent with :func:`_pack`.

    Arrays in a shared block are not copied: they are views of the block, mapped here and
    unlinked at once, so its memory goes back to the system when the last array using it is freed.
    """
    kind = message[0]
    if kind == "as-is":
        return message[1]
    if kind == "pipe":
        _, data, buffers = message
        return ("ok", pickle.loads(data, buffers=buffers))
    import mmap
    from _posixshmem import shm_open, shm_unlink  # what shared_memory uses, without its tracker

    _, name, data, sizes = message
    path = name if name.startswith("/") else "/" + name
    fd = shm_open(path, os.O_RDWR, mode=0o600)
    try:
        shm_unlink(path)
        resource_tracker.unregister(path, "shared_memory")  # the worker registered it
        mapping = mmap.mmap(fd, sum(sizes))
    finally:
        os.close(fd)
    view, buffers, offset = memoryview(mapping), [], 0
    for size in sizes:
        buffers.append(view[offset : offset + size])
        offset += size
    return ("ok", pickle.loads(data, buffers=buffers))


def _serve(conn) -> None:
    """A child: run ``(fn, args)`` tasks from the pipe until told to stop (``None``)."""
    _prepare_child()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(_pack(_call(*task)))


def _death(proc, path: str, stage: str) -> MediaError:
    """The record for a child that closed its pipe without answering: its signal or exit code."""
    proc.join(5)
    code = proc.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return MediaError(path, stage, f"worker crashed with signal {name}")
    return MediaError(path, stage, f"worker died (exit code {code})")


def _result(message: tuple, path: str, stage: str) -> Any:
    """The task's value, or the MediaError it became."""
    try:
        status, payload = _unpack(message)
    except Exception as exc:  # the block vanished or the value cannot be rebuilt: one record, not a dead run
        raise MediaError(path, stage, f"cannot read the worker's result: {one_line(exc, 200)}") from None
    if status == "ok":
        return payload
    if status == "media-error":
        raise MediaError(*payload)
    raise MediaError(path, stage, payload)


class _Worker:
    """A child process and its pipe: one task (:func:`run_isolated`) or many (:func:`map_isolated`)."""

    def __init__(self, ctx):
        self.conn, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        with _start_lock, _main_not_reimported():
            proc.start()
        self.proc = proc
        child.close()
        self.tasks = 0

    def run(self, fn: Callable, args: tuple, path: str, stage: str, timeout_s: float) -> Any:
        """Run one task; a crash or timeout raises MediaError and leaves this worker dead."""
        self.tasks += 1
        try:
            self.conn.send((fn, args))
            answered = self.conn.poll(timeout_s)
        except (BrokenPipeError, EOFError, OSError):
            self.stop()
            raise _death(self.proc, path, stage) from None
        if not answered:
            self.proc.kill()
            self.stop()
            raise MediaError(path, stage, f"timed out after {timeout_s:g}s (worker killed)")
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.stop()
            raise _death(self.proc, path, stage) from None
        return _result(message, path, stage)

    @property
    def alive(self) -> bool:
        return self.proc.is_alive() and not self.conn.closed

    @property
    def reusable(self) -> bool:
        """Alive after its last task, and not yet due to retire (:data:`TASKS_PER_WORKER`)."""
        return self.alive and self.tasks < TASKS_PER_WORKER

    def stop(self) -> None:
        """Ask the child to finish; kill it if it does not (or is stuck in a task)."""
        if not self.conn.closed:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
        self.proc.join(0.5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)
        self.conn.close()


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
    worker = _Worker(_get_context())
    try:
        return worker.run(fn, args, path, stage, timeout_s)
    finally:
        worker.stop()


class IsolatedRunner:
    """Runs tasks one at a time in a child process it keeps from call to call, for a long-lived
    caller that gets one file at a time (a Ray worker process). The child is replaced after a
    crash or a timeout, and retired after :data:`TASKS_PER_WORKER` tasks, as in :func:`map_isolated`."""

    def __init__(self):
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable, args: tuple, *, path: str, stage: str, timeout_s: float) -> Any:
        """Like :func:`run_isolated`, without starting a process when the last one can go on."""
        with self._lock:
            if self._worker is None:
                self._worker = _Worker(_get_context())
            worker = self._worker
            try:
                return worker.run(fn, args, path, stage, timeout_s)
            finally:
                if not worker.reusable:
                    worker.stop()
                    self._worker = None

    def close(self) -> None:
        """Stop the child, if one is running."""
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None


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
    letting decoded frames pile up. The child processes are reused from task to task (see the
    module's docstring) and stopped when the iteration ends or is abandoned.
    """
    workers = max(1, workers)
    ctx = _get_context()
    idle: queue.SimpleQueue = queue.SimpleQueue()
    started: list[_Worker] = []
    started_lock = threading.Lock()

    def one(key, args):
        try:
            worker = idle.get_nowait()
        except queue.Empty:
            worker = _Worker(ctx)
            with started_lock:
                started.append(worker)
        try:
            return TaskResult(key, value=worker.run(fn, args, str(key), stage, timeout_s))
        except MediaError as exc:
            return TaskResult(key, error=exc)
        finally:
            if worker.reusable:
                idle.put(worker)
            else:
                worker.stop()

    pending: set = set()
    task_iter = iter(tasks)
    try:
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
    finally:
        for worker in started:
            worker.stop()
