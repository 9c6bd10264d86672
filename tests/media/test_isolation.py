import time

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
    results = {
        r.key: r
        for r in map_isolated(h.call, [(k, (fn, arg)) for k, fn, arg in tasks], workers=2, timeout_s=3)
    }
    assert time.monotonic() - start < 30  # the hang was killed at its timeout, not waited out
    assert results["a.mp4"].value == "read a.mp4" and results["b.mp4"].value == "read b.mp4"
    crash = results["crash.mp4"].error
    assert (crash.stage, crash.reason) == ("decode", "worker crashed with signal SIGABRT")
    assert results["hang.mp4"].error.reason == "timed out after 3s (worker killed)"
    assert results["refuse.mp4"].error.reason == "refused on purpose"
    assert results["broken.mp4"].error.reason == "KeyError: 'missing'"
    assert results["broken.mp4"].error.path == "broken.mp4"
