"""``embedder serve``: the library over HTTP (FastAPI on uvicorn), with models loaded once.

Every endpoint is one :class:`~embedder.library.Library` call, the same one the CLI command it
mirrors makes, so the JSON here is the CLI's ``--json``. Endpoints are plain (sync) functions:
FastAPI runs them in its thread pool, so encoding a query or decoding an upload never blocks the
event loop, and the store (thread-safe) and the log (serialised by the library) are shared.

What is served is limited to what was ingested: media and "more like this" take item ids, never
paths on the server's disk; an upload is size-limited and decoded in the isolated workers.
"""

import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from embedder.errors import EmbedderError
from embedder.ids import is_point_id
from embedder.progress import Progress

if TYPE_CHECKING:
    from embedder.library import Library

UPLOAD_CHUNK = 1 << 20


class IngestJob(Progress):
    """An ingest running in the background, and what a client polls: state, progress, outcome."""

    def __init__(self, paths: list[str]):
        self.id = uuid.uuid4().hex[:12]
        self.paths = paths
        self.state = "queued"
        self.total = 0
        self.done = 0
        self.failed = 0
        self.summary: dict | None = None
        self.error: str | None = None
        self.started = time.time()

    def start(self, total: int, label: str, unit: str = "files") -> None:
        self.total, self.done = total, 0

    def advance(self, path: str, status: str) -> None:
        self.done += 1
        self.failed += status == "failed"

    def to_dict(self) -> dict:
        return {"id": self.id, "paths": self.paths, "state": self.state, "total": self.total, "done": self.done,
                "failed": self.failed, "summary": self.summary, "error": self.error,
                "elapsed_s": round(time.time() - self.started, 3)}


