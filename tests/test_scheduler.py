"""The job scheduler, driven by a fake clock."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from embedder.errors import SettingsError
from pipelines.scheduler import Job, Scheduler, load_jobs, run_steps


class FakeClock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


START = datetime(2026, 1, 5, 2, 59, tzinfo=UTC)  # a Monday, one minute before 03:00


def test_due_jobs_run_on_schedule_and_never_overlap():
    clock = FakeClock(START)
    release = threading.Event()
    calls = []

    def runner(job):
        calls.append((job.name, clock()))
        if job.name == "slow":
            release.wait(10)  # still running when it is due again
        return True, "done"

    jobs = {
        "nightly": Job("nightly", "0 3 * * *", (("reembed",),)),
        "slow": Job("slow", "*/1 * * * *", (("ingest", "x"),)),
    }
    s = Scheduler(jobs, runner=runner, clock=clock)
    assert s.tick() == []  # 02:59: nothing due yet
    clock.advance(minutes=1)
    assert sorted(s.tick()) == ["nightly", "slow"]
    clock.advance(minutes=1)
    assert s.tick() == []  # slow is due again but still running: skipped, not doubled
    assert s.outcomes[-1]["status"] == "skipped" and s.outcomes[-1]["job"] == "slow"
    release.set()
    s.wait_idle()
    clock.advance(minutes=1)
    assert s.tick() == ["slow"]
    s.wait_idle()
    assert [c[0] for c in calls].count("nightly") == 1
    assert s.next_run["nightly"] == datetime(2026, 1, 6, 3, 0, tzinfo=UTC)


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(caplog):
    clock = FakeClock(START)

    def runner(job):
        if job.name == "broken":
            raise RuntimeError("disk on fire")
        return False, "step 'ingest x' failed: error: x not found"

    s = Scheduler(
        {"broken": Job("broken", "0 3 * * *", (("a",),)), "failing": Job("failing", "0 3 * * *", (("b",),))},
        runner=runner,
        clock=clock,
    )
    clock.advance(minutes=1)
    with caplog.at_level("WARNING", logger="embedder.jobs"):
        s.tick()
        s.wait_idle()
    by_job = {o["job"]: o for o in s.outcomes}
    assert by_job["broken"]["status"] == "failed" and by_job["broken"]["message"] == "RuntimeError: disk on fire"
    assert by_job["failing"]["message"].startswith("step 'ingest x' failed")
    assert "job broken failed: RuntimeError: disk on fire" in caplog.text
    clock.advance(days=1)
    assert sorted(s.tick()) == ["broken", "failing"]  # both still scheduled the next day
    s.wait_idle()


def test_serve_stops_on_request():
    s = Scheduler({"j": Job("j", "0 3 * * *", (("status",),))}, runner=lambda job: (True, "ok"), clock=FakeClock(START))
    stop = threading.Event()
    thread = threading.Thread(target=s.serve, args=(stop, 0.01))
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_jobs_file_validation(tmp_path):
    f = tmp_path / "jobs.toml"
    f.write_text('[jobs.bad]\ncron = "61 * * * *"\nsteps = [["reembed"]]\n')
    with pytest.raises(SettingsError, match="job 'bad' has an invalid cron expression '61 \\* \\* \\* \\*'"):
        load_jobs(f)
    f.write_text('[jobs.empty]\ncron = "0 * * * *"\nsteps = []\n')
    with pytest.raises(SettingsError, match="job 'empty' needs steps"):
        load_jobs(f)


def test_shipped_jobs_file_is_valid():
    from pathlib import Path

    import typer

    from embedder.cli import app

    jobs = load_jobs(Path(__file__).resolve().parents[1] / "pipelines" / "jobs.toml")
    assert set(jobs) == {"nightly-reembed", "hourly-ingest", "weekly-retrain", "daily-retention", "nightly-snapshot"}
    assert jobs["weekly-retrain"].steps[-1] == ("reembed",)
    root = typer.main.get_command(app)
    for job in jobs.values():  # every step names a real command, down to its leaf
        for step in job.steps:
            command, rest = root, list(step)
            while hasattr(command, "commands"):
                assert rest and rest[0] in command.commands, (job.name, step)
                command = command.commands[rest.pop(0)]
            own = {opt for param in command.params for opt in param.opts}
            assert all(arg in own for arg in rest if arg.startswith("--")), (job.name, step)


def test_run_steps_runs_real_commands_and_stops_at_the_first_failure(tmp_path):
    flags = ["--store", str(tmp_path / "store")]
    ok, message = run_steps(Job("j", "0 3 * * *", (("snapshot", "list", "--json"),)), flags)
    assert (ok, message) == (True, "1 step(s) done")
    ok, message = run_steps(Job("j", "0 3 * * *", (("status", "--json"),)), flags)  # a reader: no store, no run
    assert not ok and "no store at" in message
    ok, message = run_steps(Job("j", "0 3 * * *", (("ingest", str(tmp_path / "missing")), ("status",))), flags)
    assert not ok
    assert (
        message
        == f"step 'ingest {tmp_path / 'missing'}' failed: error: nothing to ingest: {tmp_path / 'missing'} not found"
    )


def test_a_failed_job_exits_4_with_its_step_and_reason_never_1(tmp_path):
    from tests.cli_runner import run_cli

    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[jobs.broken]\ncron = "0 3 * * *"\nsteps = [["ingest", "{tmp_path / "missing"}"]]\n')
    proc = run_cli("jobs", "run", "broken", "--jobs", jobs, "--store", tmp_path / "store", code=4)
    assert proc.stdout.strip() == (
        f"job broken: failed: step 'ingest {tmp_path / 'missing'}' failed: error: nothing "
        f"to ingest: {tmp_path / 'missing'} not found"
    )
