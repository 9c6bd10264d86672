import os
import time

from embedder.media import isolation
from embedder.media.isolation import map_isolated
from tests.media import workers_helpers as h


def test_crash_hang_and_errors_become_records_and_the_rest_finish():
    tasks = [
        ("a.mp4", h.echo, "a.mp4"),
        ("crash.mp4", h.crash, "crash.mp4"),
        ("hang.mp4", h.hang, "hang.mp4"),
        ("refuse.mp4", h.refuse, "refuse.mp4"),
        ("broken.mp4", h.broken, "broken.mp4"),
        ("b.mp4", h.echo, "b.mp4"),
    ]

    start = time.monotonic()
    results = {r.key: r for r in map_isolated(h.call, [(k, (fn, arg)) for k, fn, arg in tasks], workers=2, timeout_s=3)}
    assert time.monotonic() - start < 30  # the hang was killed at its timeout, not waited out
    assert results["a.mp4"].value == "read a.mp4" and results["b.mp4"].value == "read b.mp4"
    crash = results["crash.mp4"].error
    assert (crash.stage, crash.reason) == ("decode", "worker crashed with signal SIGABRT")
    assert results["hang.mp4"].error.reason == "timed out after 3s (worker killed)"
    assert results["refuse.mp4"].error.reason == "refused on purpose"
    assert results["broken.mp4"].error.reason == "KeyError: 'missing'"
    assert results["broken.mp4"].error.path == "broken.mp4"


def test_workers_are_reused_replaced_after_a_crash_and_retired(monkeypatch):
    tasks = [(f"{i}.mp4", (h.pid, f"{i}.mp4")) for i in range(4)]
    tasks[2] = ("crash.mp4", (h.crash, "crash.mp4"))
    results = list(map_isolated(h.call, tasks, workers=1, timeout_s=10))
    pids = [r.value for r in results]
    assert [r.key for r in results] == ["0.mp4", "1.mp4", "crash.mp4", "3.mp4"]
    assert pids[0] == pids[1] != os.getpid()  # one child ran both files
    assert results[2].error.reason == "worker crashed with signal SIGABRT"
    assert pids[3] not in (pids[0], None)  # a new child took over after the crash

    monkeypatch.setattr(isolation, "TASKS_PER_WORKER", 2)
    retired = [r.value for r in map_isolated(h.call, [(i, (h.pid, i)) for i in range(4)], workers=1, timeout_s=10)]
    assert retired[0] == retired[1] != retired[2] == retired[3]


def test_a_runner_keeps_its_child_between_calls_and_replaces_it_after_a_crash(monkeypatch):
    runner = isolation.IsolatedRunner()

    def call(fn, arg):
        try:
            return runner.run(h.call, (fn, arg), path=arg, stage="decode", timeout_s=10)
        except isolation.MediaError as exc:
            return exc

    try:
        first, second = call(h.pid, "a.mp4"), call(h.pid, "b.mp4")
        assert first == second != os.getpid()  # one child ran both files
        refused = call(h.refuse, "refuse.mp4")
        assert refused.reason == "refused on purpose" and call(h.pid, "c.mp4") == first  # an error is not a crash
        crashed = call(h.crash, "crash.mp4")
        assert (crashed.path, crashed.reason) == ("crash.mp4", "worker crashed with signal SIGABRT")
        after = call(h.pid, "d.mp4")
        assert after not in (first, os.getpid())
        monkeypatch.setattr(isolation, "TASKS_PER_WORKER", 2)
        assert call(h.pid, "e.mp4") == after and call(h.pid, "f.mp4") != after  # retired after its 2nd task
    finally:
        runner.close()


def _blocks() -> set[str]:
    return {p for p in os.listdir("/dev/shm") if p.startswith("psm_")}


def test_large_results_cross_in_shared_memory_and_leave_nothing_behind():
    import numpy as np

    before = _blocks()
    results = list(map_isolated(h.call, [(i, (h.frames, f"{i}.mp4")) for i in range(3)], workers=2, timeout_s=30))
    expected = h.frames("x")
    for r in results:
        assert r.error is None and r.value["path"] == f"{r.key}.mp4"
        assert np.array_equal(r.value["frames"], expected["frames"]) and r.value["frames"].flags.writeable
        assert np.array_equal(r.value["windows"][0], expected["windows"][0])
    assert (
        isolation.run_isolated(h.frames, ("one.mp4",), path="one.mp4", stage="decode", timeout_s=30)["path"]
        == "one.mp4"
    )
    assert _blocks() == before  # every block was unlinked by the parent


def test_the_pipe_is_used_when_shared_memory_is_short(monkeypatch):
    import errno

    import numpy as np

    value = h.frames("a.mp4")
    before = _blocks()
    shared = isolation._pack(("ok", value))
    assert shared[0] == "shared" and len(_blocks()) == len(before) + 1
    assert isolation._unpack(shared)[1]["path"] == "a.mp4" and _blocks() == before

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(isolation.os, "posix_fallocate", full)
    message = isolation._pack(("ok", value))
    back = isolation._unpack(message)[1]
    assert message[0] == "pipe" and back["path"] == "a.mp4" and np.array_equal(back["frames"], value["frames"])
    assert back["frames"].flags.writeable  # as arrays that came through the pipe always were
    assert _blocks() == before
    assert isolation._pack(("ok", "small"))[0] == "pipe"


KILLED_BEFORE_UNPACK = """
import os, signal, sys
from embedder.media import isolation
from tests.media import workers_helpers as h

def killed(message):
    print(message[0], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the moment after the worker sent, before the block is mapped

isolation._unpack = killed
list(isolation.map_isolated(h.call, [("a.mp4", (h.frames, "a.mp4"))], workers=1, timeout_s=30))
"""


def test_a_run_killed_before_it_maps_a_block_leaves_nothing_in_shared_memory():
    import subprocess
    import sys
    from pathlib import Path

    before = _blocks()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_UNPACK],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == -9 and proc.stdout.strip() == "shared"
    deadline = time.monotonic() + 20  # the resource tracker cleans up once the run's processes are gone
    while _blocks() != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _blocks() == before
