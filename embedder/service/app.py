"""The application: middleware (key, body limit, metrics), JSON errors, the routers; and
:func:`serve`, which runs it."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from embedder.errors import EmbedderError
from embedder.service.logs import AccessLogUsers
from embedder.service.routes import ROUTERS
from embedder.service.scheduled import RETRY_AFTER_S
from embedder.service.state import UPLOAD_CHUNK, Service

if TYPE_CHECKING:
    from embedder.library import Library

# Open without a key: probes for orchestration, and the page itself (its API calls carry the key).
PUBLIC_PATHS = {"/health", "/ready", "/", "/ui/app.js", "/ui/style.css"}
# Answered while a scheduled step holds the store (they do not read it): liveness, metrics, the
# page's files, the API docs, and the jobs endpoints themselves.
STORE_FREE_PATHS = {
    "/health",
    "/metrics",
    "/",
    "/ui/app.js",
    "/ui/style.css",
    "/openapi.json",
    "/schedule",
    "/warm/exit",
}
STORE_FREE_PREFIXES = ("/docs", "/redoc", "/jobs")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def create_app(
    library: Library,
    *,
    max_upload_mb: float = 200.0,
    preload: bool = True,
    api_key: str | None = None,
    cors_origins: list[str] | None = None,
    max_body_kb: float = 1024.0,
    job_flags: list[str] | None = None,
    schedule: dict | None = None,
    schedule_poll_s: float = 20.0,
):
    """The FastAPI application serving ``library``.

    Args:
        max_upload_mb: the largest file ``POST /search/file`` accepts.
        preload: load the encoders at startup (``/ready`` answers 503 until they are loaded), so
            the first query does not pay for it.
        api_key: when set, every request but ``/health``, ``/ready`` and the page's own files must
            carry it (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); compared in constant
            time, never logged.
        cors_origins: origins allowed to call the API from a browser (none by default).
        max_body_kb: the largest request body other than an upload.
        job_flags: the global options a scheduled step's own process gets (the store, collection,
            models and config the server runs with; :mod:`embedder.service.scheduled`).
        schedule: jobs (name -> :class:`~pipelines.scheduler.Job`) to run on their schedule inside
            the server (``serve --schedule``), checked every ``schedule_poll_s`` seconds.
    """
    # The docs page's Swagger UI and ReDoc assets come from a package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="embedder",
        version=__import__("embedder").__version__,
        description="Search, recommend and ingest an embedder library over HTTP.",
    )
    svc = Service(library, max_upload_mb=max_upload_mb, ready=not preload)
    svc.scheduled.flags = list(job_flags or [])
    app.state.service = svc
    if preload:
        threading.Thread(target=svc.warm, name="embedder-warm", daemon=True).start()
    if schedule:
        _run_schedule(app, svc, schedule, schedule_poll_s)
    _guard(app, svc, api_key, max_upload_mb, max_body_kb)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    _json_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _run_schedule(app, svc: Service, jobs: dict, poll_s: float) -> None:
    """Run ``jobs`` on their schedule in a thread of this server, until ``svc.schedule_stop`` is set
    (when the server stops)."""
    from pipelines.scheduler import Scheduler

    svc.scheduler = Scheduler(jobs, runner=svc.scheduled.run)
    for name, when in svc.scheduler.next_run.items():
        logging.getLogger("embedder.serve").info("job %s: next run %s", name, when.isoformat(timespec="minutes"))
    threading.Thread(
        target=svc.scheduler.serve, args=(svc.schedule_stop, poll_s), name="embedder-schedule", daemon=True
    ).start()


def _remove_own_marker(marker: Path) -> None:
    """Remove the store's serve marker if it is still this process's (a server that took over the
    store, such as a new warm query process, has written its own)."""
    import json

    try:
        mine = json.loads(marker.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        mine = False
    if mine:
        marker.unlink(missing_ok=True)


def _exit_when_idle(svc: Service, server, idle_s: float) -> None:
    """A warm query process stops after ``idle_s`` without a request (an ingest or a scheduled job
    still running keeps it), or at once when asked (``POST /warm/exit``)."""
    svc.warm_process = True
    svc.request_exit = lambda: setattr(server, "should_exit", True)

    def watch() -> None:
        while not server.should_exit:
            time.sleep(min(1.0, idle_s))
            idle = time.monotonic() - svc.last_request
            if idle >= idle_s and not svc.ingesting() and svc.store_gate.held_by is None:
                logging.getLogger("embedder.serve").info("warm query process: %.0f s unused, exiting", idle)
                server.should_exit = True

    threading.Thread(target=watch, name="embedder-warm-idle", daemon=True).start()


def _needs_store(path: str) -> bool:
    return path not in STORE_FREE_PATHS and not path.startswith(STORE_FREE_PREFIXES)


def _guard(app, svc: Service, api_key: str | None, max_upload_mb: float, max_body_kb: float) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Key check, body limit, metrics; runs before routing, so it answers in JSON itself."""
        started = time.perf_counter()
        path = request.url.path
        if api_key and path not in PUBLIC_PATHS:
            # The page's <img> and <video> cannot send headers: it keeps the key in a cookie.
            given = (
                request.headers.get("x-api-key")
                or request.headers.get("authorization", "").removeprefix("Bearer ")
                or unquote(request.cookies.get("embedder_api_key", ""))
            )
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return _error(401, "missing or wrong API key (send Authorization: Bearer KEY or X-API-Key: KEY)")
        length = request.headers.get("content-length")
        limit = max_upload_mb * 1e6 + UPLOAD_CHUNK if path == "/search/file" else max_body_kb * 1e3
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _error(413, f"the request body is over {limit / 1e6:g} MB")
        svc.last_request = time.monotonic()
        gated = _needs_store(path)
        holder = svc.store_gate.enter() if gated else None
        if holder is not None:  # a scheduled step runs beside the server and has the store for now
            response = _error(503, f"the store is busy with a scheduled {holder}; retry in a few seconds")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        try:
            response = await call_next(request)
        finally:
            if gated:
                svc.store_gate.leave()
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        svc.metrics.requests.labels(name, request.method, str(response.status_code)).inc()
        svc.metrics.latency.labels(name).observe(time.perf_counter() - started)
        return response


