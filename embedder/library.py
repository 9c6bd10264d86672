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
from embedder.ids import resolve_items
from embedder.recommend.strategies import STRATEGIES, Strategy, get_strategy

if TYPE_CHECKING:
    from embedder.settings import Settings
    from embedder.store import VectorStore


# With collapse_duplicates, ask for this many times the results, so that enough are left once the
# copies collapse away.
COLLAPSE_DEPTH = 3


class Library:
    """A store of media vectors with its encoders, interaction log and recommendation strategies.

    Build it with :meth:`open` (settings from the usual sources plus keyword overrides) or from a
    :class:`~embedder.settings.Settings`. Every method is the library side of a CLI command of the
    same name and returns the same objects the command prints as ``--json``.
    """

    _open: ClassVar[dict[tuple[str, str], Library]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()
    strategies: ClassVar[dict[str, Strategy]] = STRATEGIES

    def __init__(self, settings: Settings):
        self.settings = settings
        self._media: VectorStore | None = None
        self._users: VectorStore | None = None
        self._encoders = None
        self._log = None
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()  # one SQLite connection, shared by the service's threads
        self._cf_cache = None  # ItemFactors of the stored cf model, for folding in new events
        self._queries = None  # a QueryBatcher once batch_queries() is called
        self.closed = False

    @classmethod
    def open(cls, settings: Settings | None = None, **overrides) -> Library:
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
                    raise EmbedderError(
                        f"{settings.store} (collection {settings.collection}) is already open in this "
                        "process with other settings; close that Library first"
                    )
                return found
            library = cls(settings)
            cls._open[key] = library
            return library

    # -- what it owns, opened on first use ---------------------------------------------------

    def _opened(self, attr: str, build):
        """``self.<attr>``, built by ``build()`` the first time it is asked for."""
        with self._lock:
            self._check_open()
            if getattr(self, attr) is None:
                setattr(self, attr, build())
            return getattr(self, attr)

    @property
    def media(self) -> VectorStore:
        """The media collection (through its alias)."""
        from embedder.store import open_store

        return self._opened("_media", lambda: open_store(self.settings))

    @property
    def users(self) -> VectorStore:
        """The users collection (collaborative and trained user vectors)."""
        from embedder.store import open_store, users_collection

        return self._opened("_users", lambda: open_store(self.settings, collection=users_collection(self.settings)))

    @property
    def encoders(self):
        """The encoders the settings name, loaded once (this imports torch)."""
        from embedder.encoders.bundle import load_encoders

        return self._opened("_encoders", lambda: load_encoders(self.settings))

    @property
    def log(self):
        """The interaction log."""
        from embedder.recommend.interactions import InteractionLog, default_log_path

        return self._opened("_log", lambda: InteractionLog(default_log_path(self.settings)))

    def batch_queries(self, max_batch: int = 32, cache_size: int = 1024, on_batch=None) -> None:
        """Let concurrent text searches share encoder batches, and answer repeated query texts
        from a cache (:class:`~embedder.encoders.batching.QueryBatcher`); for servers. With the
        ``query_int8`` setting, queries also go through int8 copies of the text towers."""
        from embedder.encoders.batching import QueryBatcher

        if self.settings.query_int8:
            self.encoders.quantize_queries()
        self._queries = QueryBatcher(self.encoders, max_batch=max_batch, cache_size=cache_size, on_batch=on_batch)

    # -- the work --------------------------------------------------------------------------

    def ingest(
        self,
        paths: list[str | Path],
        *,
        dry_run: bool = False,
        removals: str = "guarded",
        retry_failed: bool = False,
        progress=None,
    ):
        """Decode, encode and store files and folders (see :func:`embedder.engine.ingest.run_ingest`).

        Returns:
            :class:`embedder.engine.ingest.IngestSummary`.
        """
        from embedder.engine.ingest import run_ingest

        # The encoders load only if a file needs encoding, and stay loaded for the next call.
        return run_ingest(
            paths,
            self.settings,
            dry_run=dry_run,
            removals=removals,
            retry_failed=retry_failed,
            progress=progress,
            store=self.media,
            encoders=self._encoders or (lambda: self.encoders),
        )

    def reembed(self, *, dry_run: bool = False, allow_failures: bool = False, progress=None) -> dict:
        """Find stale vectors and rebuild them (see :func:`embedder.engine.reembed.run_reembed`).

        The library's open collections are closed first: the rebuild opens collection versions
        itself and may move the alias, and the next use here opens the version it points at.
        """
        from embedder.engine.reembed import run_reembed

        self._release_stores()
        return run_reembed(
            self.settings,
            dry_run=dry_run,
            allow_failures=allow_failures,
            progress=progress,
            encoders=self._encoders or (lambda: self.encoders),
        )

    def search(
        self,
        text: str | None = None,
        *,
        like: str | Path | None = None,
        limit: int = 10,
        modality: str = "all",
        filters: dict | list[str] | None = None,
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
        """Items matching ``text``, or like ``like`` (an ingested item's id or path, or a new file).

        ``diversity`` (0 to 1, text search): maximal marginal relevance on the dense side, so the
        top results are not all alike.

        ``collapse_duplicates``: show each cluster of near-duplicates ('embedder duplicates
        --mark') once, at its best-ranked member's place.

        ``mode`` (text only): ``hybrid`` fuses the dense and lexical (BM25) rankings in the engine
        (``fusion``: ``rrf`` or ``dbsf``), ``dense`` or ``lexical`` uses one; ``auto`` is hybrid
        where the collection has a lexical index. Quoted phrases must occur as phrases.

        ``filters`` is a parsed filter or ``--filter`` strings (``["kind=video", "duration>10"]``).
        ``moments``: rank items by their best segment and name it (:class:`embedder.search.Moment`).
        ``user``: re-rank for that user's taste (:mod:`embedder.personal`); ``seen`` says what
        happens to items they have seen: ``demote``, ``exclude`` or ``keep``.

        Returns:
            :class:`embedder.search.SearchHit` list, best first, with per-modality scores.
        """
        from embedder.search import check_vector_space, search_like, search_text

        if (text is None) == (like is None):
            raise EmbedderError("give either a search text or --like FILE_OR_ID")
        if diversity and like is not None:
            raise EmbedderError("--diversity works with a search text, not with --like")
        if isinstance(filters, list):
            from embedder.payload import parse_filters

            filters = parse_filters(filters)
        media = self.media
        wanted = limit
        limit = limit * COLLAPSE_DEPTH if collapse_duplicates else limit  # room for the copies that collapse away
        fetch = limit
        taste = None
        if user is not None:
            from embedder.personal import POOL_DEPTH, check_seen, read_taste

            check_seen(seen)
            taste = read_taste(self.settings.stored_user(user), self.history(user), media, self.users)
            fetch = limit if taste.empty else limit * POOL_DEPTH
        if like is not None:
            encoders = self._encoders  # a new file loads them; an ingested item does not need them
            hits = search_like(
                media,
                str(like),
                self.settings,
                encoders=encoders,
                limit=fetch,
                modality=modality,
                filters=filters,
                include_self=include_self,
                moments=moments,
            )
        else:
            from embedder.encoders.bundle import configured_model_ids
            from embedder.search import search_mode

            if media.collection_dims() is None:
                raise EmbedderError(
                    f"collection '{self.settings.collection}' is empty or missing; run 'embedder ingest' first"
                )
            mode = "dense" if diversity and mode == "auto" else search_mode(media, mode, modality)
            if mode != "lexical":
                check_vector_space(media, configured_model_ids(self.settings))  # before seconds of model loading
            hits = search_text(
                media,
                None if mode == "lexical" else (self._queries or self.encoders),
                text,
                weights=self.settings.fusion_weights,
                limit=fetch,
                modality=modality,
                filters=filters,
                moments=moments,
                mode=mode,
                fusion=fusion,
                language=self.settings.text_language,
                diversity=diversity,
            )
        if min_score is not None:  # on the similarity a person reads: hybrid's fused score is a rank fusion
            hits = [h for h in hits if _relevance(h) >= min_score]
        if moments:
            from embedder.media.thumbnail import ThumbnailStore

            previews = ThumbnailStore(self.settings.thumbnails_dir)
            for hit in hits:
                if hit.moment is not None and (found := previews.get_moment(hit.id, hit.moment.segment)):
                    hit.moment.thumbnail = str(found)
        if taste is not None:
            from embedder.personal import personalise

            hits = personalise(hits, taste, media, weight=self.settings.personal_weight, limit=limit, seen=seen)
        if collapse_duplicates:
            from embedder.duplicates import cluster_keys, collapse

            drop = set()
            if like is not None and not include_self:  # "more like this" should not list its own copies
                from embedder.search import find_item

                record = find_item(media, str(like), with_vectors=False)
                drop = cluster_keys(media, [record.id]) if record is not None else set()
            hits = collapse(hits, wanted, drop=drop)
        return hits[:wanted]

    def history(self, user: str) -> list:
        """The user's events, oldest first (``user`` as given: hashed when ids are pseudonymous)."""
        with self._log_lock:
            return self.log.for_user(self.settings.stored_user(user))

    def users_by_activity(self, limit: int = 100) -> list[dict]:
        """The most active users (as stored: hashed when ids are pseudonymous) with their event counts."""
        with self._log_lock:
            return self.log.users(limit)

    def recommend(
        self,
        user: str,
        *,
        strategy: str = "auto",
        limit: int = 10,
        exclude_seen: bool = True,
        query: str | None = None,
        filters: dict | None = None,
        collapse_duplicates: bool = False,
    ):
        """Items for ``user`` by a strategy of :data:`embedder.recommend.strategies.STRATEGIES`,
        or ``auto``: the one ``interactions train --auto`` chose by validation (hybrid before it
        has run); the result's ``chosen_by`` says which and why.

        A user with no events gets popular items; with ``query``, popular items among those
        matching that text (cold start).

        ``collapse_duplicates``: each cluster of near-duplicates ('embedder duplicates --mark')
        once, and with ``exclude_seen`` no copy of an item the user has already had.

        Returns:
            :class:`embedder.recommend.queries.RecommendResult`; each item names its branches.
        """
        from embedder.recommend.auto import AUTO, resolve_strategy, why_served
        from embedder.recommend.hybrid import HybridParams
        from embedder.recommend.queries import RecommendResult, popular_items, recommend_for_user

        stored = self.settings.stored_user(user)
        with self._log_lock:
            history = self.log.for_user(stored)
            served = self.log.served_model()
        chosen = get_strategy(resolve_strategy(strategy, served if strategy == AUTO else None))
        chosen_by = why_served(served) if strategy == AUTO else None
        fetch = limit * COLLAPSE_DEPTH if collapse_duplicates else limit  # room for copies that collapse away
        if not history and query:
            hits = self.search(query, limit=fetch * 5)
            result = RecommendResult(
                user=stored,
                strategy=chosen.name,
                used=["popular", "text"],
                items=popular_items(self.media, limit=fetch, text_hits=hits),
                note="no interactions for this user: popular items matching the text",
                chosen_by=chosen_by,
            )
        else:
            result = recommend_for_user(
                stored,
                history,
                self.media,
                self._users_if_any(),
                limit=fetch,
                strategy=chosen.name,
                exclude_seen=exclude_seen,
                filter=filters,
                hybrid=HybridParams.from_settings(self.settings, served) if chosen.name == "hybrid" else None,
            )
            result.chosen_by = chosen_by
        if collapse_duplicates:
            from embedder.duplicates import cluster_keys, collapse

            had = resolve_items(sorted({e.item for e in history}), self.media) if exclude_seen and history else {}
            result.items = collapse(result.items, limit, drop=cluster_keys(self.media, list(had.values())))
        return result

    def served_model(self) -> dict | None:
        """What ``recommend`` serves by default, as ``interactions train --auto`` recorded it
        (strategy, model, settings, every candidate's validation score), or ``None``."""
        with self._log_lock:
            return self.log.served_model()

    def similar(self, item: str, *, by: str = "content", limit: int = 10, collapse_duplicates: bool = False) -> list:
        """Items like ``item`` (id, ingested path, or interaction item key) by content, cf or both.

        ``collapse_duplicates``: each cluster of near-duplicates once, and no copy of ``item``
        itself (otherwise its re-uploads are the most similar items of all)."""
        from embedder.recommend.queries import resolve_item_ref, similar_items

        ref = resolve_item_ref(self.media, item)
        fetch = limit * COLLAPSE_DEPTH if collapse_duplicates else limit
        items = similar_items(self.media, ref, by=by, limit=fetch)
        if collapse_duplicates:
            from embedder.duplicates import cluster_keys, collapse

            items = collapse(items, limit, drop=cluster_keys(self.media, [ref]))
        return items[:limit]

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
        seen items are excluded, an item's ``popularity`` counts a known user's first positive event,
        and each user's ``cf`` vector is recomputed against the stored item factors (the ALS
        fold-in; a new user gets one from their first events). What waits for the next
        ``interactions train``: the item factors themselves, and the fold-in under bm25 weighting.

        Returns:
            ``received``, ``added``, ``popularity_updated`` (items), ``cf_users_updated`` and
            ``cf`` (what happened to the collaborative vectors, in words); ``quarantined_users``
            when some writers are users the last training quarantined (their events are logged
            but change nothing at once); ``popularity_deferred_users`` when some are accounts
            the last training has not seen (``realtime_popularity = "known_users"``: their
            events count in popularity from the next training, and fold into their own vector
            at once).
        """
        from embedder.recommend.interactions import Interaction

        rows = [
            e if isinstance(e, Interaction) else Interaction(self.settings.stored_user(e[0]), e[1], float(e[2]))
            for e in events
        ]
        with self._log_lock:
            # Users the last training quarantined as suspicious: their events are logged, but move
            # neither popularity nor a fold-in until a training no longer flags them.
            quarantined = self.log.quarantined() & {e.user for e in rows}
            users = sorted({e.user for e in rows} - quarantined)
            before = {u: {e.item for e in self.log.for_user(u) if e.weight > 0} for u in users}
            added = self.log.add(rows)
            after = {u: self.log.for_user(u) for u in users}
            # Accounts the last training has not judged move popularity from the next one on.
            deferred = self.log.newcomers(users) if self.settings.realtime_popularity == "known_users" else set()
        report = {"received": len(rows), "added": added, "popularity_updated": 0, "cf_users_updated": 0, "cf": None}
        if quarantined:
            report["quarantined_users"] = len(quarantined)
        if deferred:
            report["popularity_deferred_users"] = len(deferred)
        if not added:
            report["cf"] = "unchanged: no new event"
            return report
        from embedder.recommend.cf import CFParams
        from embedder.recommend.realtime import count_new_positives, fold_in_users

        with self._lock:  # one realtime update at a time: popularity is read, then written
            counted = {u: history for u, history in after.items() if u not in deferred}
            report["popularity_updated"] = count_new_positives(self.media, before, counted)
            report.update(
                fold_in_users(self.media, self.users, after, self.item_factors(), CFParams.from_settings(self.settings))
            )
        return report

    def join_items(self, keys: list[str]) -> tuple[dict[str, str], set[str]]:
        """Item keys from a client as the store knows them (``{key: stored key}``), and the keys
        that matched a stored item (point ids, ingested paths however written, item keys). Files
        are matched by name only: a client's key never makes the server hash a file."""
        from embedder.recommend.itemjoin import ItemJoin

        join = ItemJoin(self.media, by_content=False)
        return join(keys), join.matched

    def item_factors(self):
        """The stored collaborative model's item factors
        (:class:`~embedder.recommend.realtime.ItemFactors`), cached until the model changes;
        ``None`` without one."""
        from embedder.recommend.realtime import ItemFactors

        if self._cf_cache is None or not self._cf_cache.current(self.media):
            self._cf_cache = ItemFactors.load(self.media)
        return self._cf_cache

    def status(self) -> dict:
        """Back-end, collection, item count, modalities, models and size (``embedder status``)."""
        from embedder.recommend.auto import why_served
        from embedder.recommend.interactions import default_log_path
        from embedder.store.status import collection_status

        status = collection_status(self.media)
        # A read-only command creates nothing: no log yet means nothing was chosen.
        served = self.served_model() if default_log_path(self.settings).exists() else None
        status["recommend_default"] = why_served(served)
        return status

    # -- lifetime --------------------------------------------------------------------------

    def step_aside(self) -> None:
        """Release the embedded store's locks until the next use, so that another process can
        write (a scheduled step beside ``embedder serve``); the next read re-reads what it wrote.
        Nothing to do for a Qdrant server store."""
        with self._lock:
            for store in (self._media, self._users):
                pause = getattr(store, "pause", None)
                if pause is not None:
                    pause()

    def close(self) -> None:
        """Close what was opened; the next :meth:`open` builds a new library."""
        with self._lock:
            self._release_stores()
            if self._log is not None:
                self._log.close()
            self._log = self._encoders = self._queries = None
            self.closed = True
        with self._open_lock:
            key = (str(self.settings.store), self.settings.collection)
            if self._open.get(key) is self:
                del self._open[key]

    def __enter__(self) -> Library:
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


def _relevance(hit) -> float:
    """What ``min_score`` compares: the cosine in dense and hybrid search (a hybrid hit's fused
    score is a rank fusion, not a similarity; its cosine is computed for every hit), BM25 in lexical."""
    if hit.mode == "hybrid":
        return (hit.sides or {}).get("dense") or 0.0
    return hit.score
