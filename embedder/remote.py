"""The library's query and ingest calls over a running ``embedder serve`` (one writer, many callers).

An embedded store is open in one process at a time. While ``embedder serve`` holds it, the CLI's
``search``, ``recommend``, ``similar``, ``similar-users``, ``status`` and ``ingest`` reach it
through the server instead of failing on the lock. :func:`served_by` finds the server:
``EMBEDDER_SERVER`` (the ``server`` setting) when set, else the ``.serve.json`` the server
writes into the store directory. :class:`RemoteLibrary` has the methods of
:class:`~embedder.library.Library` those commands use, and returns the same objects, rebuilt
from the server's JSON (which is the CLI's ``--json``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError

if TYPE_CHECKING:
    from embedder.settings import Settings

POLL_S = 0.5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def served_by(settings: Settings) -> str | None:
    """The URL of the ``embedder serve`` that answers for these settings, or ``None``.

    ``settings.server`` wins. Otherwise, for an embedded store, the server's marker file in the
    store directory counts when its process is alive and serves the same collection.
    """
    if settings.server:
        return settings.server.rstrip("/")
    found = serve_marker(settings)
    return str(found.get("url", "")).rstrip("/") or None if found else None


def serve_marker(settings: Settings) -> dict | None:
    """The marker of the live ``embedder serve`` holding this embedded store and collection (its
    ``url``, ``pid``, and ``warm`` for a warm query process, :mod:`embedder.warm`), or ``None``."""
    from embedder.store.edge import SERVE_FILE

    if settings.is_server:
        return None
    marker = Path(settings.store).expanduser() / SERVE_FILE
    try:
        found = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not _alive(int(found.get("pid", 0) or 0)):
        return None
    if found.get("collection", settings.collection) != settings.collection:
        return None
    if found.get("warm") and found.get("fingerprint") != settings.fingerprint():
        return None  # a warm query process started with other settings would answer otherwise
    return found


class RemoteIngestSummary:
    """An ingest run's outcome as the server reported it (``to_dict`` is the ``--json``)."""

    def __init__(self, data: dict):
        self.data = data

    def to_dict(self) -> dict:
        return self.data

    @property
    def missing(self) -> list[str]:
        return list(self.data.get("missing") or [])

    @property
    def removals_held_back(self) -> bool:
        return any(h.get("guard") for h in self.data.get("held_back") or [])


