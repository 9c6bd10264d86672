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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from embedder.errors import EmbedderError
from embedder.ids import resolve_items
from embedder.progress import Progress
from embedder.recommend.strategies import STRATEGIES, Strategy, get_strategy

if TYPE_CHECKING:
    from embedder.settings import Settings
    from embedder.store import VectorStore
    from embedder.train.config import TrainConfig


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
            report["popularity_updated"] = count_new_positives(
                self.media, before, counted, self.settings.popularity_min_items
            )
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

    # -- items and the log ----------------------------------------------------------------

    def items(self, *, offset: int = 0, limit: int = 50, filters=None):
        """Items ``offset`` to ``offset + limit`` in a stable order (``items list``), with the total
        matching ``filters`` (as in :meth:`search`).

        Returns:
            :class:`~embedder.items.ItemPage`: ``items``, ``total``, ``offset``, ``next_offset``.
        """
        from embedder.items import list_items

        return list_items(self.media, offset=offset, limit=limit, filter=_as_filter(filters))

    def delete_items(self, refs: list[str]) -> list[dict]:
        """Delete items by id or path, into the trash (``items delete``; ``embedder trash
        restore`` undoes it). Nothing is deleted when a reference matches no item.

        Returns:
            Each deleted item's ``id`` and ``path``.
        """
        from embedder.items import delete_items
        from embedder.jobs_lock import job_lock

        with job_lock(self.settings, "items delete"):
            return delete_items(self.settings, self.media, refs)

    def import_catalogue(self, path: str | Path, *, dry_run: bool = False, progress: Progress | None = None) -> dict:
        """Add or update items known by their metadata alone (``items import``): a .csv/.tsv with a
        header, or .jsonl; their text is encoded and indexed for search. With ``dry_run``, every
        row is checked and nothing is stored (no model loads).

        Returns:
            Counts (``rows``, ``created``, ``updated``, ``unchanged``, ``media_matched``,
            ``problems``) and up to 20 problems with their lines.
        """
        from embedder.catalogue import import_catalogue
        from embedder.jobs_lock import job_lock

        if not Path(path).expanduser().is_file():
            raise EmbedderError(f"{path}: no such catalogue file")
        if dry_run:
            return import_catalogue(path, self.settings, None, dry_run=True)
        with job_lock(self.settings, "items import"):
            # The encoders load only when some row's text is new or changed.
            return import_catalogue(path, self.settings, self.media, lambda: self.encoders, progress=progress)

    def transcript(self, ref: str) -> dict:
        """What is said in an item (id or path), as speech recognition heard it at ingest
        (``items transcript``): ``model``, ``language`` and timed ``lines``."""
        from embedder.items import item_transcript

        return item_transcript(self.media, ref)

    def make_thumbnails(self, *, redo: bool = False, progress: Progress | None = None) -> dict:
        """Make the thumbnails items lack, or every item's with ``redo`` (``items thumbnails``):
        files are decoded again, nothing is encoded, vectors are not touched.

        Returns:
            ``made``, ``already``, ``no_file`` and ``failed``.
        """
        from embedder.backfill import make_missing_thumbnails

        return make_missing_thumbnails(self.settings, self.media, progress, redo=redo)

    def import_events(
        self,
        path: str | Path,
        columns=None,
        *,
        fmt: str | None = None,
        names: list[str] | None = None,
        item_map: str | Path | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Append an event log (CSV, TSV, JSONL or Parquet) to the interaction log
        (``interactions import``): bad rows are reported with their lines, duplicates dropped,
        events older than ``retention_days`` left out, user ids stored as the settings say.

        ``columns``: a :class:`~embedder.recommend.interactions.ColumnMap` (which fields hold
        what; the default reads ``user`` and ``item``); ``names``: the fields of a file without a
        header line; ``item_map``: a CSV of catalogue id -> ingested path or id. Items join the
        store by path however written, or by point id.

        Returns:
            The import report (``rows``, ``added``, ``duplicates``, ``bad``, ``bad_rows``,
            ``warnings``, ...), how many distinct items matched the store, and the log's counts.
        """
        from embedder.recommend.interactions import ColumnMap
        from embedder.recommend.itemjoin import ItemJoin, read_item_map
        from embedder.store.factory import require_store

        try:
            mapping = read_item_map(item_map) if item_map else None
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"--item-map: {exc}") from None
        try:
            require_store(self.settings)  # no store yet: every item is one without media
            join = ItemJoin(self.media, mapping)
        except EmbedderError:
            join = ItemJoin(None, mapping)
        days = self.settings.retention_days
        with self._log_lock:
            report = self.log.import_file(
                path,
                columns or ColumnMap(),
                fmt=fmt,
                columns=names,
                progress=progress,
                not_before=time.time() - days * 86400 if days else None,
                user_id=self.settings.stored_user,
                item_keys=join,
            )
            stats = self.log.stats()
        joined = join.report()
        distinct = joined["items_matched"] + joined["items_unmatched"]
        if distinct and joined["items_unmatched"] > self.settings.unmatched_items_warn * distinct:
            report.warnings.append(
                f"{joined['items_unmatched']} of {distinct} distinct items match nothing in the store "
                f"(e.g. {', '.join(joined['unmatched_examples'][:3])}): they become items without media; if they "
                "are ingested files, check the paths, or map catalogue ids with --item-map"
            )
        return {**report.to_dict(), **joined, "log": stats}

    def interaction_stats(self) -> dict:
        """Events, negative events, users and items in the interaction log (``interactions stats``)."""
        with self._log_lock:
            return self.log.stats()

    def suspicious_users(self, threshold: float | None = None) -> dict:
        """Users whose profiles look fake (``interactions suspicious``), most suspicious first,
        each with its score and reasons; ``threshold`` defaults to ``suspicious_threshold``.

        Returns:
            ``users`` (with positive events) and ``flagged``
            (:class:`~embedder.recommend.suspicious.Suspicion` list).
        """
        from embedder.recommend.suspicious import find_suspicious

        with self._log_lock:
            events = self.log.all()
        limit = threshold if threshold is not None else self.settings.suspicious_threshold
        return {"users": len({e.user for e in events if e.weight > 0}), "flagged": find_suspicious(events, limit)}

    def duplicates(self, threshold: float = 0.95, *, mark: bool = False, progress: Progress | None = None) -> dict:
        """Near-duplicate items in clusters, the copy to keep first (``embedder duplicates``);
        with ``mark``, the clusters are recorded for ``collapse_duplicates``. Nothing is deleted.

        Returns:
            ``threshold``, ``clusters`` (:class:`~embedder.duplicates.Cluster` list) and
            ``marked`` (how many items were marked, ``None`` without ``mark``).
        """
        import contextlib

        from embedder.duplicates import find_duplicates, mark_duplicates
        from embedder.jobs_lock import job_lock

        with job_lock(self.settings, "duplicates") if mark else contextlib.nullcontext():
            clusters = find_duplicates(self.media, threshold, progress)
            marked = mark_duplicates(self.media, clusters) if mark else None
        return {"threshold": threshold, "clusters": clusters, "marked": marked}

    def inspect(self, paths: list[str | Path], *, progress: Progress | None = None) -> list[dict]:
        """What ingest would do with each file or folder's files, without storing anything
        (``embedder inspect``): probe facts, decoder, frames, audio windows, text."""
        from embedder.inspection import inspect_paths

        return inspect_paths(paths, self.settings, progress=progress)

    # -- privacy --------------------------------------------------------------------------

    def forget_user(self, user: str) -> dict:
        """Remove every trace of ``user`` (``forget --user``): events, collaborative influence
        (retrained), user vectors in every version, their row of trained heads; returns the
        audit record, which names them only by a keyed hash."""
        from embedder.privacy import forget_user

        return self._released(lambda: forget_user(self.settings, self.settings.stored_user(user)))

    def forget_item(self, ref: str) -> dict:
        """Remove an item (id, path or interaction key) from every collection version, the trash
        and the log (``forget --item``); returns the record of what was removed."""
        from embedder.privacy import forget_item

        return self._released(lambda: forget_item(self.settings, ref))

    def _released(self, work):
        """Run ``work``, which opens the store and log itself, with this library's copies closed
        (reopened on next use) and no event logged meanwhile."""
        with self._lock, self._log_lock:
            self._release_stores()
            if self._log is not None:
                self._log.close()
                self._log = None
            return work()

    # -- the trash ------------------------------------------------------------------------

    def trash_entries(self) -> list:
        """Items in the trash (removed by ingest or ``items delete``), newest first, with why and
        when (``trash list``): :class:`~embedder.trash.TrashEntry` list."""
        from embedder.trash import Trash

        with Trash(self.settings, self.media) as trash:
            return trash.entries()

    def restore_from_trash(self, refs: list[str] | None = None) -> list:
        """Put trashed items (ids or paths; every one with ``None``) back into the collection with
        all their vectors (``trash restore``). Returns the restored entries."""
        return self._in_trash("trash restore", lambda trash: trash.restore_selected(refs))

    def empty_trash(self, older_than_days: float | None = None) -> int:
        """Delete trashed items for good, or only those removed more than ``older_than_days`` ago
        (``trash empty``). Returns how many."""
        return self._in_trash("trash empty", lambda trash: trash.purge(older_than_days))

    def _in_trash(self, job: str, work):
        from embedder.jobs_lock import job_lock
        from embedder.trash import Trash

        with job_lock(self.settings, job), Trash(self.settings, self.media) as trash:
            return work(trash)

    # -- the store as a whole -------------------------------------------------------------

    def check(self, *, repair: bool = False, progress: Progress | None = None):
        """Verify every point of every collection (each version, trash, users) and the
        interaction log (``embedder check``); with ``repair``, delete the damaged points of the
        collection searches use and encode their files again.

        Returns:
            :class:`~embedder.check.StoreCheck`: ``healthy``, ``settled`` and a report per collection.
        """
        from embedder.check import check_store
        from embedder.check import repair as repair_damage
        from embedder.engine.ingest import reingest
        from embedder.jobs_lock import job_lock
        from embedder.recommend.interactions import default_log_path
        from embedder.store.catalog import open_catalog
        from embedder.store.factory import open_physical

        settings, media = self.settings, self.media
        with job_lock(settings, "check"):
            result = check_store(
                media,
                open_catalog(settings),
                lambda name: open_physical(settings, name),
                settings.collection,
                default_log_path(settings),
            )
            if repair and result.main.damaged_ids:
                repair_damage(result.main, media, lambda files: reingest(files, settings, media, progress))
        return result

    def collections(self) -> dict:
        """Every collection version and where the aliases point (``collections list``)."""
        from embedder.store.catalog import open_catalog

        return open_catalog(self.settings).listing()

    def roll_back(self) -> dict:
        """Point the collection's alias back at its previous version, which re-embedding keeps
        (``collections rollback``). Returns ``alias``, ``from`` and ``to``."""
        from embedder.store.catalog import open_catalog

        with self._lock:
            self._release_stores()  # the next use opens the version the alias now names
            return open_catalog(self.settings).roll_back(self.settings.collection)

    def drop_collection(self, name: str, confirm=None) -> list[str]:
        """Delete a collection version no alias points at, with its trash (``collections drop``);
        ``confirm`` (no arguments, a bool) is asked once the checks have passed. Returns the
        collections dropped (none when ``confirm`` said no)."""
        from embedder.store.catalog import open_catalog
        from embedder.trash import TRASH_SUFFIX

        return open_catalog(self.settings).drop_unused(name, TRASH_SUFFIX, confirm)

    def snapshot(self, label: str = "") -> dict:
        """A consistent copy of the whole store, log included (``snapshot create``): this
        library's collections and log are closed for the copy and reopened on next use, and no
        event is logged meanwhile. Returns ``name``, ``path``, ``collections`` and ``size_bytes``."""
        from embedder.snapshots import create_snapshot

        return self._released(lambda: create_snapshot(self.settings, label))

    def snapshots(self) -> list[dict]:
        """Snapshots, newest first (``snapshot list``)."""
        from embedder.snapshots import list_snapshots

        return list_snapshots(self.settings)

    def restore_snapshot(self, name: str) -> dict:
        """Put the store back as it was in snapshot ``name`` (``snapshot restore``); its current
        state is kept as a snapshot first. Everything this library had open is reopened after.
        Returns ``restored`` and ``previous_state``."""
        from embedder.snapshots import restore_snapshot

        return self._released(lambda: restore_snapshot(self.settings, name))

    # -- training ---------------------------------------------------------------------------

    def train_recommender(
        self,
        model: str = "als",
        *,
        auto: bool = False,
        candidates: Sequence[str] = ("cf", "ease", "rp3beta", "itemknn"),
        split: str = "random-holdout",
        seed: int = 0,
        weighting: str | None = None,
        alpha: float | None = None,
        regularization: float | None = None,
        iterations: int | None = None,
        neighbours: int | None = None,
        l2: float | None = None,
        max_items: int | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Fit a recommendation model on the interaction log and store it (``interactions train``).

        ``model``: ``als`` or ``bpr`` (the items' and users' ``cf`` vectors) or an item-to-item
        kind (``ease``, ``rp3beta``, ``itemknn``: each item's top weights as a sparse vector). With
        ``auto``, every one of ``candidates`` is tuned on a ``split`` of the log, the best is
        stored (and ALS beside it) and becomes what ``recommend`` serves by default. The other
        keywords override the settings' ``cf_*`` / ``i2i_*`` values for this fit.

        With ``quarantine_suspicious``, users :func:`~embedder.recommend.suspicious.find_suspicious`
        flags are left out, and real-time updates skip them until a training no longer does.
        Once the model is stored, accounts in the log count toward popularity from now on
        (``realtime_popularity = "known_users"``); a training that fails changes neither.

        Returns:
            The stored model's summary (with ``auto``: ``record``, what is served and why, and
            ``stored``), plus ``quarantined_users`` (``None`` with quarantine off).
        """
        from embedder.recommend.cf import CFParams
        from embedder.recommend.fitting import CF_MODELS, fit_and_store
        from embedder.recommend.itemitem import KINDS, ItemItemParams

        progress = progress or Progress()
        if model not in (*CF_MODELS, *KINDS):
            raise EmbedderError(f"--model must be one of {', '.join((*CF_MODELS, *KINDS))}, not '{model}'")
        if model in KINDS and weighting not in (None, "binary", "log1p"):
            raise EmbedderError(f"--weighting for {model} must be binary or log1p, not '{weighting}'")
        events, flagged, read_through = self._training_events(progress)
        if auto and not events:
            raise EmbedderError("the interaction log is empty; run 'embedder interactions import FILE' first")
        cf = CFParams.from_settings(
            self.settings, weighting=weighting, alpha=alpha, regularization=regularization, iterations=iterations
        )
        media, users = self._training_collections()
        if auto:
            from embedder.recommend.auto import train_auto

            summary = train_auto(
                events,
                media,
                users,
                seed=seed,
                cf=CFParams.from_settings(self.settings),
                item_item={kind: ItemItemParams.from_settings(self.settings, kind) for kind in KINDS},
                candidates=tuple(candidates),
                split=split,
                progress=progress,
                popularity_min_items=self.settings.popularity_min_items,
            )
            with self._log_lock:
                self.log.set_served_model(summary["record"])
        elif model in KINDS:
            overrides = {"neighbours": neighbours, "l2": l2, "max_items": max_items, "weighting": weighting}
            params = ItemItemParams.from_settings(self.settings, model, **overrides, alpha=alpha)
            # EASE on a large catalogue takes minutes: say what is running.
            progress.note(f"fitting {model} on {len(events)} events ...")
            summary = fit_and_store(model, params, events, media, users, seed, self.settings.popularity_min_items)
        else:
            summary = fit_and_store(model, cf, events, media, users, seed, self.settings.popularity_min_items)
        self._record_training(flagged, read_through)
        quarantined = len(flagged) if self.settings.quarantine_suspicious else None
        return {**summary, "quarantined_users": quarantined}

    def train_head(
        self, config: TrainConfig | None = None, *, resume: Path | None = None, write: bool = True, progress=None
    ) -> dict:
        """Fine-tune the two-tower head on the interaction log (``embedder train``): BCE, frozen
        encoders, early stopping (or DP-SGD with ``privacy.epsilon``), a versioned run directory,
        and, with ``write``, ``rec`` vectors that ``recommend --strategy trained`` serves.

        ``config``: a :class:`~embedder.train.config.TrainConfig` (the defaults when ``None``);
        ``resume``: a run directory to continue from its last checkpoint.

        Returns:
            ``run_dir``, ``version``, ``device``, ``metrics`` and ``written`` (what was stored).
        """
        from embedder.encoders.bundle import configured_model_ids
        from embedder.recommend.cf import CFParams
        from embedder.train.config import load_train_config
        from embedder.train.run import run_training

        with self._log_lock:
            events = self.log.all()
        media, users = self._training_collections()
        return run_training(
            events,
            config if config is not None else load_train_config(None),
            media,
            users,
            rec_dim=self.settings.rec_dim,
            device=self.settings.device,
            feature_models=configured_model_ids(self.settings),
            cf=CFParams.from_settings(self.settings),
            resume=resume,
            write=write,
            progress=progress,
        )

    def evaluate(
        self,
        *,
        split: str = "leave-last-out",
        methods: Sequence[str] = ("popular", "cf", "content", "hybrid"),
        seeds: Sequence[int] = (0,),
        tune: bool = False,
        max_users: int | None = None,
        train_config: TrainConfig | None = None,
        weighting: str | None = None,
        alpha: float | None = None,
        regularization: float | None = None,
        iterations: int | None = None,
    ) -> dict:
        """Offline evaluation of the interaction log (``embedder eval``): Recall@K, HR-recall@K,
        NDCG@K and coverage per method of ``methods`` (strategy names), on a ``split`` for each
        of ``seeds`` (mean and spread over several). With ``tune``, each method's settings are
        first tuned on a validation split carved from the training part. The content side reads
        the store's vectors when it has any. The ``cf`` keywords override the settings' ``cf_*``.

        Returns:
            What :func:`~embedder.evaluate.evaluate_seeds` reports (metrics, settings, tuning).
        """
        from embedder.evaluate import evaluate_seeds
        from embedder.recommend.cf import CFParams
        from embedder.recommend.hybrid import HybridParams
        from embedder.recommend.itemitem import KINDS, ItemItemParams
        from embedder.train.config import load_train_config

        with self._log_lock:
            events = self.log.all()
        if not events:
            raise EmbedderError("the interaction log is empty; run 'embedder interactions import FILE' first")
        dims = self.media.collection_dims() or {}
        return evaluate_seeds(
            events,
            list(seeds),
            split=split,
            methods=tuple(methods),
            cf=CFParams.from_settings(
                self.settings, weighting=weighting, alpha=alpha, regularization=regularization, iterations=iterations
            ),
            tune=tune,
            media=self.media if "content" in dims else None,
            max_users=max_users,
            train_config=train_config if train_config is not None else load_train_config(None),
            item_item={kind: ItemItemParams.from_settings(self.settings, kind) for kind in KINDS},
            hybrid=HybridParams.from_settings(self.settings),
            popularity_min_items=self.settings.popularity_min_items,
        )

    def prune_events(self, older_than_days: float | None = None) -> dict:
        """Delete interaction events older than ``older_than_days`` (default: the
        ``retention_days`` setting) for good (``interactions prune``). Events without a time are
        kept and counted; the stored models keep what they learned until the next training.

        Returns:
            ``dropped``, ``cutoff``, ``undated_kept`` and ``older_than_days``.
        """
        days = older_than_days if older_than_days is not None else self.settings.retention_days
        if days is None:
            raise EmbedderError("give --older-than DAYS, or set retention_days (EMBEDDER_RETENTION_DAYS)")
        with self._log_lock:
            dropped = self.log.drop_older_than(time.time() - days * 86400)
        return {**dropped, "older_than_days": days}

    def _training_events(self, progress: Progress) -> tuple[list, list, int]:
        """The log's events a training reads, the users quarantine leaves out of them, and the
        last event's sequence number (what the training has seen)."""
        with self._log_lock:
            events = self.log.all()
        read_through = max((e.seq for e in events), default=0)
        if not self.settings.quarantine_suspicious:
            return events, [], read_through
        from embedder.recommend.suspicious import without_suspicious

        events, flagged = without_suspicious(events, self.settings.suspicious_threshold)
        progress.note(
            f"quarantine: {len(flagged)} suspicious users left out ('embedder interactions suspicious' lists them)"
        )
        return events, flagged, read_through

    def _record_training(self, flagged: list, read_through: int) -> None:
        """Once a training has written its model: real-time updates skip the users it left out,
        and count in popularity only the accounts it read. After the write, so that a failed
        training leaves both as the last good one set them."""
        with self._log_lock:
            self.log.set_quarantined({s.user for s in flagged})
            self.log.set_trained_through(read_through)

    def _training_collections(self) -> tuple[VectorStore, VectorStore]:
        """The media and users collections, created with every named vector the settings imply
        when missing (and checked against them when not)."""
        from embedder.encoders.bundle import schema_for, users_schema

        self.media.ensure_collection(schema_for(self.settings))
        self.users.ensure_collection(users_schema(self.settings))
        return self.media, self.users

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


def _as_filter(filters):
    """``filters`` as the store takes them: ``None``, a parsed filter, or ``key=value`` strings."""
    if filters is None or isinstance(filters, dict):
        return filters or None
    from embedder.payload import parse_filters

    return parse_filters(list(filters)) or None


def _relevance(hit) -> float:
    """What ``min_score`` compares: the cosine in dense and hybrid search (a hybrid hit's fused
    score is a rank fusion, not a similarity; its cosine is computed for every hit), BM25 in lexical."""
    if hit.mode == "hybrid":
        return (hit.sides or {}).get("dense") or 0.0
    return hit.score
