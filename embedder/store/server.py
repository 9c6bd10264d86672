"""Server back-end: a Qdrant server or cluster through qdrant-client.

Writes use ``wait=True`` with bounded retries on timeouts. The API key is never logged or shown
(``info`` reports the URL only), and sending it over plain http gets a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

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
    SPARSE_VECTORS,
    VECTOR_DISTANCES,
    Filter,
    Hit,
    Nearest,
    PointRecord,
    Sparse,
    SparseNearest,
    VectorStore,
    check_dims,
    filter_conditions,
    is_media_schema,
)
from embedder.store.integrity import checked_fused, checked_records, checked_search

if TYPE_CHECKING:
    from embedder.settings import Settings

log = logging.getLogger(__name__)
WRITE_RETRIES = 3


def _to_server(vec):
    """A named vector as qdrant-client takes it: a list (of lists), or its ``SparseVector``."""
    if isinstance(vec, Sparse):
        from qdrant_client import models

        return models.SparseVector(indices=list(vec.indices), values=list(vec.values))
    return np.asarray(vec, np.float32).tolist()


def _named_vectors(raw, wanted) -> dict:
    """The named vectors qdrant-client returned; sparse ones only when ``wanted`` names them."""
    out = {}
    for name, vec in (raw or {}).items():
        if hasattr(vec, "indices"):
            if isinstance(wanted, (list, tuple)) and name in wanted:
                out[name] = Sparse.of(vec.indices, vec.values)
        else:
            out[name] = np.asarray(vec, np.float32)
    return out


def server_filter(filter: Filter | None, exclude_ids: list[str] | None = None, lacking: str | None = None):
    """Our filter (plus ids to leave out and a vector points must lack) as a qdrant-client ``Filter``."""
    if not filter and not exclude_ids and not lacking:
        return None
    from qdrant_client import models

    must_not = ([models.HasIdCondition(has_id=list(exclude_ids))] if exclude_ids else []) + (
        [models.HasVectorCondition(has_vector=lacking)] if lacking else []
    )
    must = []
    for key, kind, value in filter_conditions(filter):
        if kind == "range":
            must.append(
                models.FieldCondition(
                    key=key, range=models.Range(gt=value.gt, gte=value.gte, lt=value.lt, lte=value.lte)
                )
            )
        elif kind == "any":
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=value)))
        elif kind == "phrase":
            must.append(models.FieldCondition(key=key, match=models.MatchPhrase(phrase=value)))
        else:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=must or None, must_not=must_not or None)


def _sparse_params(name: str):
    """A sparse named vector's configuration: IDF-weighted queries for the lexical one."""
    from qdrant_client import models

    return models.SparseVectorParams(modifier=models.Modifier.IDF if name in IDF_SPARSE_VECTORS else None)


_SHARED_CLIENTS: dict = {}  # store URL -> a QdrantClient every store on that URL uses, in this process


def share_client(url: str, client) -> None:
    """Make every store opened on ``url`` in this process use ``client`` instead of connecting;
    ``None`` stops sharing. A long-running process can keep one connection pool per server this
    way; tests put qdrant-client's in-process engine (``QdrantClient(":memory:")``) behind a URL.
    The client stays open when a store using it closes.
    """
    if client is None:
        _SHARED_CLIENTS.pop(url, None)
    else:
        _SHARED_CLIENTS[url] = client


