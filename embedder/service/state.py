"""What the endpoints share, handed to each as a FastAPI dependency (``Depends(service)``)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from embedder.errors import printable_line
from embedder.ids import is_point_id
from embedder.limits import EventGate, EventLimits, LimitExceeded
from embedder.media.access import NotServable, open_inside
from embedder.progress import Progress
from embedder.service.files import OpenedFileResponse
from embedder.service.scheduled import ServerJobs, StoreGate

if TYPE_CHECKING:
    from embedder.library import Library
    from pipelines.scheduler import Scheduler

log = logging.getLogger("embedder.serve")
UPLOAD_CHUNK = 1 << 20
MAX_QUERY_CHARS = 1000


class Metrics:
    """The Prometheus metrics of one application."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "embedder_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "embedder_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.events = Counter("embedder_events_total", "Interaction events received", registry=self.registry)
        self.events_refused = Counter(
            "embedder_events_refused_total",
            "POST /events requests refused, by limit",
            ["reason"],
            registry=self.registry,
        )
        self.batch_sizes = Histogram(
            "embedder_query_batch_size",
            "Text queries encoded together",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.store_points = Gauge("embedder_store_points", "Items in the media collection", registry=self.registry)


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


@dataclass
class Service:
    """One application's shared state: the library, its limits, metrics and ingest jobs."""

    library: Library
    max_upload_mb: float = 200.0
    ready: bool = False
    metrics: Metrics = field(default_factory=Metrics)
    jobs: dict[str, IngestJob] = field(default_factory=dict)
    gate: EventGate | None = None
    # Scheduled jobs (embedder.service.scheduled): what holds the store while a step runs beside
    # the server, the runner, and the schedule when 'serve --schedule' runs one.
    store_gate: StoreGate = field(default_factory=StoreGate)
    scheduled: ServerJobs | None = None
    scheduler: Scheduler | None = None
    schedule_stop: threading.Event = field(default_factory=threading.Event)
    # A warm query process (embedder.warm): when the last request came, and how to stop the server.
    warm_process: bool = False
    last_request: float = field(default_factory=time.monotonic)
    request_exit: object = None  # set by serve(): a callable that makes the server shut down
    _batching: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.gate = self.gate or EventGate(EventLimits.from_settings(self.library.settings))
        self.scheduled = self.scheduled or ServerJobs(self.library, self.store_gate, [], busy=self.ingesting)

    def ingesting(self) -> bool:
        """Whether an ingest started through ``POST /ingest`` is running."""
        return any(j.state in ("queued", "running") for j in self.jobs.values())

    def batched(self) -> None:
        """Concurrent text queries share encoder batches (after the encoders are loaded)."""
        with self._lock:
            if not self._batching:
                self.library.batch_queries(on_batch=self.metrics.batch_sizes.observe)
                self._batching = True

    def warm(self) -> None:
        """Load the encoders (``/ready`` answers 503 until this ends)."""
        try:
            self.batched()
            self.library.media.count()
        except Exception:  # the first query reports what is wrong, as a JSON error
            pass
        finally:
            self.ready = True

    def item_or_404(self, item_id: str, with_vectors: bool = False):
        """The stored item ``item_id``, or a 404."""
        media = self.library.media
        records = media.retrieve([item_id], with_vectors=with_vectors) if is_point_id(item_id) else []
        if not records:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        return records[0]

    def picture(self, path: Path) -> OpenedFileResponse:
        """A preview embedder wrote, only as the regular file inside the thumbnails folder."""
        try:
            fh, st = open_inside(str(path), self.library.settings.thumbnails_dir)
        except NotServable as exc:
            log.warning("preview refused: %s", printable_line(str(exc)))
            raise HTTPException(status_code=404, detail="no such preview") from None
        return OpenedFileResponse(fh, st, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    def check_user(self, user: str) -> None:
        """A 422 for a user id longer than ``max_id_chars`` (the limit ``POST /events`` applies)."""
        try:
            self.gate.limits.check_id("user", user)
        except LimitExceeded as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None


def service(request: Request) -> Service:
    """The dependency every endpoint takes: the application's :class:`Service`."""
    return request.app.state.service


def hits_json(hits) -> list[dict]:
    """Hits as JSON, a moment's preview as the URL that serves it (never a server path)."""
    out = []
    for h in hits:
        d = h.to_dict()
        if d.get("moment") and d["moment"].get("thumbnail"):
            d["moment"]["thumbnail"] = f"/items/{h.id}/moments/{h.moment.segment}/thumbnail"
        out.append(d)
    return out