def _json_errors(app) -> None:
    """Every error is ``{"error": message}`` with its status, never a traceback."""

    @app.exception_handler(EmbedderError)
    async def embedder_error(request: Request, exc: EmbedderError):
        return _error(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()
        )
        return _error(422, problems or "invalid request")

    @app.exception_handler(sqlite3.DatabaseError)
    async def log_error(request: Request, exc: sqlite3.DatabaseError):
        return _error(
            503,
            f"the interaction log is damaged or full ({exc}); run 'embedder check' on the server, "
            "then 'embedder snapshot restore' if it finds damage",
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {str(exc)[:300]}")


def serve(library: Library, host: str = "127.0.0.1", port: int = 8080, warm_idle_s: float = 0.0, **kwargs) -> None:
    """Run the service until interrupted (uvicorn, one process: the models are loaded once).

    ``warm_idle_s`` > 0: a warm query process (:mod:`embedder.warm`) that exits after that long
    without a request, or when a writer asks (``POST /warm/exit``).

    Raises:
        EmbedderError: ``host`` is not loopback and no API key is set.
    """
    import json

    import uvicorn

    from embedder.store.edge import SERVE_FILE

    api_key = library.settings.serve_key
    if not is_loopback(host) and api_key is None:
        raise EmbedderError(
            f"binding to {host} opens the API to other machines: set EMBEDDER_SERVE_API_KEY "
            "(clients send it as 'Authorization: Bearer KEY'), or keep the default 127.0.0.1"
        )

    # Other processes that find the embedded store held say where the server is (one writer, many callers).
    marker = None if library.settings.is_server else Path(library.settings.store).expanduser() / SERVE_FILE
    if marker is not None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        marker.parent.mkdir(parents=True, exist_ok=True)
        found = {"url": f"http://{shown}:{port}", "pid": os.getpid(), "collection": library.settings.collection}
        warm = {"warm": True, "fingerprint": library.settings.fingerprint()} if warm_idle_s > 0 else {"warm": False}
        marker.write_text(json.dumps({**found, **warm}))
    app = None
    try:
        app = create_app(library, api_key=api_key, **kwargs)
        config = uvicorn.Config(app, host=host, port=port, log_level="info")
        logging.getLogger("uvicorn.access").addFilter(AccessLogUsers(library.settings))  # after Config set logging up
        server = uvicorn.Server(config)
        if warm_idle_s > 0:
            _exit_when_idle(app.state.service, server, warm_idle_s)
        try:
            server.run()
        except KeyboardInterrupt:  # Ctrl-C is how a server is stopped (uvicorn re-raises it after shutting down)
            pass
    finally:
        if app is not None:  # scheduled jobs stop with the server (one still running is waited for)
            app.state.service.schedule_stop.set()
        if marker is not None:
            _remove_own_marker(marker)
