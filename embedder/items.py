"""Listing, paging through and deleting the items of a collection, by id or path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError
from embedder.search import find_item
from embedder.store import VectorStore
from embedder.store.base import Filter
from embedder.trash import Trash

if TYPE_CHECKING:
    from embedder.settings import Settings


@dataclass
class ItemPage:
    """One page of items in id order, and where the next page starts."""

    items: list[dict]
    offset: int
    total: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None

    def to_dict(self) -> dict:
        return {"items": self.items, "offset": self.offset, "total": self.total, "next_offset": self.next_offset}


def summary(record) -> dict:
    """What a listing shows of an item."""
    p = record.payload
    return {
        "id": record.id,
        "path": p.get("path"),
        "paths": p.get("paths") or [],
        "kind": p.get("kind"),
        "modalities": p.get("modalities") or [],
        "duration": p.get("duration"),
        "size": p.get("size"),
        "ingested_at": p.get("ingested_at"),
    }


def list_items(store: VectorStore, *, offset: int = 0, limit: int = 50, filter: Filter | None = None) -> ItemPage:
    """Items ``offset`` to ``offset + limit`` in the store's id order (stable between calls while
    nothing is written), with the total that matches ``filter``."""
    if offset < 0 or limit < 1:
        raise EmbedderError("--offset must be 0 or more and --limit 1 or more")
    total = store.count(filter)
    items = []
    for n, record in enumerate(store.scroll(filter)):
        if n >= offset + limit:
            break
        if n >= offset:
            items.append(summary(record))
    return ItemPage(items, offset, total)


def delete_items(settings: Settings, store: VectorStore, refs: list[str]) -> list[dict]:
    """Delete items named by id or path; each goes to the trash first (``embedder trash restore``).

    Raises:
        EmbedderError: a reference matches no item (nothing is deleted then).
    """
    records, missing = [], []
    for ref in refs:
        record = find_item(store, ref, with_vectors=False)
        if record is None:
            missing.append(ref)
        else:
            records.append(record)
    if missing:
        raise EmbedderError("no such item: " + ", ".join(missing) + " ('embedder items list' shows what is stored)")
    ids = list(dict.fromkeys(r.id for r in records))
    with Trash(settings, store) as trash:
        trash.put(ids, "deleted by hand")
    store.delete(ids)
    return [summary(r) for r in {r.id: r for r in records}.values()]


def item_transcript(store: VectorStore, ref: str) -> dict:
    """An item's stored transcript (``{"model", "language", "lines": [...]}``).

    Raises:
        EmbedderError: no such item, or it has no transcript (saying why: speech recognition was
        off, or the item has no sound).
    """
    record = find_item(store, ref, with_vectors=False)
    if record is None:
        raise EmbedderError(f"no item '{ref}' in the collection")
    transcript = record.payload.get("transcript")
    if transcript is None:
        why = (
            "it has no sound"
            if "audio" not in (record.payload.get("modalities") or [])
            else "it was ingested with speech_model=none (or before transcripts); 'embedder reembed' with "
            "speech_model=pocketsphinx transcribes it"
        )
        raise EmbedderError(f"item {record.payload.get('path') or record.id} has no transcript: {why}")
    return transcript
