"""``embedder serve``: the library over HTTP (FastAPI on uvicorn), with models loaded once.

Every endpoint is one :class:`~embedder.library.Library` call, the same one the CLI command it
mirrors makes, so the JSON here is the CLI's ``--json``. Endpoints are plain (sync) functions:
FastAPI runs them in its thread pool, so encoding a query or decoding an upload never blocks the
event loop, and the store (thread-safe) and the log (serialised by the library) are shared.

What is served is limited to what was ingested: media and "more like this" take item ids, never
paths on the server's disk; an upload is size-limited and decoded in the isolated workers.
"""

import hmac
import ipaddress
import logging
import math
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fastapi import Body, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from embedder.errors import EmbedderError, printable_line
from embedder.ids import is_point_id
from embedder.limits import EventGate, EventLimits, LimitExceeded
from embedder.media.access import FileIdentity, NotServable, open_inside, open_recorded
from embedder.payload import stored_identities
from embedder.progress import Progress

if TYPE_CHECKING:
    from embedder.library import Library

UPLOAD_CHUNK = 1 << 20
MAX_QUERY_CHARS = 1000
WEB_DIR = Path(__file__).parent / "web"
# Open without a key: probes for orchestration, and the page itself (its API calls carry the key).
PUBLIC_PATHS = {"/health", "/ready", "/", "/ui/app.js", "/ui/style.css"}
log = logging.getLogger("embedder.serve")


class OpenedFileResponse(FileResponse):
    """A file response (ranges, ETag, HEAD: Starlette's) that reads a file already opened and
    checked (:mod:`embedder.media.access`), never its path again: a link swapped in after the
    check cannot change what is sent."""

    def __init__(self, file, stat_result: os.stat_result, **kwargs):
        self._file = file
        super().__init__(f"/proc/self/fd/{file.fileno()}", stat_result=stat_result, **kwargs)

    @asynccontextmanager
    async def _open_file(self):
        import anyio

        self._file.seek(0)
        yield anyio.wrap_file(self._file)

    async def __call__(self, scope, receive, send) -> None:
        # "pathsend" would hand the server a path to open again; the descriptor is what was checked.
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._file.close()


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_USER_IN_PATH = re.compile(r"^(/users/)([^/?]+)")
_USER_IN_QUERY = re.compile(r"([?&]user=)([^&]*)")


