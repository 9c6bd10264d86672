"""Scheduled jobs: list, run, serve."""

from __future__ import annotations

import sys
from datetime import UTC
from pathlib import Path

import typer

from embedder.cli.common import app, err, guarded, out, print_json
from embedder.errors import EmbedderError

JOB_FAILED = 4  # exit code of 'jobs run' when a step failed (cron and systemd see a failed job, not a bug)

jobs_app = typer.Typer(
    help="Scheduled jobs from pipelines/jobs.toml: list, run one, or serve them all.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")


def _jobs(ctx, jobs_file):
    from pipelines.scheduler import load_jobs

    settings = ctx.obj.settings()
    return load_jobs(jobs_file or settings.jobs_file)


def _forwarded_flags(ctx) -> list[str]:
    """Global flags given to 'jobs', passed on to each job step."""
    return ctx.obj.forwarded_flags()


@jobs_app.command("list")
@guarded
def jobs_list(
    ctx: typer.Context,
    jobs_file: Path | None = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each job, its cron expression, its next run (UTC) and its steps."""
    from datetime import datetime

    now = datetime.now(UTC)
    rows = [
        {
            "name": j.name,
            "cron": j.cron,
            "next_run": j.next_after(now).isoformat(timespec="minutes"),
            "steps": [" ".join(s) for s in j.steps],
        }
        for j in _jobs(ctx, jobs_file).values()
    ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['name']}  [{r['cron']}]  next {r['next_run']}", highlight=False)
        for step in r["steps"]:
            out.print(f"    embedder {step}", highlight=False)


@jobs_app.command("run")
@guarded
def jobs_run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Job name from the jobs file."),
    jobs_file: Path | None = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
) -> None:
    """Run one job now (its steps in order, stopping at the first failure).

    While 'embedder serve' holds the store, the job is handed to it and runs there (the server
    steps aside for the steps it cannot run itself), so it does not fail on the store's lock.

    Exit codes: 0 every step succeeded; 4 a step failed (the line names it and its reason).
    """
    from embedder.remote import RemoteLibrary, served_by
    from pipelines.scheduler import run_steps

    jobs = _jobs(ctx, jobs_file)
    if name not in jobs:
        raise EmbedderError(f"no job named '{name}'; jobs: {', '.join(jobs) or 'none'}")
    settings = ctx.obj.settings()
    url = served_by(settings)
    if url is not None:
        err.print(f"(through embedder serve at {url})", style="dim", highlight=False)
        with RemoteLibrary(url, settings) as server:
            ok, message = server.run_job(name, [list(step) for step in jobs[name].steps])
    else:
        ok, message = run_steps(jobs[name], _forwarded_flags(ctx))
    out.print(f"job {name}: {'ok' if ok else 'failed'}: {message}", highlight=False)
    if not ok:  # the step and its reason are on the line above; 1 stays "internal error"
        raise typer.Exit(JOB_FAILED)


@jobs_app.command("serve")
@guarded
def jobs_serve(
    ctx: typer.Context,
    jobs_file: Path | None = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
    poll_s: float = typer.Option(20.0, "--poll", help="Seconds between checks for due jobs."),
) -> None:
    """Run due jobs until stopped (SIGINT/SIGTERM); a job never overlaps itself; outcomes are logged."""
    import logging
    import signal
    import threading

    from pipelines.scheduler import Scheduler, run_steps

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    jobs = _jobs(ctx, jobs_file)
    flags = _forwarded_flags(ctx)
    scheduler = Scheduler(jobs, runner=lambda job: run_steps(job, flags))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for name, when in scheduler.next_run.items():
        err.print(f"job {name}: next run {when.isoformat(timespec='minutes')}", highlight=False)
    scheduler.serve(stop, poll_s)
