"""Scheduled jobs beside 'embedder serve' on the embedded store it holds: 'jobs run' hands the job
to the server, which runs the steps it has a library call for itself (ingest, reembed, the
trainings, prune) and steps aside (503 for requests that need the store, meanwhile) for the
others; 'serve --schedule' runs them on their schedule."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from embedder.service import create_app
from embedder.service.scheduled import in_server
from embedder.snapshots import list_snapshots
from embedder.store.edge import SERVE_FILE
from pipelines.scheduler import Job
from tests.cli_runner import run_cli


def _jobs_file(tmp_path, steps: dict[str, list[list[str]]]):
    path = tmp_path / "jobs.toml"
    lines = []
    for name, job_steps in steps.items():
        lines += [f"[jobs.{name}]", 'cron = "0 3 * * *"', f"steps = {json.dumps(job_steps)}", ""]
    path.write_text("\n".join(lines))
    return path


def test_jobs_run_hands_the_job_to_the_server_which_runs_every_step(served, tmp_path):
    client, library, folder, ids = served
    settings = library.settings
    # What 'embedder serve' writes, so that other commands find it (the fixture serves in-process).
    marker = os.path.join(settings.store, SERVE_FILE)
    with open(marker, "w") as f:
        json.dump({"url": str(client.base_url).rstrip("/"), "pid": os.getpid(), "collection": settings.collection}, f)
    env = {"EMBEDDER_STORE": settings.store, "EMBEDDER_MODELS": "tiny", "EMBEDDER_WORKERS": "1"}
    jobs = _jobs_file(
        tmp_path,
        {
            "nightly": [["snapshot", "create", "--label", "handed"], ["interactions", "prune", "--older-than", "365"]],
            "rebuild": [["reembed"], ["ingest", str(folder)]],
            "broken": [["interactions", "train", "--model", "nope"]],
        },
    )
    done = run_cli("jobs", "run", "nightly", "--jobs", str(jobs), env=env)
    assert "through embedder serve" in done.stderr and "job nightly: ok: 2 step(s) done" in done.stdout
    assert [s["name"].endswith("-handed") for s in list_snapshots(settings)] == [True]
    # The server took its store back: it answers from it, with what the step wrote.
    assert client.get("/search", params={"q": "tone", "mode": "dense"}).status_code == 200
    assert client.get("/ready").status_code == 200
    rebuilt = run_cli("jobs", "run", "rebuild", "--jobs", str(jobs), env=env)
    assert "job rebuild: ok: 2 step(s) done" in rebuilt.stdout
    failed = run_cli("jobs", "run", "broken", "--jobs", str(jobs), env=env, code=4)
    assert "step 'interactions train --model nope' failed:" in failed.stdout and "nope" in failed.stdout
    assert client.get("/status").status_code == 200


def test_requests_that_need_the_store_wait_out_a_step_beside_the_server(tmp_path):
    from embedder import Library
    from embedder.settings import load_settings

    library = Library.open(load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu"))
    try:
        app = create_app(library, preload=False)
        svc = app.state.service
        with TestClient(app) as web:
            assert web.get("/status").status_code == 200
            with svc.store_gate.taken("job nightly: snapshot create"):
                busy = web.get("/status")
                assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
                assert "busy with a scheduled job nightly: snapshot create" in busy.json()["error"]
                assert web.get("/ready").status_code == 503  # orchestrators send traffic elsewhere
                assert web.get("/health").status_code == 200 and web.get("/schedule").status_code == 200
            assert web.get("/status").status_code == 200
    finally:
        library.close()


def test_serve_schedule_runs_due_jobs_inside_the_server(tmp_path):
    from embedder import Library
    from embedder.settings import load_settings

    settings = load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu")
    library = Library.open(settings)
    try:
        library.media.count()  # the server holds the store, as 'serve' does
        jobs = {"snap": Job("snap", "0 3 * * *", (("snapshot", "create", "--label", "scheduled"),))}
        app = create_app(
            library, preload=False, schedule=jobs, schedule_poll_s=0.1, job_flags=["--store", settings.store]
        )
        svc = app.state.service
        with TestClient(app) as web:
            shown = web.get("/schedule").json()
            assert shown["scheduled"] and shown["jobs"][0]["name"] == "snap" and shown["outcomes"] == []
            svc.scheduler.next_run["snap"] = datetime.now(UTC) - timedelta(seconds=1)  # due now
            deadline = time.monotonic() + 120
            while not svc.scheduler.outcomes and time.monotonic() < deadline:
                time.sleep(0.2)
            svc.scheduler.wait_idle()
            outcome = web.get("/schedule").json()["outcomes"][-1]
            assert outcome["job"] == "snap" and outcome["status"] == "ok", outcome
            assert [s["name"].endswith("-scheduled") for s in list_snapshots(settings)] == [True]
            assert web.get("/status").status_code == 200
        svc.schedule_stop.set()
    finally:
        library.close()


def test_which_steps_the_server_runs_itself():
    assert in_server(["ingest", "/media", "/more"]) == ("ingest", {}, ["/media", "/more"])
    assert in_server(["reembed"]) == ("reembed", {}, [])
    assert in_server(["interactions", "train", "--auto"]) == ("interactions train", {"--auto": True}, [])
    assert in_server(["interactions", "train", "--model", "ease", "--seed", "3"]) == (
        "interactions train",
        {"--model": "ease", "--seed": "3"},
        [],
    )
    assert in_server(["interactions", "prune", "--older-than", "365"]) == (
        "interactions prune",
        {"--older-than": "365"},
        [],
    )
    assert in_server(["train", "--config", "t.toml"]) == ("train", {"--config": "t.toml"}, [])
    # Anything else runs as written, in its own process: other options, a missing value, other commands.
    assert in_server(["ingest", "/media", "--retry-failed"]) is None
    assert in_server(["ingest"]) is None and in_server(["reembed", "--dry-run"]) is None
    assert in_server(["interactions", "train", "--factors", "8"]) is None
    assert in_server(["train", "--config"]) is None and in_server(["train", "extra"]) is None
    assert in_server(["snapshot", "create"]) is None and in_server(["interactions", "import", "f.csv"]) is None


def test_training_steps_run_in_the_server_which_goes_on_answering(served, tmp_path, caplog):
    """A retraining job through the server's own Library: the models land in the store it serves,
    and it never steps aside (no 503 while the job runs)."""
    from embedder.service.scheduled import ServerJobs, StoreGate

    client, library, folder, ids = served
    names = sorted(ids)
    # u0 had the first two files; u2 had the third with the first, so item-to-item offers u0 the third.
    events = [(f"u{i}", ids[names[i % 3]], 1.0) for i in range(6)]
    library.add_events(events + [("u0", ids[names[1]], 1.0), ("u2", ids[names[0]], 1.0)])
    gate = StoreGate()
    jobs = ServerJobs(library, gate, flags=[])
    job = Job(
        "weekly",
        "0 4 * * 0",
        (
            ("interactions", "train", "--model", "ease"),
            ("interactions", "train"),
            ("interactions", "prune", "--older-than", "1"),
        ),
    )
    with caplog.at_level("INFO", logger="embedder.serve"):
        assert jobs.run(job) == (True, "3 step(s) done")
    assert gate.held_by is None
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job weekly")]
    assert len(steps) == 3 and all(m.endswith("in the server") for m in steps), steps
    stored = library.media.retrieve([ids[names[0]]], with_vectors=True)[0]
    assert stored.payload["cf_model"] and len(stored.vectors["cf"]) == library.settings.cf_factors
    assert library.log.trained_through() == max(e.seq for e in library.log.all())
    answer = client.get("/users/u0/recommendations", params={"strategy": "ease"})
    assert answer.status_code == 200 and [r["id"] for r in answer.json()["items"]] == [ids[names[2]]]
    failed = jobs.run(Job("bad", "0 4 * * 0", (("interactions", "train", "--seed", "x"),)))
    assert failed == (False, "step 'interactions train --seed x' failed: --seed must be a number, not 'x'")
