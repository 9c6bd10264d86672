"""``embedder serve``: the library over HTTP (FastAPI on uvicorn), with models loaded once.

Every endpoint is one :class:`~embedder.library.Library` call, the same one the CLI command it
mirrors makes, so the JSON here is the CLI's ``--json``. Endpoints are plain (sync) functions:
FastAPI runs them in its thread pool, so encoding a query or decoding an upload never blocks the
event loop, and the store (thread-safe) and the log (serialised by the library) are shared.

What is served is limited to what was ingested: media and "more like this" take item ids, never
paths on the server's disk; an upload is size-limited and decoded in the isolated workers.

Layout: :mod:`.app` builds the application (middleware, errors, routers) and runs it;
:mod:`.state` holds what the endpoints share (the library, metrics, limits, jobs), which each
endpoint receives as a dependency; :mod:`.routes` has one router per resource (search, items,
users and events, ingest jobs, operations, the page); :mod:`.files` and :mod:`.logs` are the
file response and the access-log filter.
"""

from embedder.service.app import create_app, is_loopback, serve
from embedder.service.files import OpenedFileResponse
from embedder.service.logs import AccessLogUsers

__all__ = ["AccessLogUsers", "OpenedFileResponse", "create_app", "is_loopback", "serve"]
