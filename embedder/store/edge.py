"""Embedded back-end: Qdrant Edge (the Qdrant engine in-process) in a directory.

Layout: ``<store>/<collection>/`` is one Edge shard; ``<store>/.<collection>.lock`` is held
(flock) while a process has the collection open, so a second process gets a clear error instead
of corrupting it.

The engine itself loads on the first read that needs it, not when the collection is opened:
loading reads the whole collection, and small reads a command repeats against an unchanged
collection (counts, facets, the points under a folder) are answered from
:mod:`embedder.store.reads` instead.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embedder.errors import StoreError, one_line
from embedder.store.base import (
    IDF_SPARSE_VECTORS,
    INDEXED_FIELDS,
    LEXICAL,
    MULTIVECTORS,
    NUMERIC_INDEXED_FIELDS,
    RRF_K,
    SEARCH_TEXT,
    VECTOR_DISTANCES,
    Filter,
    Hit,
    Nearest,
    PointRecord,
    QuerySpec,
    Sparse,
    SparseNearest,
    VectorStore,
    check_dims,
    filter_conditions,
    is_media_schema,
)
from embedder.store.integrity import NEXT_STEP, checked_fused, checked_records, checked_search
from embedder.store.reads import MAX_ENTRY_RECORDS, ReadCache, read_key

EDGE_VECTOR_DIMS_FILE = "embedder-dims.json"
EDGE_SPARSE_FILE = "embedder-sparse.json"  # the sparse named vectors added to the collection
# Qdrant Edge dies with SIGBUS (no message, nothing to catch) when it touches a page of its
# memory-mapped files that the filesystem cannot allocate. Its files are preallocated sparse
# (32 MB per named vector chunk, the payload index, the WAL), and opening a collection may fill
# some of those holes (see OPEN_FILLS). So the free space must cover the holes of the collection's
# files, plus a margin, before the engine writes, and the holes opening fills before it opens; a
# new collection takes about 22 MB before the first point.
CREATE_MB = 64.0
MARGIN_MB = 16.0
# What opening fills, measured on tmpfs: the payload indexes' pages and trackers (4 MB and 1 MB
# per index), once, at the first open after they were made; vector chunks and the WAL stay sparse.
# So a read needs free space only for those holes, and none on a collection opened before.
OPEN_FILLS = "payload_index"  # a folder name inside each segment
DEFAULT_MIN_FREE_MB = 256.0


def free_mb(path: Path) -> float:
    """Free space, in MB, for unprivileged writers on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 1e6


def holes_mb(path: Path) -> tuple[float, float]:
    """How much the sparse files under ``path`` could still claim (apparent size minus allocated),
    in MB: all of them (what writes may fill), and those an open fills (``OPEN_FILLS``); one walk."""
    total = opening = 0
    for file in path.rglob("*"):
        try:
            st = file.stat()
        except OSError:
            continue
        if file.is_file():
            hole = max(0, st.st_size - st.st_blocks * 512)
            total += hole
            opening += hole if OPEN_FILLS in file.relative_to(path).parts[:-1] else 0
    return total / 1e6, opening / 1e6


LOCK_WAIT_S = 5.0  # how long opening waits for another process's short hold before giving up
RESUME_WAIT_S = 120.0  # how long a paused writer waits for readers to let go
WARM_EXIT_WAIT_S = 30.0  # how long a writer waits for a warm query process (embedder.warm) it asked to exit
SERVE_FILE = ".serve.json"  # written by 'embedder serve' beside an embedded store it holds: its URL and pid


def _to_list(vec) -> list[float]:
    return np.asarray(vec, dtype=np.float32).tolist()


def _to_edge(vec):
    """A named vector as the engine takes it: a list (of lists), or its ``SparseVector``."""
    if isinstance(vec, Sparse):
        from qdrant_edge import SparseVector

        return SparseVector(list(vec.indices), list(vec.values))
    return _to_list(vec)


