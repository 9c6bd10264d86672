"""``embedder serve``: the HTTP API (see :mod:`embedder.service`)."""

from __future__ import annotations

import typer

from embedder.cli.common import app, err, guarded


@app.command()
@guarded
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
    max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", min=0.1, help="Largest file POST /search/file accepts."),
    preload: bool = typer.Option(True, "--preload/--no-preload", help="Load the models at startup (/ready is 503 until then)."),
) -> None:
    """Serve search, recommendations, events and ingest jobs over HTTP with the models loaded once.

    The JSON API is described at /openapi.json (/docs renders it, with assets from a CDN); /health, /ready and
    /metrics (Prometheus) are for orchestration. Every answer is the --json of the CLI command it
    mirrors. Stop with Ctrl-C.
    """
    from embedder.service import serve as run

    library = ctx.obj.library()
    err.print(f"embedder serve: {library.settings.store} (collection {library.settings.collection}) "
              f"on http://{host}:{port}", highlight=False)
    try:
        run(library, host=host, port=port, max_upload_mb=max_upload_mb, preload=preload)
    finally:
        library.close()