class ServerStore(VectorStore):
    """A collection on a Qdrant server (or qdrant-client's in-process mode, for tests)."""

    backend = "server"

    def __init__(self, client, collection: str, location: str, owns_client: bool = True):
        self.client = client
        self.collection = collection
        self.location = location
        self.owns_client = owns_client
        self._dims: dict[str, int] | None = None
        self._sparse: set[str] | None = None

    @classmethod
    def connect(cls, settings: Settings, collection: str | None = None) -> ServerStore:
        """Connect to ``settings.store`` with ``settings.api_key``, or use the client shared for
        that URL in this process (:func:`share_client`)."""
        collection = collection or settings.collection
        url = settings.store
        if url in _SHARED_CLIENTS:
            return cls(_SHARED_CLIENTS[url], collection, location=url, owns_client=False)
        from qdrant_client import QdrantClient

        key = settings.api_key.get_secret_value() if settings.api_key else None
        parsed = urlparse(url)
        if key and parsed.scheme == "http":
            log.warning("the Qdrant API key is sent over plain http to %s; use https", parsed.hostname)
        try:
            client = QdrantClient(url=url, api_key=key, timeout=int(settings.timeout_s))
            client.get_collections()
        except Exception as exc:
            raise StoreError(
                f"cannot reach Qdrant at {parsed.scheme}://{parsed.netloc}: {one_line(exc, 160)}"
            ) from None
        return cls(client, collection, location=f"{parsed.scheme}://{parsed.netloc}{parsed.path}")

    def close(self) -> None:
        if self.owns_client:  # a client passed in (shared between collections) stays open
            self.client.close()

    def _write(self, fn, *args, **kwargs):
        """Bounded retries on timeouts; any other failure is reported at once."""
        for attempt in range(1, WRITE_RETRIES + 1):
            try:
                return fn(*args, wait=True, **kwargs)
            except Exception as exc:
                timeout = "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()
                if not timeout or attempt == WRITE_RETRIES:
                    raise StoreError(f"write to collection '{self.collection}' failed: {one_line(exc, 200)}") from None
                time.sleep(0.5 * 2**attempt)

    def collection_dims(self) -> dict[str, int] | None:
        # Every read checks that the collection exists; asking the server each time doubled the
        # round trips. A physical collection's vectors never change, so the answer is kept once
        # it is known (an absent collection is asked again: another process may create it).
        if self._dims is None and self.client.collection_exists(self.collection):
            params = self.client.get_collection(self.collection).config.params
            self._dims = {name: p.size for name, p in params.vectors.items()}
            self._sparse = set(params.sparse_vectors or {})
        return self._dims

    def sparse_names(self) -> set[str]:
        if self.collection_dims() is None:
            return set()
        return set(self._sparse or ())

    def ensure_sparse(self, name: str) -> None:

        self._require()
        if name in self.sparse_names():
            return
        try:
            self.client.update_collection(self.collection, sparse_vectors_config={name: _sparse_params(name)})
            if name == LEXICAL:
                self._text_index()
        except Exception as exc:
            raise StoreError(
                f"collection '{self.logical or self.collection}' at {self.location} has no sparse vector '{name}' "
                f"and the server would not add one ({one_line(exc, 120)}); it was made before item-to-item models: "
                "a collection made now (another --collection, or the next blue-green rebuild of 'embedder reembed') "
                "has it"
            ) from None
        self._dims = None  # read the configuration again
        if name not in self.sparse_names():
            raise StoreError(
                f"collection '{self.logical or self.collection}' at {self.location} has no sparse vector '{name}' "
                "and the server did not add it; a collection made now (another --collection, or the next blue-green "
                "rebuild of 'embedder reembed') has it"
            )

    def _text_index(self) -> None:
        """The full-text index with phrase matching that quoted phrases need (SEARCH_TEXT)."""
        from qdrant_client import models

        language = self.text_language.lower()
        known = {s.value for s in models.SnowballLanguage}
        params = models.TextIndexParams(
            type=models.TextIndexType.TEXT,
            tokenizer=models.TokenizerType.WORD,
            lowercase=True,
            phrase_matching=True,
            stopwords=language if language in {s.value for s in models.Language} else None,
            stemmer=models.SnowballParams(type="snowball", language=language) if language in known else None,
        )
        self.client.create_payload_index(self.collection, SEARCH_TEXT, params, wait=True)

    def delete_vectors(self, ids: list[str], names: list[str]) -> None:
        from qdrant_client import models

        if ids and names and self.collection_dims() is not None:
            self._write(
                self.client.delete_vectors,
                self.collection,
                vectors=list(names),
                points=models.PointIdsList(points=list(ids)),
            )

    def ensure_collection(self, dims: dict[str, int]) -> None:
        from qdrant_client import models

        existing = self.collection_dims()
        if existing is not None:
            check_dims(existing, dims, f"collection '{self.collection}' at {self.location}")
            return
        distance = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}
        self.client.create_collection(
            self.collection,
            vectors_config={
                n: models.VectorParams(
                    size=s,
                    distance=distance[VECTOR_DISTANCES.get(n, "cosine")],
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
                    if n in MULTIVECTORS
                    else None,
                )
                for n, s in dims.items()
            },
            sparse_vectors_config={
                name: _sparse_params(name)
                for name in (*SPARSE_VECTORS, *(IDF_SPARSE_VECTORS if is_media_schema(dims) else ()))
            },
        )
        if is_media_schema(dims):
            self._text_index()
        for name in INDEXED_FIELDS:
            self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD, wait=True)
        for name in NUMERIC_INDEXED_FIELDS:
            self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.FLOAT, wait=True)
        if self.on_create is not None:
            self.on_create()

    def upsert(self, points: list[PointRecord]) -> None:
        if not points:
            return
        from qdrant_client import models

        structs = [
            models.PointStruct(id=p.id, vector={k: _to_server(v) for k, v in p.vectors.items()}, payload=p.payload)
            for p in points
        ]
        self._write(self.client.upsert, self.collection, points=structs)

    def update_vectors(self, vectors: dict[str, dict[str, np.ndarray]]) -> None:
        if not vectors:
            return
        from qdrant_client import models

        ops = [
            models.PointVectors(id=pid, vector={k: _to_server(v) for k, v in named.items()})
            for pid, named in vectors.items()
        ]
        self._write(self.client.update_vectors, self.collection, points=ops)

    def set_payload(self, ids: list[str], payload: dict[str, Any]) -> None:
        if ids:
            self._write(self.client.set_payload, self.collection, payload=payload, points=list(ids))

    def delete(self, ids: list[str]) -> None:
        from qdrant_client import models

        if ids and self.collection_dims() is not None:
            self._write(self.client.delete, self.collection, points_selector=models.PointIdsList(points=list(ids)))

    @staticmethod
    def _record(r, with_vectors) -> PointRecord:
        vectors = _named_vectors(r.vector, with_vectors) if with_vectors else {}
        return PointRecord(id=str(r.id), vectors=vectors, payload=dict(r.payload or {}))

    def retrieve(self, ids: list[str], with_vectors: bool = False) -> list[PointRecord]:
        if not ids or self.collection_dims() is None:
            return []
        records = self.client.retrieve(self.collection, ids=list(ids), with_payload=True, with_vectors=with_vectors)
        return checked_records([self._record(r, with_vectors) for r in records], self.logical or self.collection)

    def scroll(
        self, filter: Filter | None = None, with_vectors: bool = False, batch: int = 256
    ) -> Iterator[PointRecord]:
        if self.collection_dims() is None:
            return
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=server_filter(filter),
                limit=batch,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            for r in records:
                yield checked_records([self._record(r, with_vectors)], self.logical or self.collection)[0]
            if offset is None:
                return

    def page(self, offset=None, limit=256, with_vectors=False, raw=False):
        if self.collection_dims() is None:
            return [], None
        records, nxt = self.client.scroll(
            self.collection, limit=limit, offset=offset, with_payload=True, with_vectors=with_vectors
        )
        page = [self._record(r, with_vectors) for r in records]
        return (page if raw else checked_records(page, self.logical or self.collection)), nxt

    def facet(self, key: str, limit: int = 100) -> dict[str, int] | None:
        if self.collection_dims() is None:
            return {}
        try:
            response = self.client.facet(self.collection, key=key, limit=limit, exact=True)
        except Exception as exc:  # no index on that key, or a local engine without facets
            if "index" in str(exc).lower() or isinstance(exc, NotImplementedError):
                return None
            raise
        return {str(h.value): int(h.count) for h in response.hits}

    def ensure_indexes(self) -> None:
        from qdrant_client import models

        if self.collection_dims() is None:
            return
        for name in INDEXED_FIELDS:
            self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD, wait=True)

    def count(self, filter: Filter | None = None) -> int:
        if self.collection_dims() is None:
            return 0
        return int(self.client.count(self.collection, count_filter=server_filter(filter), exact=True).count)

    def _require(self) -> None:
        if self.collection_dims() is None:
            raise StoreError(
                f"collection '{self.logical or self.collection}' does not exist at {self.location}; "
                "run 'embedder ingest' first"
            )

    @staticmethod
    def _query(spec):
        from qdrant_client import models

        if isinstance(spec, SparseNearest):
            return _to_server(spec.vector)
        if isinstance(spec, Nearest):
            vector = np.asarray(spec.vector, np.float32)
            if spec.using in MULTIVECTORS and vector.ndim == 1:
                vector = vector[None, :]  # one query vector: MaxSim scores each point by its best segment
            if spec.diversity:
                return models.NearestQuery(
                    nearest=vector.tolist(),
                    mmr=models.Mmr(diversity=spec.diversity, candidates_limit=spec.candidates),
                )
            return vector.tolist()
        return models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[np.asarray(v, np.float32).tolist() for v in spec.positives],
                negative=[np.asarray(v, np.float32).tolist() for v in spec.negatives] or None,
                strategy=models.RecommendStrategy.BEST_SCORE,
            )
        )

    @staticmethod
    def _hits(points, with_vectors: bool) -> list[Hit]:
        return [
            Hit(
                id=str(p.id),
                score=float(p.score),
                payload=dict(p.payload or {}),
                vectors=_named_vectors(p.vector, with_vectors) if with_vectors else {},
            )
            for p in points
        ]

    def search(self, spec, limit=10, filter=None, exclude_ids=None, with_vectors=False) -> list[Hit]:
        self._require()
        result = self.client.query_points(
            self.collection,
            query=self._query(spec),
            using=spec.using,
            limit=limit,
            query_filter=server_filter(filter, exclude_ids, spec.lacking),
            with_payload=True,
            with_vectors=with_vectors,
        )
        return checked_search(self._hits(result.points, with_vectors), self.logical or self.collection, spec)

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
        from qdrant_client import models

        self._require()
        prefetch = [
            models.Prefetch(
                query=self._query(spec),
                using=spec.using,
                limit=n,
                filter=server_filter(filter, exclude_ids, spec.lacking),
            )
            for spec, n in branches
        ]
        fusion = (
            models.FusionQuery(fusion=models.Fusion.DBSF)
            if method == "dbsf"
            else models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=weights))
        )
        result = self.client.query_points(
            self.collection,
            prefetch=prefetch,
            query=fusion,
            limit=limit,
            with_payload=True,
            with_vectors=with_vectors,
        )
        return checked_fused(
            self._hits(result.points, with_vectors),
            self.logical or self.collection,
            len(branches),
            weights,
            method,
            rrf_k,
        )

    def top_by(self, key, limit=10, filter=None, exclude_ids=None) -> list[Hit]:
        from qdrant_client import models

        self._require()
        records, _ = self.client.scroll(
            self.collection,
            scroll_filter=server_filter(filter, exclude_ids),
            limit=limit,
            with_payload=True,
            order_by=models.OrderBy(key=key, direction=models.Direction.DESC),
        )
        return [Hit(id=str(r.id), score=float(r.order_value or 0.0), payload=dict(r.payload or {})) for r in records]

    def info(self) -> dict[str, Any]:
        dims = self.collection_dims()
        return {
            "backend": self.backend,
            "location": self.location,
            "collection": self.collection,
            "alias": self.logical,
            "exists": dims is not None,
            "points": self.count(),
            "vectors": dims or {},
            "sparse_vectors": sorted(self.sparse_names()),
            "size_bytes": None,  # not exposed by the server API
        }
