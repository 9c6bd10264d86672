"""``embedder serve``: the HTTP API (see :mod:`embedder.service`)."""

from __future__ import annotations

from pathlib import Path

import typer

from embedder.cli.common import app, err, guarded
from embedder.errors import EmbedderError


@app.command()
@guarded
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
    max_upload_mb: float = typer.Option(
        200.0, "--max-upload-mb", min=0.1, help="Largest file POST /search/file accepts."
    ),
    preload: bool = typer.Option(
        True, "--preload/--no-preload", help="Load the models at startup (/ready is 503 until then)."
    ),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Let pages from this origin call the API (repeatable; none by default)."
    ),
    max_body_kb: float = typer.Option(
        1024.0, "--max-body-kb", min=1, help="Largest request body other than an upload."
    ),
    int8_queries: bool | None = typer.Option(
        None,
        "--int8-queries/--fp32-queries",
        help="Encode query texts with int8 copies of the text towers (CPU; about half the cost, ~0.001 "
        "cosine from fp32); default: the query_int8 setting.",
    ),
    schedule: bool = typer.Option(
        False,
        "--schedule",
        help="Also run the scheduled jobs (--jobs, default: the jobs_file setting) inside the server, so they "
        "do not fail on the store it holds; GET /schedule shows them.",
    ),
    jobs_file: Path | None = typer.Option(None, "--jobs", help="Jobs file for --schedule."),
    warm_idle: float = typer.Option(
        0.0, "--warm-idle", min=0, hidden=True, help="Run as a warm query process (embedder.warm): exit this idle."
    ),
) -> None:
    """Serve search, recommendations, events and ingest jobs over HTTP with the models loaded once.

    The web page is at / (search, drop a file for "more like this", a user's recommendations). The
    JSON API is described at /openapi.json (/docs renders it, offline: the assets ship in a package); /health,
    /ready and /metrics (Prometheus) are for orchestration. Every answer is the --json of the CLI
    command it mirrors; every error is {"error": message}. While it runs, 'embedder search',
    'recommend', 'similar', 'status', 'ingest' and 'jobs run' on the same store go through it;
    with --schedule it runs the scheduled jobs itself.

    Binding beyond loopback needs EMBEDDER_SERVE_API_KEY; every request then carries it
    (Authorization: Bearer KEY). Stop with Ctrl-C.
    """
    from embedder.cli.jobs import _forwarded_flags
    from embedder.service import serve as run
    from pipelines.scheduler import load_jobs

    if jobs_file is not None and not schedule:
        raise EmbedderError("--jobs names the jobs for --schedule; give --schedule too")
    library = ctx.obj.library(**({} if int8_queries is None else {"query_int8": int8_queries}))
    jobs = load_jobs(jobs_file or library.settings.jobs_file) if schedule else None
    err.print(
        f"embedder serve: {library.settings.store} (collection {library.settings.collection}) on http://{host}:{port}",
        highlight=False,
    )
    try:
        run(
            library,
            host=host,
            port=port,
            max_upload_mb=max_upload_mb,
            preload=preload,
            cors_origins=cors_origin,
            max_body_kb=max_body_kb,
            job_flags=_forwarded_flags(ctx),
            schedule=jobs,
            warm_idle_s=warm_idle,
        )
    finally:
        library.close()
