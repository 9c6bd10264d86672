"""Removed items kept for a while, so that an accidental removal costs nothing to undo.

Before ingest deletes a point (its file is gone, or the path now holds other content), the whole
point, with every named vector (content, ``cf``, ``rec``) and its payload, is copied into the
collection's trash: a sibling physical collection named ``<collection>_trash`` on the same
back-end, stamped with when and why it was removed. Then:

- the next ingest that finds the same content again (the share came back, the file was moved
  back) restores the point from the trash instead of decoding and encoding the file again, with
  its collaborative and trained vectors intact;
- ``embedder trash restore`` puts items back by hand, ``embedder trash list`` shows them;
- entries older than ``settings.trash_days`` are purged at the end of each ingest.

The trash is named after the *physical* collection (``media_v1_trash``), so a blue-green rebuild
to other models starts with its own trash and vectors of different sizes never meet.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from embedder.store.base import PointRecord, VectorStore
from embedder.store.factory import open_physical

if TYPE_CHECKING:
    from embedder.settings import Settings

TRASH_SUFFIX = "_trash"
# Payload keys the trash adds to a removed point; stripped again on restore.
TRASHED_AT, TRASHED_TS, TRASH_REASON = "trashed_at", "trashed_ts", "trash_reason"
TRASH_KEYS = (TRASHED_AT, TRASHED_TS, TRASH_REASON)


def trash_name(store: VectorStore) -> str:
    """The trash collection of the physical collection ``store`` is open on."""
    return store.collection + TRASH_SUFFIX


@dataclass
class TrashEntry:
    """One removed item as ``embedder trash list`` shows it."""

    id: str
    paths: list[str]
    reason: str
    trashed_at: str

    def to_dict(self) -> dict:
        return {"id": self.id, "paths": self.paths, "reason": self.reason, "trashed_at": self.trashed_at}


class Trash:
    """The trash of one collection; opened lazily, so runs that remove nothing never touch it."""

    def __init__(self, settings: Settings, store: VectorStore):
        self.settings = settings
        self.store = store
        self._trash: VectorStore | None = None

    def _open(self) -> VectorStore:
        if self._trash is None:
            self._trash = open_physical(self.settings, trash_name(self.store))
        return self._trash

    def close(self) -> None:
        if self._trash is not None:
            self._trash.close()
            self._trash = None

    def __enter__(self) -> Trash:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, ids: list[str], reason: str) -> int:
        """Copy these points of the collection into the trash (vectors and payload). Returns how many."""
        records = self.store.retrieve(list(ids), with_vectors=True)
        if not records:
            return 0
        trash = self._open()
        dims = self.store.collection_dims()
        if dims is None:
            return 0
        trash.ensure_collection(dims)
        now = datetime.now(UTC)
        stamp = {TRASHED_AT: now.isoformat(timespec="seconds"), TRASHED_TS: now.timestamp(), TRASH_REASON: reason}
        trash.upsert([PointRecord(r.id, r.vectors, {**r.payload, **stamp}) for r in records])
        return len(records)

    def take(self, ids: list[str], with_vectors: bool = True) -> list[PointRecord]:
        """The trashed points among ``ids`` whose vectors fit the collection (without the trash's own keys)."""
        trash = self._open()
        dims, trashed = self.store.collection_dims(), trash.collection_dims()
        if trashed is None or (dims is not None and trashed != dims):
            return []
        return [
            PointRecord(r.id, r.vectors, {k: v for k, v in r.payload.items() if k not in TRASH_KEYS})
            for r in trash.retrieve(list(ids), with_vectors=with_vectors)
        ]

    def restore(self, records: list[PointRecord]) -> None:
        """Write points taken from the trash back into the collection, then drop them from the trash."""
        if not records:
            return
        self.store.upsert(records)
        self._open().delete([r.id for r in records])

    def entries(self) -> list[TrashEntry]:
        """Everything in the trash, newest first."""
        trash = self._open()
        found = [
            TrashEntry(
                r.id, list(r.payload.get("paths") or []), r.payload.get(TRASH_REASON, ""), r.payload.get(TRASHED_AT, "")
            )
            for r in trash.scroll()
        ]
        return sorted(found, key=lambda e: e.trashed_at, reverse=True)

    def purge(self, older_than_days: float | None = None) -> int:
        """Delete trash entries older than ``older_than_days`` (all of them with ``None``). Returns how many."""
        trash = self._open()
        if trash.collection_dims() is None:
            return 0
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        ids = [r.id for r in trash.scroll() if cutoff is None or float(r.payload.get(TRASHED_TS, 0)) < cutoff]
        trash.delete(ids)
        self._drop_thumbnails(ids)
        return len(ids)

    def _drop_thumbnails(self, ids: list[str]) -> None:
        """Thumbnails of items gone for good (neither in the collection nor in the trash any more)."""
        from embedder.media.thumbnail import ThumbnailStore

        live = {r.id for r in self.store.retrieve(list(ids))} if ids else set()
        ThumbnailStore(self.settings.thumbnails_dir).remove(i for i in ids if i not in live)

    def restore_selected(self, selectors: list[str] | None) -> list[TrashEntry]:
        """Restore trash entries named by id or by one of their paths (all of them with ``None``).

        Raises:
            EmbedderError: a selector matches nothing in the trash (nothing is restored then).
        """
        from embedder.errors import EmbedderError

        entries = self.entries()
        if selectors is None:
            chosen = entries
        else:
            chosen, missing = [], []
            for sel in selectors:
                match = [e for e in entries if e.id == sel or sel in e.paths or os.path.abspath(sel) in e.paths]
                chosen += match
                if not match:
                    missing.append(sel)
            if missing:
                raise EmbedderError(
                    "not in the trash: " + ", ".join(missing) + " ('embedder trash list' shows what is)"
                )
        chosen = list({e.id: e for e in chosen}.values())
        self.restore(self.take([e.id for e in chosen]))
        return chosen