def _from_edge(name: str, vec, wanted) -> np.ndarray | Sparse | None:
    """A named vector the engine returned; sparse ones only when ``wanted`` names them (a plain
    ``with_vectors=True`` read is for the dense vectors every caller knows how to handle)."""
    if hasattr(vec, "indices"):
        if isinstance(wanted, (list, tuple)) and name in wanted:
            return Sparse.of(vec.indices, vec.values)
        return None
    return np.asarray(vec, dtype=np.float32)


def _named_vectors(raw, wanted) -> dict:
    out = {}
    for name, vec in (raw or {}).items():
        converted = _from_edge(name, vec, wanted)
        if converted is not None:
            out[name] = converted
    return out


def edge_text_index(language: str):
    """The full-text index of :data:`SEARCH_TEXT`: words, lower-cased, stemmed and stop-worded in
    ``language``, with phrase matching."""
    from qdrant_edge import Language, SnowballLanguage, SnowballParams, StopwordsSet, TextIndexParams, TokenizerType

    name = language.capitalize()
    return TextIndexParams(
        tokenizer=TokenizerType.Word,
        lowercase=True,
        phrase_matching=True,
        stemmer=SnowballParams(getattr(SnowballLanguage, name)) if hasattr(SnowballLanguage, name) else None,
        stopwords=StopwordsSet(languages={getattr(Language, name)}) if hasattr(Language, name) else None,
    )


def edge_filter(filter: Filter | None, exclude_ids: list[str] | None = None, lacking: str | None = None):
    """Our filter (plus ids to leave out and a vector points must lack) as a Qdrant Edge ``Filter``."""
    if not filter and not exclude_ids and not lacking:
        return None
    from qdrant_edge import (
        FieldCondition,
        HasIdCondition,
        HasVectorCondition,
        MatchAny,
        MatchPhrase,
        MatchValue,
        RangeFloat,
    )
    from qdrant_edge import (
        Filter as EdgeFilter,
    )

    must_not = ([HasIdCondition(set(exclude_ids))] if exclude_ids else []) + (
        [HasVectorCondition(lacking)] if lacking else []
    )
    must = []
    for key, kind, value in filter_conditions(filter):
        if kind == "range":
            must.append(
                FieldCondition(key=key, range=RangeFloat(gt=value.gt, gte=value.gte, lt=value.lt, lte=value.lte))
            )
        elif kind == "any":
            must.append(FieldCondition(key=key, match=MatchAny(any=value)))
        elif kind == "phrase":
            must.append(FieldCondition(key=key, match=MatchPhrase(phrase=value)))
        else:
            must.append(FieldCondition(key=key, match=MatchValue(value=value)))
    return EdgeFilter(must=must or None, must_not=must_not or None)


def _conditions(filter: Filter | None) -> list:
    """A filter as a canonical list of conditions: the same filter always gives the same key."""
    return sorted((list(c) for c in filter_conditions(filter)), key=lambda c: json.dumps(c, default=str))


