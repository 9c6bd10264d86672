"""Point ids: how files, items and users become Qdrant point ids, in one place.

Ids are UUIDv5 in three namespaces, so the same input always maps to the same point:

* a media file's point: its content hash (:func:`point_id`), so copies and renames are one point;
* an item known only from the interaction log: its key (:func:`item_point_id`);
* a user: their id as stored (:func:`user_point_id`; a keyed hash when ids are pseudonymous).
"""

from __future__ import annotations

import uuid

ID_NAMESPACE = uuid.UUID("6f1c1e52-3f0e-4f4a-9d55-5a0c2d1e7b10")
ITEM_NAMESPACE = uuid.UUID("2b0e8a44-9c57-4f5e-8f0b-3f9d9a6c1e21")
USER_NAMESPACE = uuid.UUID("7d4c1f0a-6e2b-4a8f-b1c3-5e9f0d2a7b64")


def point_id(sha256: str) -> str:
    """The point id of a file's content."""
    return str(uuid.uuid5(ID_NAMESPACE, sha256))


def item_point_id(item: str) -> str:
    """The point id of an item known only from interactions (no media)."""
    return str(uuid.uuid5(ITEM_NAMESPACE, item))


def user_point_id(user: str) -> str:
    """The point id of a user in the users collection."""
    return str(uuid.uuid5(USER_NAMESPACE, user))


def is_point_id(text: str) -> bool:
    """Whether ``text`` has the form of a point id (a UUID)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def resolve_items(keys: list[str], media) -> dict[str, str]:
    """Map interaction item keys to point ids: an ingested point id, an ingested path, or a new id.

    ``media`` is the media collection (a :class:`~embedder.store.base.VectorStore`; not imported
    here, so that the store can import its ids from this module).

    Items are matched to media by point id or by (absolute) path; anything else is an item without
    media and gets a stable id of its own.
    """
    out: dict[str, str] = {}
    candidates = [k for k in keys if is_point_id(k)]
    for record in media.retrieve(candidates):
        out[record.id] = record.id
    rest = [k for k in keys if k not in out]
    for start in range(0, len(rest), 512):
        chunk = set(rest[start : start + 512])
        for record in media.scroll(filter={"paths": sorted(chunk)}):
            for p in record.payload.get("paths") or []:
                if p in chunk:
                    out[p] = record.id
        for record in media.scroll(filter={"item": sorted(chunk)}):  # trained before: keep its point
            out.setdefault(record.payload["item"], record.id)
    for k in keys:
        out.setdefault(k, item_point_id(k))
    return out