class AccessLogUsers(logging.Filter):
    """Rewrites the user ids in the URLs uvicorn's access log writes (``/users/ID/...`` and
    ``?user=ID``): as the stored pseudonym, or ``-``, so ``forget`` leaves no raw id in the log."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.mode = settings.access_log_user_ids

    def _replace(self, quoted: str) -> str:
        if self.mode == "drop":
            return "-"
        user = unquote(quoted)
        if self.settings.pseudonymous_users:
            return self.settings.stored_user(user)
        import hashlib

        return "h:" + hashlib.sha256(user.encode()).hexdigest()[:16]

    def redact(self, url: str) -> str:
        """``url`` with its user ids replaced."""
        url = _USER_IN_PATH.sub(lambda m: m.group(1) + self._replace(m.group(2)), url)
        return _USER_IN_QUERY.sub(lambda m: m.group(1) + self._replace(m.group(2)), url)

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: args = (client, method, path with query, HTTP version, status)
        if self.mode != "keep" and isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = self.redact(str(args[2]))
            record.args = tuple(args)
        return True


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


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
        return {
            "id": self.id,
            "paths": self.paths,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "summary": self.summary,
            "error": self.error,
            "elapsed_s": round(time.time() - self.started, 3),
        }


def create_app(
    library: "Library",
    *,
    max_upload_mb: float = 200.0,
    preload: bool = True,
    api_key: str | None = None,
    cors_origins: list[str] | None = None,
    max_body_kb: float = 1024.0,
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
    """
    # The docs page's Swagger UI and ReDoc assets come from a package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="embedder",
        version=__import__("embedder").__version__,
        description="Search, recommend and ingest an embedder library over HTTP.",
    )
    registry = CollectorRegistry()
    requests_total = Counter(
        "embedder_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry
    )
    latency = Histogram(
        "embedder_request_seconds",
        "HTTP request latency",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    events_total = Counter("embedder_events_total", "Interaction events received", registry=registry)
    events_refused = Counter(
        "embedder_events_refused_total", "POST /events requests refused, by limit", ["reason"], registry=registry
    )
    gate = EventGate(EventLimits.from_settings(library.settings))
    max_id = library.settings.max_id_chars
    batch_sizes = Histogram(
        "embedder_query_batch_size",
        "Text queries encoded together",
        registry=registry,
        buckets=(1, 2, 4, 8, 16, 32, 64),
    )
    store_points = Gauge("embedder_store_points", "Items in the media collection", registry=registry)
    jobs: dict[str, IngestJob] = {}
    state = {"ready": not preload, "batching": False}

    def batched() -> None:
        """Concurrent text queries share encoder batches (after the encoders are loaded)."""
        if not state["batching"]:
            library.batch_queries(on_batch=batch_sizes.observe)
            state["batching"] = True

    def warm() -> None:
        try:
            batched()  # loads the encoders
            library.media.count()
        except Exception:  # the first query reports what is wrong, as a JSON error
            pass
        finally:
            state["ready"] = True

    if preload:
        threading.Thread(target=warm, name="embedder-warm", daemon=True).start()

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
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests_total.labels(name, request.method, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

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

    def item_or_404(item_id: str, with_vectors: bool = False):
        records = library.media.retrieve([item_id], with_vectors=with_vectors) if is_point_id(item_id) else []
        if not records:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        return records[0]

    def picture(path: Path) -> OpenedFileResponse:
        """A preview embedder wrote, only as the regular file inside the thumbnails folder."""
        try:
            fh, st = open_inside(str(path), library.settings.thumbnails_dir)
        except NotServable as exc:
            log.warning("preview refused: %s", printable_line(str(exc)))
            raise HTTPException(status_code=404, detail="no such preview") from None
        return OpenedFileResponse(fh, st, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

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

    def hits_json(hits) -> list[dict]:
        """Hits as JSON, a moment's preview as the URL that serves it (never a server path)."""
        out = []
        for h in hits:
            d = h.to_dict()
            if d.get("moment") and d["moment"].get("thumbnail"):
                d["moment"]["thumbnail"] = f"/items/{h.id}/moments/{h.moment.segment}/thumbnail"
            out.append(d)
        return out

    @app.get("/search", summary="Search by text ('embedder search TEXT'), for a user, or for moments")
    def search(
        q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS),
        limit: int = Query(10, ge=1, le=1000),
        modality: str = "all",
        filter: list[str] = Query(default=[]),
        min_score: float | None = None,
        moments: bool = False,
        user: str | None = Query(None, min_length=1, max_length=512),
        seen: str = "demote",
    ) -> dict:
        batched()
        hits = library.search(
            q,
            limit=limit,
            modality=modality,
            filters=filter,
            min_score=min_score,
            moments=moments,
            user=user,
            seen=seen,
        )
        return {
            "query": q,
            "like": None,
            "modality": modality,
            "min_score": min_score,
            "moments": moments,
            "user": user,
            "hits": hits_json(hits),
        }

    @app.get("/items/{item_id}/like", summary="Items like an ingested item ('embedder search --like ID')")
    def search_like(
        item_id: str,
        limit: int = Query(10, ge=1, le=1000),
        modality: str = "all",
        filter: list[str] = Query(default=[]),
        include_self: bool = False,
        moments: bool = False,
        user: str | None = Query(None, min_length=1, max_length=512),
        seen: str = "demote",
    ) -> dict:
        item_or_404(item_id)
        hits = library.search(
            like=item_id,
            limit=limit,
            modality=modality,
            filters=filter,
            include_self=include_self,
            moments=moments,
            user=user,
            seen=seen,
        )
        return {
            "query": None,
            "like": item_id,
            "modality": modality,
            "moments": moments,
            "user": user,
            "hits": hits_json(hits),
        }

    @app.get(
        "/items/{item_id}/moments/{segment}/thumbnail",
        summary="A preview of one segment of an item (JPEG)",
        response_class=FileResponse,
    )
    def moment_thumbnail(item_id: str, segment: int = PathParam(..., ge=0, le=100_000)):
        from embedder.media.thumbnail import ThumbnailStore

        record = item_or_404(item_id)
        found = ThumbnailStore(library.settings.thumbnails_dir).get_moment(record.id, segment)
        if found is None:
            raise HTTPException(status_code=404, detail=f"item {item_id} has no preview of segment {segment}")
        return picture(found)

    @app.post("/search/file", summary="Items like an uploaded file (decoded in an isolated worker)")
    def search_file(
        file: UploadFile = File(...),
        limit: int = Query(10, ge=1, le=1000),
        modality: str = "all",
        moments: bool = False,
    ) -> dict:
        suffix = Path(file.filename or "upload").suffix[:16]
        tmp = Path(tempfile.mkdtemp(prefix="embedder-upload-"))
        try:
            target = tmp / f"upload{suffix}"
            size, limit_bytes = 0, int(max_upload_mb * 1e6)
            # Created here, never followed: the decoder reads exactly the file this request wrote.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := file.file.read(UPLOAD_CHUNK):
                    size += len(chunk)
                    if size > limit_bytes:
                        raise HTTPException(status_code=413, detail=f"the file is over {max_upload_mb:g} MB")
                    out.write(chunk)
                out.flush()
                written = os.fstat(out.fileno())
            try:
                fh, _ = open_recorded(
                    str(target),
                    FileIdentity(
                        size,
                        written.st_mtime_ns,
                        written.st_dev,
                        written.st_ino,
                        str(target.resolve()),
                        str(tmp.resolve()),
                        written.st_ctime_ns,
                    ),
                    "",
                )
            except NotServable as exc:
                log.warning("upload refused: %s", printable_line(str(exc)))
                raise HTTPException(status_code=400, detail="the upload changed on disk before it was read") from None
            fh.close()
            hits = library.search(like=str(target), limit=limit, modality=modality, moments=moments)
            return {
                "query": None,
                "like": file.filename,
                "modality": modality,
                "moments": moments,
                "hits": hits_json(hits),
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @app.get("/items/{item_id}", summary="An item's stored details (payload and vector names)")
    def item(item_id: str) -> dict:
        record = item_or_404(item_id, with_vectors=True)
        return {"id": record.id, "payload": record.payload, "vectors": sorted(record.vectors)}

    @app.get(
        "/items/{item_id}/thumbnail",
        summary="The item's thumbnail (JPEG: a frame, or the audio's waveform)",
        response_class=FileResponse,
    )
    def thumbnail(item_id: str):
        from embedder.media.thumbnail import ThumbnailStore

        record = item_or_404(item_id)
        found = ThumbnailStore(library.settings.thumbnails_dir).get(record.id)
        if found is None:
            raise HTTPException(
                status_code=404,
                detail=f"item {item_id} has no thumbnail (ingested before they existed, or with thumbnails off)",
            )
        return picture(found)

    @app.get("/status", summary="Back-end, collection, items, modalities and models ('embedder status')")
    def status() -> dict:
        return library.status()

    @app.get("/users", summary="The most active users, for a user picker")
    def users(limit: int = Query(100, ge=1, le=10000)) -> dict:
        return {"users": library.users_by_activity(limit)}

    @app.head("/items/{item_id}/media", include_in_schema=False)
    @app.get("/items/{item_id}/media", summary="The item's file, inline, with HTTP range requests (seekable) and HEAD")
    def media(item_id: str):
        record = item_or_404(item_id)
        identities = stored_identities(record.payload)
        reasons = []
        for path in record.payload.get("paths") or []:  # only a path this item was ingested from
            try:
                fh, st = open_recorded(path, FileIdentity.from_dict(identities[path]), record.payload.get("sha256", ""))
            except NotServable as exc:
                reasons.append(str(exc))
                continue
            # inline: a browser plays it in the page (a <video>, or the URL opened) rather than saving it
            return OpenedFileResponse(fh, st, filename=os.path.basename(path), content_disposition_type="inline")
        log.warning("media of item %s refused: %s", item_id, printable_line("; ".join(reasons) or "it has no file"))
        raise HTTPException(status_code=404, detail=f"item {item_id}: none of its files is still the file ingested")

    # ':path': the item may be named by an ingested file's path, whose '/'s arrive decoded from %2F.
    @app.get("/items/{item_id:path}/similar", summary="Similar items ('embedder similar'): by id or ingested path")
    def similar(item_id: str, by: str = "content", limit: int = Query(10, ge=1, le=1000)) -> dict:
        items = library.similar(item_id, by=by, limit=limit)
        return {"item": item_id, "by": by, "items": [r.to_dict() for r in items]}

    @app.get("/users/{user}/recommendations", summary="Recommendations ('embedder recommend')")
    def recommend(
        user: str = PathParam(..., max_length=max_id),
        strategy: str = "hybrid",
        limit: int = Query(10, ge=1, le=1000),
        exclude_seen: bool = True,
        query: str | None = Query(None, max_length=MAX_QUERY_CHARS),
    ) -> dict:
        return library.recommend(user, strategy=strategy, limit=limit, exclude_seen=exclude_seen, query=query).to_dict()

    @app.get("/users/{user}/similar", summary="Users with the closest taste ('embedder similar-users')")
    def similar_users(user: str = PathParam(..., max_length=max_id), limit: int = Query(10, ge=1, le=1000)) -> dict:
        return {"user": user, "users": library.similar_users(user, limit=limit)}

    @app.post("/events", summary="Append interaction events (one object or a list); they count at once")
    def events(body: Any = Body(...)) -> dict:
        from embedder.recommend.interactions import Interaction

        rows = body if isinstance(body, list) else [body]
        if not rows:
            raise HTTPException(status_code=422, detail="no events: send one event object or a list of them")
        refuse_over_limits(lambda: gate.limits.check_batch(rows))
        try:
            parsed = [
                Interaction(
                    library.settings.stored_user(str(r["user"])),
                    str(r["item"]),
                    float(r.get("weight", 1.0)),
                    ts=float(r.get("ts", time.time())),
                    event=str(r.get("event", "")),
                )
                for r in rows
            ]
            if not all(math.isfinite(e.weight) and math.isfinite(e.ts) for e in parsed):
                raise ValueError("weight and ts must be finite numbers")
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(
                status_code=422, detail=f"each event needs user and item, weight a number: {exc}"
            ) from None
        keys, known = library.join_items([e.item for e in parsed])
        refuse_over_limits(lambda: gate.admit(parsed, lambda _: known))
        parsed = [Interaction(e.user, keys[e.item], e.weight, e.ts, e.event) for e in parsed]  # as the store knows it
        report = library.record_events(parsed)
        events_total.inc(len(parsed))
        return report

    def refuse_over_limits(check) -> None:
        try:
            check()
        except LimitExceeded as exc:
            events_refused.labels(exc.reason).inc()
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None

    @app.post("/ingest", summary="Ingest folders on the server's disk, in the background", status_code=202)
    def ingest(
        paths: list[str] = Body(..., embed=True, min_length=1),
        removals: str = Body("guarded", embed=True, pattern="^(guarded|prune|never)$"),
        dry_run: bool = Body(False, embed=True),
        retry_failed: bool = Body(False, embed=True),
    ) -> dict:
        if any(j.state in ("queued", "running") for j in jobs.values()):
            raise HTTPException(status_code=409, detail="an ingest job is already running")
        job = IngestJob(paths)
        jobs[job.id] = job

        def run() -> None:
            job.state = "running"
            try:
                summary = library.ingest(
                    paths, removals=removals, dry_run=dry_run, retry_failed=retry_failed, progress=job
                )
                job.summary = summary.to_dict()
                job.state = "done"
            except Exception as exc:  # reported to whoever polls the job, never lost
                job.error = str(exc) if isinstance(exc, EmbedderError) else f"{type(exc).__name__}: {exc}"
                job.state = "failed"

        threading.Thread(target=run, name=f"embedder-ingest-{job.id}", daemon=True).start()
        return job.to_dict()

    @app.get("/jobs/{job_id}", summary="An ingest job's state, progress and outcome")
    def job(job_id: str) -> dict:
        if job_id not in jobs:
            raise HTTPException(status_code=404, detail=f"no job {job_id}")
        return jobs[job_id].to_dict()

    @app.get(
        "/",
        summary="The web page: search, more like this, recommendations",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def page():
        return HTMLResponse((WEB_DIR / "index.html").read_text())

    @app.get("/ui/{name}", include_in_schema=False)
    def page_asset(name: str):
        if name not in ("app.js", "style.css"):
            raise HTTPException(status_code=404, detail=f"no page asset {name}")
        return FileResponse(WEB_DIR / name, media_type="text/javascript" if name.endswith(".js") else "text/css")

    return app


def serve(library: "Library", host: str = "127.0.0.1", port: int = 8080, **kwargs) -> None:
    """Run the service until interrupted (uvicorn, one process: the models are loaded once).

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
        marker.write_text(
            json.dumps({"url": f"http://{shown}:{port}", "pid": os.getpid(), "collection": library.settings.collection})
        )
    try:
        config = uvicorn.Config(create_app(library, api_key=api_key, **kwargs), host=host, port=port, log_level="info")
        logging.getLogger("uvicorn.access").addFilter(AccessLogUsers(library.settings))  # after Config set logging up
        try:
            uvicorn.Server(config).run()
        except KeyboardInterrupt:  # Ctrl-C is how a server is stopped (uvicorn re-raises it after shutting down)
            pass
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