def _readable(method):
    """Turn the engine's errors on damaged files into a StoreError that says what to do (reads and writes)."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._thread_lock:  # one engine call at a time: pause() must not close a shard in use
            self._resume()
            try:
                return method(self, *args, **kwargs)
            except StoreError:
                raise
            except Exception as exc:
                if "No space left on device" in str(exc):
                    raise StoreError(
                        f"the disk holding {self.root} is full (no space left on the device) while writing "
                        f"collection '{self.logical or self.collection}'; free some space and run the command again: "
                        "nothing stored is lost ('embedder check' verifies it)"
                    ) from None
                if "Service" not in str(exc) and "out of bounds" not in str(exc):
                    raise
                raise StoreError(
                    f"collection '{self.logical or self.collection}' in {self.root} is damaged ({one_line(exc, 160)}); "
                    f"{NEXT_STEP}"
                ) from None

    return wrapper


class _Pages:
    """One scroll request at a time, through the same error translation as the other reads."""

    def __init__(self, store):
        self.store = store

    def _resume(self):
        self.store._resume()

    @property
    def _thread_lock(self):
        return self.store._thread_lock

    @_readable
    def __call__(self, request):
        return self.store._require().scroll(request)

    # _readable reads these for its message
    @property
    def logical(self):
        return self.store.logical

    @property
    def collection(self):
        return self.store.collection

    @property
    def root(self):
        return self.store.root


def _ask_to_exit(url: str) -> None:
    """Ask the warm query process at ``url`` to exit (``POST /warm/exit``); best effort."""
    import urllib.request

    request = urllib.request.Request(f"{url}/warm/exit", method="POST", data=b"")
    key = os.environ.get("EMBEDDER_SERVE_API_KEY")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        urllib.request.urlopen(request, timeout=5.0).close()
    except OSError:
        pass


class EdgeStore(VectorStore):
    """A collection in an embedded Qdrant Edge shard. Safe to share between threads: engine calls
    (and pause, close) take one lock, so a service can read while its ingest job writes."""

    backend = "edge"

    def __init__(
        self,
        root: str | Path,
        collection: str,
        wait_s: float = LOCK_WAIT_S,
        load: bool = True,
        min_free_mb: float = DEFAULT_MIN_FREE_MB,
    ):
        """Open (and lock) a collection; ``load=False`` only takes the lock (snapshots copy the files).

        The engine loads when a read or write first needs it (see the module's docstring).
        Writes stop with a StoreError when the filesystem has less than ``min_free_mb`` free.
        """
        self._thread_lock = threading.RLock()  # the store may be shared between threads (a service)
        self.min_free_mb = min_free_mb
        self.root = Path(root).expanduser()
        self.collection = collection
        self.path = self.root / collection
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self.root}: {exc.strerror or exc}") from None
        self._lock_fd = self._acquire_lock(wait_s)
        self._shard = None
        self._may_load = load
        self._paused = False
        self._holes_mb = 0.0
        self._writes = 0  # writes by this process: a read that spans one is not kept
        self.engine_loads = 0  # how often this store loaded the engine (tests, benchmarks)
        self._reads = ReadCache(self.path)
        if load:
            self._reads.load()

    # -- lifecycle ---------------------------------------------------------------------------
    def _engine(self):
        """The loaded shard, loading it now if needed; ``None`` when the collection does not exist."""
        if self._shard is None and self._may_load and (self.path / EDGE_VECTOR_DIMS_FILE).is_file():
            # All holes: what writes may claim (they keep the full guard); opening fills only some.
            self._holes_mb, opening = holes_mb(self.path)
            if opening > 0:  # the first open after writes fills the payload indexes' pages; later ones nearly none
                self._require_space(opening + min(MARGIN_MB, opening), "open")
            self._shard = self._load()
            self.engine_loads += 1
        return self._shard

    @property
    def engine_loaded(self) -> bool:
        """Whether the engine is loaded now (reads answered from kept answers do not load it)."""
        return self._shard is not None

    def _before_write(self) -> None:
        self._writes += 1
        self._reads.invalidate()

    def forget_reads(self) -> None:
        """Drop the kept answers (``embedder check`` reads the engine itself)."""
        with self._thread_lock:
            self._reads.invalidate()

    def _kept(self, key: str, read):
        """The kept answer for ``key``, or ``read()``'s, then kept."""
        found = self._reads.get(key)
        if found is None:
            found = read()
            self._reads.put(key, found)
        return found

    def pause(self) -> None:
        """Close the shard and release the collection's lock until the next call needs them.

        A long writer (ingest) pauses while it decodes and encodes, so other processes (a search,
        'status') can open the collection between its writes instead of failing after 5 s.
        """
        with self._thread_lock:
            if self._paused or self._lock_fd is None:
                return
            self.close()
            self._paused = True

    def _resume(self) -> None:
        if self._paused:
            # Readers hold the collection for a moment: wait longer for them than a reader waits.
            self._lock_fd = self._acquire_lock(RESUME_WAIT_S)
            self._paused = False
            self._reads.load()  # another process may have written meanwhile

    def _acquire_lock(self, wait_s: float) -> int:
        lock_path = self.root / f".{self.collection}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        asked_warm = False
        while True:  # a job that holds the collection for a moment (a batch read) is waited for
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                busy = exc.errno in (errno.EAGAIN, errno.EACCES)
                if busy and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                warm = self._warm_server(holder)
                if busy and warm and not asked_warm:
                    # A warm query process (embedder.warm) is a cache, not a service: it steps aside.
                    _ask_to_exit(warm)
                    asked_warm = True
                    deadline = time.monotonic() + WARM_EXIT_WAIT_S
                    continue
                os.close(fd)
                if not busy:
                    raise
                served = self._served_by(holder)
                if served:
                    raise StoreError(
                        f"collection '{self.collection}' in store {self.root} is held by 'embedder serve' "
                        f"(pid {holder}) "
                        f"at {served}: send requests to its HTTP API ({served}/openapi.json), or stop it first"
                    ) from None
                raise StoreError(
                    f"collection '{self.collection}' in store {self.root} is in use by another embedder process "
                    f"(pid {holder}); wait for it to finish, or use a Qdrant server for concurrent access"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _marker(self, pid: str) -> dict:
        """The marker of the ``embedder serve`` process ``pid`` that holds this store, if it is one."""
        try:
            served = json.loads((self.root / SERVE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return served if isinstance(served, dict) and str(served.get("pid")) == pid else {}

    def _served_by(self, pid: str) -> str | None:
        """The URL of the ``embedder serve`` process ``pid`` that holds this store, if it is one."""
        return self._marker(pid).get("url")

    def _warm_server(self, pid: str) -> str | None:
        """The URL of the warm query process ``pid`` (embedder.warm) that holds this store, if it is one."""
        marker = self._marker(pid)
        return marker.get("url") if marker.get("warm") else None

    def _load(self):
        from qdrant_edge import EdgeShard

        try:
            return EdgeShard.load(str(self.path))
        except Exception as exc:
            raise StoreError(f"cannot open collection at {self.path}: {one_line(exc, 200)}; {NEXT_STEP}") from None

    def close(self) -> None:
        with self._thread_lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
            if self._lock_fd is not None:
                if self._may_load:
                    self._reads.save()  # while the lock is still held
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- schema ------------------------------------------------------------------------------
    def collection_dims(self) -> dict[str, int] | None:
        dims_file = self.path / EDGE_VECTOR_DIMS_FILE
        if not dims_file.is_file():
            return None
        return json.loads(dims_file.read_text())

    def sparse_names(self) -> set[str]:
        sparse_file = self.path / EDGE_SPARSE_FILE
        if not (self.path / EDGE_VECTOR_DIMS_FILE).is_file() or not sparse_file.is_file():
            return set()
        return set(json.loads(sparse_file.read_text()))

    @_readable
    def ensure_sparse(self, name: str) -> None:
        have = self.sparse_names()
        if name in have:
            return
        from qdrant_edge import Modifier, UpdateOperation

        shard = self._require()
        self._require_space(max(self.min_free_mb, self._holes_mb + MARGIN_MB), "write to")
        self._before_write()
        modifier = Modifier.Idf if name in IDF_SPARSE_VECTORS else None
        shard.update(UpdateOperation.create_sparse_vector(name, modifier=modifier))
        if name == LEXICAL:  # quoted phrases match through a full-text index on the same words
            shard.update(UpdateOperation.create_field_index(SEARCH_TEXT, edge_text_index(self.text_language)))
        shard.flush()
        # Written after the engine made it, so the file never names a vector the shard lacks.
        (self.path / EDGE_SPARSE_FILE).write_text(json.dumps(sorted(have | {name})))

    @_readable
    def delete_vectors(self, ids: list[str], names: list[str]) -> None:
        if ids and names and self._engine() is not None:
            from qdrant_edge import UpdateOperation

            self._before_write()
            self._shard.update(UpdateOperation.delete_vectors(list(ids), list(names)))
            self._shard.flush()

    def ensure_collection(self, dims: dict[str, int]) -> None:
        self._resume()
        existing = self.collection_dims()
        if existing is not None:
            check_dims(existing, dims, f"collection '{self.collection}' in {self.root}")
            return
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeShard,
            EdgeVectorParams,
            MultiVectorComparator,
            MultiVectorConfig,
            PayloadSchemaType,
            UpdateOperation,
        )

        self._before_write()
        if self.path.exists():  # a creation cut short (a full disk, a kill): never complete, safe to redo
            shutil.rmtree(self.path)
        self._require_space(max(CREATE_MB, self.min_free_mb), "create")
        distance = {"cosine": Distance.Cosine, "dot": Distance.Dot}
        config = EdgeConfig(
            vectors={
                name: EdgeVectorParams(
                    size=size,
                    distance=distance[VECTOR_DISTANCES.get(name, "cosine")],
                    on_disk=True,
                    multivector_config=MultiVectorConfig(MultiVectorComparator.MaxSim)
                    if name in MULTIVECTORS
                    else None,
                )
                for name, size in dims.items()
            }
        )
        try:
            self._shard = EdgeShard.create(str(self.path), config)
            for name in INDEXED_FIELDS:
                self._shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))
            for name in NUMERIC_INDEXED_FIELDS:
                self._shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Float))
            # Written last: its presence means the shard was fully created.
            (self.path / EDGE_VECTOR_DIMS_FILE).write_text(json.dumps(dims))
        except Exception as exc:  # leave nothing half-made behind
            if self._shard is not None:
                self._shard.close()
                self._shard = None
            shutil.rmtree(self.path, ignore_errors=True)
            raise StoreError(
                f"cannot create collection '{self.collection}' in {self.root}: {one_line(exc, 200)}"
            ) from None
        if is_media_schema(dims):  # a media collection: lexical search from its first item
            self.ensure_sparse(LEXICAL)
        if self.on_create is not None:
            self.on_create()

    def _require_space(self, need_mb: float, doing: str) -> None:
        free = free_mb(self.root)
        if free < need_mb:
            raise StoreError(
                f"not enough free space to {doing} collection '{self.logical or self.collection}' in {self.root}: "
                f"{free:.0f} MB free, {need_mb:.0f} MB needed (its preallocated files, or setting min_free_mb); "
                "free some space and run the command again: nothing stored is lost"
            )

    def _require(self):
        shard = self._engine()
        if shard is None:
            raise StoreError(
                f"collection '{self.logical or self.collection}' does not exist in {self.root}; "
                "run 'embedder ingest' first"
            )
        return shard

    # -- writes: each calls _before_write() before it reaches the engine (embedder.store.reads) --
    @_readable
    def upsert(self, points: list[PointRecord]) -> None:
        if not points:
            return
        from qdrant_edge import Point, UpdateOperation

        shard = self._require()
        self._require_space(max(self.min_free_mb, self._holes_mb + MARGIN_MB), "write to")
        self._before_write()
        edge_points = [Point(p.id, {k: _to_edge(v) for k, v in p.vectors.items()}, p.payload) for p in points]
        shard.update(UpdateOperation.upsert_points(edge_points))
        shard.flush()

    @_readable
    def update_vectors(self, vectors: dict[str, dict[str, np.ndarray]]) -> None:
        if not vectors:
            return
        from qdrant_edge import PointVectors, UpdateOperation

        shard = self._require()
        self._require_space(max(self.min_free_mb, self._holes_mb + MARGIN_MB), "write to")
        self._before_write()
        ops = [PointVectors(pid, {k: _to_edge(v) for k, v in named.items()}) for pid, named in vectors.items()]
        shard.update(UpdateOperation.update_vectors(ops))
        shard.flush()

    @_readable
    def set_payload(self, ids: list[str], payload: dict[str, Any]) -> None:
        if ids:
            from qdrant_edge import UpdateOperation

            shard = self._require()
            self._require_space(max(self.min_free_mb, self._holes_mb + MARGIN_MB), "write to")
            self._before_write()
            # No flush: the engine's write-ahead log already makes the update survive a kill -9
            # (tested), and flushing per call made per-point payload updates (write_cf) take minutes.
            shard.update(UpdateOperation.set_payload(list(ids), payload))

    @_readable
    def delete(self, ids: list[str]) -> None:
        if ids and self._engine() is not None:
            from qdrant_edge import UpdateOperation

            self._before_write()
            self._shard.update(UpdateOperation.delete_points(list(ids)))
            self._shard.flush()

    # -- reads -------------------------------------------------------------------------------
    @staticmethod
    def _record(r, with_vectors) -> PointRecord:
        vectors = _named_vectors(r.vector, with_vectors) if with_vectors and isinstance(r.vector, dict) else {}
        return PointRecord(id=str(r.id), vectors=vectors, payload=dict(r.payload or {}))

    @_readable
    def retrieve(self, ids: list[str], with_vectors: bool = False) -> list[PointRecord]:
        if not ids or self._engine() is None:
            return []
        records = self._shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)
        return checked_records([self._record(r, with_vectors) for r in records], self.logical or self.collection)

    def scroll(
        self, filter: Filter | None = None, with_vectors: bool = False, batch: int = 256
    ) -> Iterator[PointRecord]:
        from qdrant_edge import ScrollRequest

        key = None if with_vectors else read_key("scroll", _conditions(filter))
        with self._thread_lock:
            self._resume()  # before looking at the shard: a paused store has closed it
            kept = None if key is None else self._reads.get(key)
            if kept is None and self._engine() is None:
                return
            writes = self._writes
        if kept is not None:
            for pid, payload in kept:
                yield PointRecord(id=pid, vectors={}, payload=payload)
            return
        offset = None
        read = _Pages(self)
        answer = []
        while True:
            records, offset = read(
                ScrollRequest(
                    offset=offset, limit=batch, filter=edge_filter(filter), with_payload=True, with_vector=with_vectors
                )
            )
            for r in records:
                record = self._record(r, with_vectors)
                checked_records([record], self.logical or self.collection)
                if key is not None and answer is not None:
                    answer.append((record.id, record.payload))
                    if len(answer) > MAX_ENTRY_RECORDS:  # too big to keep: stop collecting
                        answer = None
                yield record
            if offset is None:
                break
        with self._thread_lock:
            if key is not None and answer is not None and writes == self._writes:  # nothing written in between
                self._reads.put(key, answer)

    @_readable
    def page(self, offset=None, limit=256, with_vectors=False, raw=False):
        if self._engine() is None:
            return [], None
        from qdrant_edge import ScrollRequest

        records, nxt = self._shard.scroll(
            ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=with_vectors)
        )
        page = [self._record(r, with_vectors) for r in records]
        return (page if raw else checked_records(page, self.logical or self.collection)), nxt

    @_readable
    def facet(self, key: str, limit: int = 100) -> dict[str, int] | None:
        return self._kept(read_key("facet", key, limit), lambda: self._engine_facet(key, limit))

    def _engine_facet(self, key: str, limit: int) -> dict[str, int] | None:
        if self._engine() is None:
            return {}
        from qdrant_edge import FacetRequest

        try:
            response = self._shard.facet(FacetRequest(key=key, limit=limit, exact=True))
        except Exception as exc:  # no index on that key (a collection made before it was indexed)
            if "index" in str(exc).lower():
                return None
            raise
        return {str(h.value): int(h.count) for h in response.hits}

    @_readable
    def ensure_indexes(self) -> None:
        if self._engine() is None:
            return
        from qdrant_edge import PayloadSchemaType, UpdateOperation

        self._before_write()  # a new index changes what facets answer

        for name in INDEXED_FIELDS:
            self._shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))

    @_readable
    def count(self, filter: Filter | None = None) -> int:
        def engine_count() -> int:
            if self._engine() is None:
                return 0
            from qdrant_edge import CountRequest

            return int(self._shard.count(CountRequest(exact=True, filter=edge_filter(filter))))

        return self._kept(read_key("count", _conditions(filter)), engine_count)

    @staticmethod
    def _edge_query(spec: QuerySpec):
        from qdrant_edge import Query, RecommendQuery

        if isinstance(spec, SparseNearest):
            return Query.Nearest(_to_edge(spec.vector), using=spec.using)
        if isinstance(spec, Nearest):
            vector = np.asarray(spec.vector, np.float32)
            if spec.using in MULTIVECTORS and vector.ndim == 1:
                vector = vector[None, :]  # one query vector: MaxSim scores each point by its best segment
            if spec.diversity:  # Edge's MMR takes the relevance weight, lambda = 1 - diversity
                from qdrant_edge import Mmr

                return Mmr(_to_list(vector), 1.0 - spec.diversity, spec.candidates, using=spec.using)
            return Query.Nearest(_to_list(vector), using=spec.using)
        rq = RecommendQuery(
            positives=[_to_list(v) for v in spec.positives], negatives=[_to_list(v) for v in spec.negatives]
        )
        return Query.RecommendBestScore(rq, using=spec.using)

    def _hits(self, points, with_vectors) -> list[Hit]:
        hits = []
        for p in points:
            vectors = _named_vectors(p.vector, with_vectors) if with_vectors else {}
            hits.append(Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}), vectors=vectors))
        return hits

    @_readable
    def search(self, spec, limit=10, filter=None, exclude_ids=None, with_vectors=False) -> list[Hit]:
        from qdrant_edge import QueryRequest

        request = QueryRequest(
            limit=limit,
            query=self._edge_query(spec),
            filter=edge_filter(filter, exclude_ids, spec.lacking),
            with_payload=True,
            with_vector=with_vectors,
        )
        return checked_search(
            self._hits(self._require().query(request), with_vectors), self.logical or self.collection, spec
        )

    @_readable
    def fused(
        self,
        branches,
        limit=10,
        filter=None,
        exclude_ids=None,
        weights=None,
        method="rrf",
        with_vectors=False,
        rrf_k=RRF_K,
    ) -> list[Hit]:
        from qdrant_edge import Fusion, Prefetch, QueryRequest

        prefetches = [
            Prefetch(limit=n, query=self._edge_query(spec), filter=edge_filter(filter, exclude_ids, spec.lacking))
            for spec, n in branches
        ]
        fusion = Fusion.Dbsf() if method == "dbsf" else Fusion.Rrf(k=rrf_k, weights=weights)
        request = QueryRequest(
            limit=limit, prefetches=prefetches, query=fusion, with_payload=True, with_vector=with_vectors
        )
        return checked_fused(
            self._hits(self._require().query(request), with_vectors),
            self.logical or self.collection,
            len(branches),
            weights,
            method,
            rrf_k,
        )

    @_readable
    def top_by(self, key, limit=10, filter=None, exclude_ids=None) -> list[Hit]:
        from qdrant_edge import Direction, OrderBy, ScrollRequest

        records, _ = self._require().scroll(
            ScrollRequest(
                limit=limit,
                filter=edge_filter(filter, exclude_ids),
                with_payload=True,
                order_by=OrderBy(key, direction=Direction.Desc),
            )
        )
        return [Hit(id=str(r.id), score=float(r.order_value or 0.0), payload=dict(r.payload or {})) for r in records]

    def info(self) -> dict[str, Any]:
        self._resume()
        # Blocks on disk, not apparent size: Edge preallocates sparse segment files.
        size = sum(f.stat().st_blocks * 512 for f in self.path.rglob("*") if f.is_file())
        return {
            "backend": self.backend,
            "location": str(self.root),
            "collection": self.collection,
            "alias": self.logical,
            "exists": self.collection_dims() is not None,
            "points": self.count(),
            "vectors": self.collection_dims() or {},
            "sparse_vectors": sorted(self.sparse_names()),
            "size_bytes": size,
        }
