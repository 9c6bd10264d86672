"""The engine: one object that owns a library's store, encoders, interaction log and strategies.

``Library`` is embedder's Python API, and what the command line runs on: it opens each piece the
first time something needs it (the encoders, which import torch and take seconds to load, only
for a text query, a new file or an ingest) and keeps it open, so a long-running process (a
notebook, a service, a worker) pays for each once. Opening the same store and collection twice in
one process returns the same object::

    from embedder import Library

    lib = Library.open(store="./store", models="tiny")
    lib.ingest(["./media"])
    hits = lib.search("a red circle", limit=5)
    lib.add_events([("alice", hits[0].id, 1.0)])
    recs = lib.recommend("alice", strategy="hybrid")
    lib.close()
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from embedder.errors import EmbedderError
from embedder.recommend.strategies import STRATEGIES, Strategy, get_strategy

if TYPE_CHECKING:
    from embedder.settings import Settings
    from embedder.store import VectorStore


class Library:
    """A store of media vectors with its encoders, interaction log and recommendation strategies.

    Build it with :meth:`open` (settings from the usual sources plus keyword overrides) or from a
    :class:`~embedder.settings.Settings`. Every method is the library side of a CLI command of the
    same name and returns the same objects the command prints as ``--json``.
    """

    _open: ClassVar[dict[tuple[str, str], "Library"]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()
    strategies: ClassVar[dict[str, Strategy]] = STRATEGIES

    def __init__(self, settings: "Settings"):
        self.settings = settings
        self._media: VectorStore | None = None
        self._users: VectorStore | None = None
        self._encoders = None
        self._log = None
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()  # one SQLite connection, shared by the service's threads
        self._cf_cache = None  # the stored item factors, for folding in new events
        self.closed = False

    @classmethod
    def open(cls, settings: "Settings | None" = None, **overrides) -> "Library":
        """The library for ``settings`` (else :func:`~embedder.settings.load_settings` with
        ``overrides``), reusing one already open in this process for the same store and collection.

        Raises:
            EmbedderError: that store and collection are open here with other settings.
        """
        from embedder.settings import load_settings

        settings = settings if settings is not None else load_settings(**overrides)
        key = (str(settings.store), settings.collection)
        with cls._open_lock:
            found = cls._open.get(key)
            if found is not None and not found.closed:
                if found.settings != settings:
                    raise EmbedderError(f"{settings.store} (collection {settings.collection}) is already open in this "
                                        "process with other settings; close that Library first")
                return found
            library = cls(settings)
            cls._open[key] = library
            return library

    # -- what it owns, opened on first use ---------------------------------------------------

    @property
    def media(self) -> "VectorStore":
        """The media collection (through its alias)."""
        with self._lock:
            self._check_open()
            if self._media is None:
                from embedder.store import open_store

                self._media = open_store(self.settings)
            return self._media

    @property
    def users(self) -> "VectorStore":
        """The users collection (collaborative and trained user vectors)."""
        with self._lock:
            self._check_open()
            if self._users is None:
                from embedder.store import open_store, users_collection

                self._users = open_store(self.settings, collection=users_collection(self.settings))
            return self._users

    @property
    def encoders(self):
        """The encoders the settings name, loaded once (this imports torch)."""
        with self._lock:
            self._check_open()
            if self._encoders is None:
                from embedder.encoders.bundle import load_encoders

                self._encoders = load_encoders(self.settings)
            return self._encoders

    @property
    def log(self):
        """The interaction log."""
        with self._lock:
            self._check_open()
            if self._log is None:
                from embedder.recommend.interactions import InteractionLog, default_log_path

                self._log = InteractionLog(default_log_path(self.settings))
            return self._log

    # -- the work --------------------------------------------------------------------------

    def ingest(self, paths: list[str | Path], *, dry_run: bool = False, removals: str = "guarded",
               retry_failed: bool = False, progress=None):
        """Decode, encode and store files and folders (see :func:`pipelines.ingest.run_ingest`).

        Returns:
            :class:`pipelines.ingest.IngestSummary`.
        """
        from pipelines.ingest import run_ingest

        # The encoders load only if a file needs encoding, and stay loaded for the next call.
        return run_ingest(paths, self.settings, dry_run=dry_run, removals=removals, retry_failed=retry_failed,
                          progress=progress, store=self.media, encoders=self._encoders or (lambda: self.encoders))

    def reembed(self, *, dry_run: bool = False, allow_failures: bool = False, progress=None) -> dict:
        """Find stale vectors and rebuild them (see :func:`pipelines.reembed.run_reembed`).

        The library's open collections are closed first: the rebuild opens collection versions
        itself and may move the alias, and the next use here opens the version it points at.
        """
        from pipelines.reembed import run_reembed

        self._release_stores()
        return run_reembed(self.settings, dry_run=dry_run, allow_failures=allow_failures, progress=progress,
                           encoders=self._encoders or (lambda: self.encoders))

    def search(self, text: str | None = None, *, like: str | Path | None = None, limit: int = 10,
               modality: str = "all", filters: dict | None = None, min_score: float | None = None,
               include_self: bool = False) -> list:
        """Items matching ``text``, or like ``like`` (an ingested item's id or path, or a new file).

        Returns:
            :class:`embedder.search.SearchHit` list, best first, with per-modality scores.
        """
        from embedder.search import check_vector_space, search_like, search_text

        if (text is None) == (like is None):
            raise EmbedderError("give either a search text or --like FILE_OR_ID")
        media = self.media
        if like is not None:
            encoders = self._encoders  # a new file loads them; an ingested item does not need them
            hits = search_like(media, str(like), self.settings, encoders=encoders, limit=limit, modality=modality,
                               filters=filters, include_self=include_self)
        else:
            from embedder.encoders.bundle import configured_model_ids

            if media.collection_dims() is None:
                raise EmbedderError(f"collection '{self.settings.collection}' is empty or missing; "
                                    "run 'embedder ingest' first")
            check_vector_space(media, configured_model_ids(self.settings))  # before seconds of model loading
            hits = search_text(media, self.encoders, text, weights=self.settings.fusion_weights, limit=limit,
                               modality=modality, filters=filters)
        return [h for h in hits if min_score is None or h.score >= min_score]

    def history(self, user: str) -> list:
        """The user's events, oldest first (``user`` as given: hashed when ids are pseudonymous)."""
        with self._log_lock:
            return self.log.for_user(self.settings.stored_user(user))

    def recommend(self, user: str, *, strategy: str = "hybrid", limit: int = 10, exclude_seen: bool = True,
                  query: str | None = None, filters: dict | None = None):
        """Items for ``user`` by a strategy of :data:`embedder.recommend.strategies.STRATEGIES`.

        A user with no events gets popular items; with ``query``, popular items among those
        matching that text (cold start).

        Returns:
            :class:`embedder.recommend.queries.RecommendResult`; each item names its branches.
        """
        from embedder.recommend.queries import RecommendResult, popular_items, recommend_for_user

        chosen = get_strategy(strategy)
        stored = self.settings.stored_user(user)
        with self._log_lock:
            history = self.log.for_user(stored)
        if not history and query:
            hits = self.search(query, limit=limit * 5)
            return RecommendResult(user=stored, strategy=chosen.name, used=["popular", "text"],
                                   items=popular_items(self.media, limit=limit, text_hits=hits),
                                   note="no interactions for this user: popular items matching the text")
        return recommend_for_user(stored, history, self.media, self._users_if_any(), limit=limit,
                                  strategy=chosen.name, exclude_seen=exclude_seen, filter=filters)

    def similar(self, item: str, *, by: str = "content", limit: int = 10) -> list:
        """Items like ``item`` (id, ingested path, or interaction item key) by content, cf or both."""
        from embedder.recommend.queries import resolve_item_ref, similar_items

        return similar_items(self.media, resolve_item_ref(self.media, item), by=by, limit=limit)

    def similar_users(self, user: str, *, limit: int = 10) -> list[dict]:
        """Users whose taste (``cf`` vectors) is closest to ``user``'s."""
        from embedder.recommend.queries import similar_users

        return similar_users(self.users, self.settings.stored_user(user), limit=limit)

    def add_events(self, events) -> int:
        """Append events and apply them at once (see :meth:`record_events`); returns how many were
        added."""
        return self.record_events(events)["added"]

    def record_events(self, events) -> dict:
        """Append events to the interaction log and make the next recommendation reflect them.

        ``events`` are :class:`~embedder.recommend.interactions.Interaction` objects or
        ``(user, item, weight)`` tuples. At once: the content branch uses the newest positives,
        seen items are excluded, an item's ``popularity`` counts a user's first positive event,
        and each user's ``cf`` vector is recomputed against the stored item factors (the ALS
        fold-in; a new user gets one from their first events). What waits for the next
        ``interactions train``: the item factors themselves, and the fold-in under bm25 weighting.

        Returns:
            ``received``, ``added``, ``popularity_updated`` (items), ``cf_users_updated`` and
            ``cf`` (what happened to the collaborative vectors, in words).
        """
        from embedder.recommend.interactions import Interaction

        rows = [e if isinstance(e, Interaction) else Interaction(self.settings.stored_user(e[0]), e[1], float(e[2]))
                for e in events]
        users = sorted({e.user for e in rows})
        with self._log_lock:
            before = {u: {e.item for e in self.log.for_user(u) if e.weight > 0} for u in users}
            added = self.log.add(rows)
            after = {u: self.log.for_user(u) for u in users}
        report = {"received": len(rows), "added": added, "popularity_updated": 0, "cf_users_updated": 0, "cf": None}
        if not added:
            report["cf"] = "unchanged: no new event"
            return report
        with self._lock:  # one realtime update at a time: popularity is read, then written
            report["popularity_updated"] = self._count_new_positives(before, after)
            report.update(self._fold_in(after))
        return report

    def _count_new_positives(self, before: dict, after: dict) -> int:
        from collections import Counter

        from embedder.ids import resolve_items

        new = {(u, e.item) for u, history in after.items() for e in history if e.weight > 0 and e.item not in before[u]}
        if not new or self.media.collection_dims() is None:
            return 0
        ids = resolve_items(sorted({item for _, item in new}), self.media)
        counts = Counter(ids[item] for _, item in new)
        found = {r.id: r for r in self.media.retrieve(sorted(counts))}
        for pid, n in counts.items():
            if pid in found:
                self.media.set_payload([pid], {"popularity": float(found[pid].payload.get("popularity") or 0) + n})
        return sum(pid in found for pid in counts)

    def _fold_in(self, histories: dict) -> dict:
        import numpy as np

        from embedder.ids import resolve_items, user_point_id
        from embedder.recommend.cf import CFParams, fold_in_user
        from embedder.store import PointRecord

        model = self._cf_items()
        if model is None:
            return {"cf": "no collaborative model yet: 'embedder interactions train' makes one"}
        params = CFParams.from_settings(self.settings)
        if params.weighting == "bm25":
            return {"cf": "waits for the next training: bm25 confidences need the whole interaction matrix"}
        version, ids, factors, gram = model
        row_of = {pid: n for n, pid in enumerate(ids)}
        points = []
        for user, history in histories.items():
            weights: dict[str, float] = {}
            for e in history:
                if e.weight > 0:
                    weights[e.item] = weights.get(e.item, 0.0) + e.weight
            resolved = resolve_items(sorted(weights), self.media)
            pairs = [(row_of[resolved[item]], w) for item, w in weights.items() if resolved[item] in row_of]
            if not pairs:
                continue  # none of their items has factors yet
            vector = fold_in_user([r for r, _ in pairs], [w for _, w in pairs], factors, gram, params)
            vector /= max(float(np.linalg.norm(vector)), 1e-12)  # stored unit length, as write_cf does
            points.append(PointRecord(user_point_id(user), {"cf": vector}, {"user": user, "cf_model": version}))
        if points:
            users = self.users
            if users.collection_dims() is None:
                users.ensure_collection({"cf": factors.shape[1]})
            users.merge(points)
        return {"cf_users_updated": len(points), "cf": f"folded in against {version}"}

    def _cf_items(self):
        """(model version, item point ids, item factors, their Gram matrix) of the stored collaborative
        model, cached until the model changes; ``None`` without one."""
        import numpy as np

        media = self.media
        if media.collection_dims() is None or "cf" not in media.collection_dims():
            return None
        cached = self._cf_cache
        if cached is not None:
            probe = media.retrieve([cached[1][0]])
            if probe and probe[0].payload.get("cf_model") == cached[0]:
                return cached
        ids, vectors, version = [], [], None
        for record in media.scroll(with_vectors=True):
            vec = record.vectors.get("cf")
            if vec is not None and record.payload.get("cf_model"):
                ids.append(record.id)
                vectors.append(vec)
                version = version or record.payload["cf_model"]
        if not ids:
            return None
        factors = np.asarray(vectors, np.float32)
        self._cf_cache = (version, ids, factors, factors.T @ factors)
        return self._cf_cache

    def status(self) -> dict:
        """Back-end, collection, item count, modalities, models and size (``embedder status``)."""
        from embedder.search import collection_status

        return collection_status(self.media)

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close what was opened; the next :meth:`open` builds a new library."""
        with self._lock:
            self._release_stores()
            if self._log is not None:
                self._log.close()
            self._log = self._encoders = None
            self.closed = True
        with self._open_lock:
            key = (str(self.settings.store), self.settings.collection)
            if self._open.get(key) is self:
                del self._open[key]

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _release_stores(self) -> None:
        with self._lock:
            for store in (self._media, self._users):
                if store is not None:
                    store.close()
            self._media = self._users = None
            self._cf_cache = None

    def _check_open(self) -> None:
        if self.closed:
            raise EmbedderError("this Library is closed; open it again with Library.open(...)")

    def _users_if_any(self):
        """The users collection when it exists (recommendation without one falls back to content)."""
        users = self.users
        return users if users.collection_dims() is not None else None
