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


class ItemJoin:
    """Maps the item keys of an interaction log to the keys the store knows, and counts what
    matched: a point id; a path as typed (relative, ``./``, absolute, through a symlink: any path
    to an ingested file, found by its content when not by name) becomes the item's stored path; a
    key of an item known from an earlier log stays itself. ``item_map`` (catalogue id -> item) is
    applied first. What matches nothing is kept as typed: an item without media.

    Call it with a batch of keys; it returns ``{key: stored key}``.
    """

    def __init__(self, media=None, item_map: dict[str, str] | None = None, by_content: bool = True):
        self.media = media
        self.item_map = item_map or {}
        self.by_content = by_content  # off for keys from the network: hashing a named file is their cost
        self._known: dict[str, str] = {}
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def __call__(self, keys) -> dict[str, str]:
        todo = sorted({k for k in keys if k not in self._known})
        if todo:
            self._resolve(todo)
        return {k: self._known[k] for k in keys}

    def _resolve(self, keys: list[str]) -> None:
        import os

        mapped = {k: self.item_map.get(k, k) for k in keys}
        as_paths = {k: os.path.abspath(os.path.expanduser(v)) for k, v in mapped.items() if not is_point_id(v)}
        if self.media is None:  # no store yet: a file's path is made absolute, so a later ingest joins it
            for key, value in mapped.items():
                exists = key in as_paths and os.path.isfile(as_paths[key])
                self._known[key] = as_paths[key] if exists else value
                self.unmatched.add(key)
            return
        real = {k: os.path.realpath(p) for k, p in as_paths.items()}  # a link's target is often the stored path
        wanted = sorted(set(mapped.values()) | set(as_paths.values()) | set(real.values()))
        ids = (
            resolve_items(wanted, self.media) if self.media.collection_dims() else {w: item_point_id(w) for w in wanted}
        )
        records = {r.id: r for r in self.media.retrieve(sorted(set(ids.values())))} if ids else {}
        for key, value in mapped.items():
            candidates = [value, *([as_paths[key], real[key]] if key in as_paths else [])]
            found = next((records[ids[c]] for c in candidates if ids[c] in records), None)
            if found is None and self.by_content and key in as_paths and os.path.isfile(as_paths[key]):
                found = self._by_content(as_paths[key])
            if found is None:
                self._known[key] = value
                self.unmatched.add(key)
            else:
                self._known[key] = found.payload.get("path") or found.payload.get("item") or found.id
                self.matched.add(key)

    def _by_content(self, path: str):
        """The stored item whose content this file has (a copy, or a name through a link)."""
        from embedder.media.discover import hash_file

        try:
            found = self.media.retrieve([point_id(hash_file(path))])
        except OSError:
            return None
        return found[0] if found else None

    def report(self) -> dict:
        """Distinct item keys that matched the store and that did not (with a few examples)."""
        return {
            "items_matched": len(self.matched),
            "items_unmatched": len(self.unmatched),
            "unmatched_examples": sorted(self.unmatched)[:5],
        }


def read_item_map(path) -> dict[str, str]:
    """``--item-map FILE``: a CSV (or TSV) of two columns, catalogue id then item (an ingested path,
    point id or item key); a header line naming them is skipped.

    Raises:
        ValueError: a row without two fields, with its line number.
    """
    import csv

    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        rows = csv.reader(fh, delimiter="\t" if "\t" in sample and "," not in sample else ",")
        for line, row in enumerate(rows, 1):
            if not row or (line == 1 and [c.strip().lower() for c in row[:2]] in (["id", "item"], ["key", "item"])):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"{path}, line {line}: expected two fields, catalogue id and item")
            out[row[0].strip()] = row[1].strip()
    return out