def create_app(library: "Library", *, max_upload_mb: float = 200.0, preload: bool = True):
    """The FastAPI application serving ``library``.

    Args:
        max_upload_mb: the largest file ``POST /search/file`` accepts.
        preload: load the encoders at startup (``/ready`` answers 503 until they are loaded), so
            the first query does not pay for it.
    """
    app = FastAPI(title="embedder", version=__import__("embedder").__version__,
                  description="Search, recommend and ingest an embedder library over HTTP.")
    registry = CollectorRegistry()
    requests_total = Counter("embedder_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("embedder_request_seconds", "HTTP request latency", ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
    events_total = Counter("embedder_events_total", "Interaction events received", registry=registry)
    store_points = Gauge("embedder_store_points", "Items in the media collection", registry=registry)
    jobs: dict[str, IngestJob] = {}
    state = {"ready": not preload}

    def warm() -> None:
        try:
            library.encoders  # noqa: B018  (loads them)
            library.media.count()
        finally:
            state["ready"] = True

    if preload:
        threading.Thread(target=warm, name="embedder-warm", daemon=True).start()

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests_total.labels(name, request.method, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(EmbedderError)
    async def embedder_error(request: Request, exc: EmbedderError):
        return JSONResponse(status_code=400, content={"error": str(exc)})

    def item_or_404(item_id: str):
        records = library.media.retrieve([item_id]) if is_point_id(item_id) else []
        if not records:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        return records[0]

    @app.get("/health", summary="The process answers")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Models loaded and store open (503 until then)")
    def ready():
        if not state["ready"]:
            return JSONResponse(status_code=503, content={"ready": False, "reason": "loading models"})
        return {"ready": True, "points": library.media.count()}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics():
        store_points.set(library.media.count())
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/search", summary="Search by text ('embedder search TEXT')")
    def search(q: str, limit: int = Query(10, ge=1, le=1000), modality: str = "all",
               filter: list[str] = Query(default=[]), min_score: float | None = None) -> dict:
        from embedder.payload import parse_filters

        hits = library.search(q, limit=limit, modality=modality, filters=parse_filters(filter), min_score=min_score)
        return {"query": q, "like": None, "modality": modality, "min_score": min_score,
                "hits": [h.to_dict() for h in hits]}

    @app.get("/items/{item_id}/like", summary="Items like an ingested item ('embedder search --like ID')")
    def search_like(item_id: str, limit: int = Query(10, ge=1, le=1000), modality: str = "all",
                    filter: list[str] = Query(default=[])) -> dict:
        from embedder.payload import parse_filters

        item_or_404(item_id)
        hits = library.search(like=item_id, limit=limit, modality=modality, filters=parse_filters(filter))
        return {"query": None, "like": item_id, "modality": modality, "hits": [h.to_dict() for h in hits]}

    @app.post("/search/file", summary="Items like an uploaded file (decoded in an isolated worker)")
    def search_file(file: UploadFile = File(...), limit: int = Query(10, ge=1, le=1000), modality: str = "all") -> dict:
        suffix = Path(file.filename or "upload").suffix[:16]
        tmp = Path(tempfile.mkdtemp(prefix="embedder-upload-"))
        try:
            target = tmp / f"upload{suffix}"
            size, limit_bytes = 0, int(max_upload_mb * 1e6)
            with open(target, "wb") as out:
                while chunk := file.file.read(UPLOAD_CHUNK):
                    size += len(chunk)
                    if size > limit_bytes:
                        raise HTTPException(status_code=413, detail=f"the file is over {max_upload_mb:g} MB")
                    out.write(chunk)
            hits = library.search(like=str(target), limit=limit, modality=modality)
            return {"query": None, "like": file.filename, "modality": modality, "hits": [h.to_dict() for h in hits]}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @app.get("/items/{item_id}", summary="An item's stored details (payload and vector names)")
    def item(item_id: str) -> dict:
        record = library.media.retrieve([item_id], with_vectors=True) if is_point_id(item_id) else []
        if not record:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        return {"id": record[0].id, "payload": record[0].payload, "vectors": sorted(record[0].vectors)}

    @app.get("/items/{item_id}/media", summary="The item's file, with HTTP range requests (seekable)")
    def media(item_id: str):
        record = item_or_404(item_id)
        for path in record.payload.get("paths") or []:
            if os.path.isfile(path):  # only a path this item was ingested from
                return FileResponse(path, filename=os.path.basename(path))
        raise HTTPException(status_code=404, detail=f"item {item_id}: none of its files is on disk any more")

    @app.get("/items/{item_id}/similar", summary="Similar items ('embedder similar')")
    def similar(item_id: str, by: str = "content", limit: int = Query(10, ge=1, le=1000)) -> dict:
        items = library.similar(item_id, by=by, limit=limit)
        return {"item": item_id, "by": by, "items": [r.to_dict() for r in items]}

    @app.get("/users/{user}/recommendations", summary="Recommendations ('embedder recommend')")
    def recommend(user: str, strategy: str = "hybrid", limit: int = Query(10, ge=1, le=1000),
                  exclude_seen: bool = True, query: str | None = None) -> dict:
        return library.recommend(user, strategy=strategy, limit=limit, exclude_seen=exclude_seen, query=query).to_dict()

    @app.get("/users/{user}/similar", summary="Users with the closest taste ('embedder similar-users')")
    def similar_users(user: str, limit: int = Query(10, ge=1, le=1000)) -> dict:
        return {"user": user, "users": library.similar_users(user, limit=limit)}

    @app.post("/events", summary="Append interaction events (one object or a list); they count at once")
    def events(body: Any = Body(...)) -> dict:
        from embedder.recommend.interactions import Interaction

        rows = body if isinstance(body, list) else [body]
        try:
            parsed = [Interaction(library.settings.stored_user(str(r["user"])), str(r["item"]),
                                  float(r.get("weight", 1.0)), ts=float(r.get("ts", time.time())),
                                  event=str(r.get("event", "")))
                      for r in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=f"each event needs user and item, weight a number: {exc}")
        report = library.record_events(parsed)
        events_total.inc(len(parsed))
        return report

    @app.post("/ingest", summary="Ingest folders on the server's disk, in the background", status_code=202)
    def ingest(paths: list[str] = Body(..., embed=True), prune: bool = Body(False, embed=True)) -> dict:
        if any(j.state in ("queued", "running") for j in jobs.values()):
            raise HTTPException(status_code=409, detail="an ingest job is already running")
        job = IngestJob(paths)
        jobs[job.id] = job

        def run() -> None:
            job.state = "running"
            try:
                summary = library.ingest(paths, removals="prune" if prune else "guarded", progress=job)
                job.summary = summary.to_dict()
                job.state = "done"
            except Exception as exc:  # reported to whoever polls the job, never lost
                job.error, job.state = str(exc), "failed"

        threading.Thread(target=run, name=f"embedder-ingest-{job.id}", daemon=True).start()
        return job.to_dict()

    @app.get("/jobs/{job_id}", summary="An ingest job's state, progress and outcome")
    def job(job_id: str) -> dict:
        if job_id not in jobs:
            raise HTTPException(status_code=404, detail=f"no job {job_id}")
        return jobs[job_id].to_dict()

    return app


def serve(library: "Library", host: str = "127.0.0.1", port: int = 8080, **kwargs) -> None:
    """Run the service until interrupted (uvicorn, one process: the models are loaded once)."""
    import json

    import uvicorn

    from embedder.store.edge import SERVE_FILE

    # Other processes that find the embedded store held say where the server is (one writer, many callers).
    marker = None if library.settings.is_server else Path(library.settings.store).expanduser() / SERVE_FILE
    if marker is not None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"url": f"http://{shown}:{port}", "pid": os.getpid(),
                                      "collection": library.settings.collection}))
    try:
        uvicorn.run(create_app(library, **kwargs), host=host, port=port, log_level="info")
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
