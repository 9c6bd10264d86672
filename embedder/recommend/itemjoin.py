"""Joining an interaction log's item keys to the items the store holds (``interactions import``
and ``POST /events``): however a path is written, or by point id, or through a catalogue map."""

from __future__ import annotations

import os

from embedder.ids import is_point_id, item_point_id, point_id, resolve_items


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
