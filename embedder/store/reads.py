"""Answers to an embedded collection's small reads, kept beside it until the next write.

Opening a Qdrant Edge collection reads the whole collection into memory (0.3 s and 570 MB at
100,000 items, seconds and gigabytes at a million; see ``benchmarks/scale``). The commands run
most often against a collection that has not changed since their last run (a scheduled ingest
of a folder where nothing changed, a ``status`` from a dashboard) need only a few counts, facets
and the points under one folder. Those answers are kept here, in ``embedder-reads.json`` inside
the collection's directory, so such a command answers without opening the engine at all.

Why this is safe:

- Every write goes through :class:`~embedder.store.edge.EdgeStore`, which calls
  :meth:`ReadCache.invalidate` first. That deletes the file (and syncs the directory) *before*
  the engine changes, so a writer killed half-way leaves no answer behind that predates it.
- The file is written only by the process holding the collection's lock, when it closes or
  pauses the collection, with the answers read since its last write. Another process reads it
  only after taking that lock.
- The file lives inside the collection's directory, so snapshots copy it and restores replace
  it together with the data it describes, and dropping a collection removes it.
- The file carries an HMAC-SHA256 of its answers under a random key kept beside it
  (``embedder-reads.key``, mode 0600, one per collection). A file edited by hand, written by
  another tool, or copied from another collection does not verify and is ignored: the engine
  answers instead. (Someone who can read the key can forge a file; they can also rewrite the
  collection itself.)

Only small answers are kept (see ``MAX_ENTRY_BYTES`` and ``MAX_FILE_BYTES``): a read of a
folder of a million items opens the engine as before.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any

READS_FILE = "embedder-reads.json"
KEY_FILE = "embedder-reads.key"
FORMAT = 3
MAX_ENTRY_BYTES = 4_000_000  # about 10,000 items' payloads: bigger reads are not kept
MAX_ENTRY_RECORDS = 20_000  # a scroll stops collecting past this, before measuring its bytes
MAX_FILE_BYTES = 16_000_000  # the least recently used answers go first past this
MAX_ENTRIES = 256


class ReadCache:
    """Kept answers of one collection, keyed by a canonical description of the read."""

    def __init__(self, collection_dir: Path):
        self.path = Path(collection_dir) / READS_FILE
        self.key_path = Path(collection_dir) / KEY_FILE
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # key -> (answer, its size)
        self._bytes = 0
        self._unsaved = False
        self._on_disk = False
        self.hits = 0  # answers served from here, for tests and benchmarks

    def load(self) -> None:
        """Replace what is held with the file's answers (none when it is missing or unreadable)."""
        self._entries.clear()
        self._bytes = 0
        self._unsaved = False
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError("another format")
            entries = data["entries"]
            expected = self._mac(_dumps(entries), create=False)
            if not expected or not hmac.compare_digest(str(data.get("mac", "")), expected):
                raise ValueError("the answers do not verify")  # forged, edited or from another collection
        except FileNotFoundError:
            self._on_disk = False
            return
        except (OSError, ValueError, KeyError, TypeError):
            self._on_disk = True  # a damaged file is dropped at the next write, or replaced at the next save
            self._unsaved = True
            return
        self._on_disk = True
        for key, size, answer in entries:
            self._add(key, answer, size)

    def get(self, key: str) -> Any | None:
        """A copy of the kept answer for ``key``, or ``None``."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return copy.deepcopy(found[0])

    def put(self, key: str, answer: Any) -> None:
        """Keep ``answer`` (JSON-compatible) for ``key`` if it is small enough."""
        text = json.dumps(answer, separators=(",", ":"))
        # Kept as read back from JSON: a copy, and the same form it will have after a reload.
        if len(text) <= MAX_ENTRY_BYTES and self._add(key, json.loads(text), len(text)):
            self._unsaved = True

    def _add(self, key: str, answer: Any, size: int) -> bool:
        if size > MAX_ENTRY_BYTES:
            return False
        if key in self._entries:
            self._bytes -= self._entries.pop(key)[1]
        self._entries[key] = (answer, size)
        self._bytes += size
        while self._bytes > MAX_FILE_BYTES or len(self._entries) > MAX_ENTRIES:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
        return True

    def invalidate(self) -> None:
        """Forget every answer, on disk first; called before each write to the collection."""
        if self._on_disk:
            try:
                self.path.unlink(missing_ok=True)
                _sync_dir(self.path.parent)
            except FileNotFoundError:  # the collection directory itself is gone (dropped, being recreated)
                pass
            self._on_disk = False
        self._entries.clear()
        self._bytes = 0
        self._unsaved = False

    def save(self) -> None:
        """Write the held answers if any are new; quietly skipped where the store is read-only."""
        if not self._unsaved or not self.path.parent.is_dir():
            return
        tmp = self.path.with_name(self.path.name + ".partial")
        try:
            entries = _dumps([[k, n, a] for k, (a, n) in self._entries.items()])
            mac = self._mac(entries, create=True)
            with open(tmp, "w") as fh:
                fh.write(f'{{"format":{FORMAT},"mac":"{mac}","entries":{entries}}}')
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return
        self._on_disk = True
        self._unsaved = False

    def _mac(self, entries: str, create: bool) -> str:
        """HMAC-SHA256 of the answers' JSON and the collection's schema, under this collection's key."""
        try:
            key = self.key_path.read_bytes()
        except FileNotFoundError:
            if not create:
                return ""
            key = secrets.token_bytes(32)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
                fh.flush()
                os.fsync(fh.fileno())
        if len(key) < 32:
            return ""
        dims = self.path.parent / "embedder-dims.json"
        schema = dims.read_bytes() if dims.is_file() else b""
        return hmac.new(key, schema + b"\n" + entries.encode(), hashlib.sha256).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key(kind: str, *parts: Any) -> str:
    """A canonical key for a read: its kind and its arguments, in JSON."""
    return kind + " " + json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {type(value).__name__: {k: getattr(value, k) for k in value.__dataclass_fields__}}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot key a read on {type(value).__name__}")