class RemoteLibrary:
    """:class:`~embedder.library.Library`'s query and ingest methods, answered by ``embedder serve``."""

    def __init__(self, url: str, settings: Settings):
        import httpx

        self.url = url
        self.settings = settings
        headers = {}
        if settings.serve_key:
            headers["Authorization"] = f"Bearer {settings.serve_key}"
        self._http = httpx.Client(base_url=url, headers=headers, timeout=max(settings.timeout_s, 300.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteLibrary:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise EmbedderError(
                f"embedder serve at {self.url} does not answer ({type(exc).__name__}: {exc}); is it still running?"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise EmbedderError(f"{message or response.reason_phrase} (from embedder serve at {self.url})")
        return body

    # -- the Library methods the CLI uses ------------------------------------------------------

    def search(
        self,
        text: str | None = None,
        *,
        like: str | Path | None = None,
        limit: int = 10,
        modality: str = "all",
        filters: list[str] | None = None,
        min_score: float | None = None,
        include_self: bool = False,
        moments: bool = False,
        user: str | None = None,
        seen: str = "demote",
        mode: str = "auto",
        fusion: str = "rrf",
        collapse_duplicates: bool = False,
        diversity: float | None = None,
    ) -> list:
        """As :meth:`Library.search`; ``filters`` are ``--filter`` strings. A ``like`` that is a file
        here is uploaded (the server finds it by content if it is ingested)."""
        from embedder.search import Moment, SearchHit

        if (text is None) == (like is None):
            raise EmbedderError("give either a search text or --like FILE_OR_ID")
        if isinstance(filters, dict):
            raise EmbedderError("a remote search takes --filter strings, not a parsed filter")
        params = {
            "limit": limit,
            "modality": modality,
            "filter": list(filters or []),
            "moments": moments,
            "collapse_duplicates": collapse_duplicates,
            **({"user": user, "seen": seen} if user is not None else {}),
        }
        if text is not None:
            if min_score is not None:
                params["min_score"] = min_score
            extra = {"diversity": diversity} if diversity else {}
            body = self._call("GET", "/search", params={**params, "q": text, "mode": mode, "fusion": fusion, **extra})
        elif Path(str(like)).expanduser().is_file():
            if filters or user is not None:
                raise EmbedderError("--filter or --user with --like FILE is not supported through embedder serve")
            with open(Path(str(like)).expanduser(), "rb") as fh:
                body = self._call(
                    "POST",
                    "/search/file",
                    params={"limit": limit, "modality": modality, "moments": moments},
                    files={"file": (Path(str(like)).name, fh)},
                )
        else:
            body = self._call("GET", f"/items/{like}/like", params={**params, "include_self": include_self})
        hits = [SearchHit(**{**h, "moment": Moment(**h["moment"]) if h.get("moment") else None}) for h in body["hits"]]
        return [h for h in hits if min_score is None or h.score >= min_score]

    def recommend(
        self,
        user: str,
        *,
        strategy: str = "auto",
        limit: int = 10,
        exclude_seen: bool = True,
        query: str | None = None,
        filters=None,
        collapse_duplicates: bool = False,
    ):
        """As :meth:`Library.recommend`."""
        from urllib.parse import quote

        from embedder.recommend.queries import Recommendation, RecommendResult

        if filters:
            raise EmbedderError("filtered recommendations are not supported through embedder serve")
        params = {
            "strategy": strategy,
            "limit": limit,
            "exclude_seen": exclude_seen,
            "collapse_duplicates": collapse_duplicates,
        }
        if query:
            params["query"] = query
        body = self._call("GET", f"/users/{quote(user, safe='')}/recommendations", params=params)
        items = [Recommendation(**r) for r in body.pop("items")]
        return RecommendResult(**body, items=items)

    def similar(self, item: str, *, by: str = "content", limit: int = 10, collapse_duplicates: bool = False) -> list:
        """As :meth:`Library.similar`."""
        from urllib.parse import quote

        from embedder.ids import is_point_id
        from embedder.recommend.queries import Recommendation

        local = not is_point_id(item) and os.path.exists(os.path.expanduser(item))
        ref = os.path.abspath(os.path.expanduser(item)) if local else item  # a path: the server's disk is this one
        body = self._call(
            "GET",
            f"/items/{quote(ref, safe='')}/similar",
            params={"by": by, "limit": limit, "collapse_duplicates": collapse_duplicates},
        )
        return [Recommendation(**r) for r in body["items"]]

    def similar_users(self, user: str, *, limit: int = 10) -> list[dict]:
        """As :meth:`Library.similar_users`."""
        from urllib.parse import quote

        return self._call("GET", f"/users/{quote(user, safe='')}/similar", params={"limit": limit})["users"]

    def status(self) -> dict:
        """As :meth:`Library.status`."""
        return self._call("GET", "/status")

    def run_job(self, name: str, steps: list[list[str]]) -> tuple[bool, str]:
        """Run a scheduled job in the server (``POST /jobs/run``) and wait for it; ``(ok, one line)``.

        Arguments that name a file or folder here are made absolute first: the server runs the
        steps from its own working directory (on the same disk, when found through the store).
        """
        resolved = [
            [os.path.abspath(a) if not a.startswith("-") and os.path.exists(a) else a for a in s] for s in steps
        ]
        body = self._call("POST", "/jobs/run", json={"name": name, "steps": resolved}, timeout=None)
        return bool(body["ok"]), str(body["message"])

    def ingest(
        self,
        paths: list[str | Path],
        *,
        dry_run: bool = False,
        removals: str = "guarded",
        retry_failed: bool = False,
        progress=None,
    ) -> RemoteIngestSummary:
        """As :meth:`Library.ingest`, run by the server as a job; progress follows it by polling.

        Paths are made absolute here: the server reads them from its own disk (the same disk when
        it was found through the store's marker file).
        """
        absolute = [os.path.abspath(os.path.expanduser(str(p))) for p in paths]
        job = self._call(
            "POST",
            "/ingest",
            json={"paths": absolute, "dry_run": dry_run, "removals": removals, "retry_failed": retry_failed},
        )
        started = False
        while True:
            if progress is not None and job["total"] and not started:
                progress.start(job["total"], "ingest (embedder serve)")
                started = True
            if started and hasattr(progress, "update"):
                progress.update(job["done"])
            if job["state"] not in ("queued", "running"):
                break
            time.sleep(POLL_S)
            job = self._call("GET", f"/jobs/{job['id']}")
        if started:
            progress.finish()
        if job["state"] != "done":
            raise EmbedderError(f"ingest through embedder serve at {self.url} failed: {job['error']}")
        return RemoteIngestSummary(job["summary"])
