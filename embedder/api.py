"""The interface the command line holds: :class:`~embedder.library.Library` (in-process) and
:class:`~embedder.remote.RemoteLibrary` (a running ``embedder serve``) both implement it, so a
command does not care which it was given. ``tests/test_api.py`` checks that both match it,
parameter by parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class LibraryAPI(Protocol):
    """What every command that may run through ``serve`` calls."""

    def search(
        self,
        text: str | None = None,
        *,
        like: str | Path | None = None,
        limit: int = 10,
        modality: str = "all",
        filters: Any = None,
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
        """Items matching ``text``, or like ``like`` (an id, an ingested path, or a new file)."""

    def recommend(
        self,
        user: str,
        *,
        strategy: str = "auto",
        limit: int = 10,
        exclude_seen: bool = True,
        query: str | None = None,
        filters: Any = None,
        collapse_duplicates: bool = False,
    ) -> Any:
        """Items for ``user`` by a strategy (a ``RecommendResult``)."""

    def similar(self, item: str, *, by: str = "content", limit: int = 10, collapse_duplicates: bool = False) -> list:
        """Items like ``item`` by content, cf or both."""

    def similar_users(self, user: str, *, limit: int = 10) -> list[dict]:
        """Users whose taste is closest to ``user``'s."""

    def status(self) -> dict:
        """Back-end, collection, counts, models and size."""

    def ingest(
        self,
        paths: list[str | Path],
        *,
        dry_run: bool = False,
        removals: str = "guarded",
        retry_failed: bool = False,
        progress: Any = None,
    ) -> Any:
        """Decode, encode and store files and folders (a summary with ``to_dict()``)."""

    def close(self) -> None:
        """Release what is open."""

    def __enter__(self) -> LibraryAPI: ...

    def __exit__(self, *exc) -> None: ...
