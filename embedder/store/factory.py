"""Which back-end a store is: the only module that knows both (as qdrant-client's facade picks
its local or remote client), so the interface module imports neither."""

from __future__ import annotations

from embedder.store.base import VectorStore
from embedder.store.catalog import EdgeCatalog, open_catalog
from embedder.store.edge import EdgeStore
from embedder.store.server import ServerStore


def open_physical(settings, name: str, *, client=None) -> VectorStore:
    """A physical collection by its exact name (no alias resolution), on the back-end ``settings`` name.

    Args:
        settings: :class:`embedder.settings.Settings`.
        name: the physical collection, e.g. ``media_v2`` or ``media_v1_trash``.
        client: an existing ``QdrantClient`` (tests pass ``QdrantClient(":memory:")``).
    """
    if client is not None or settings.is_server:
        return ServerStore.connect(settings, client=client, collection=name)
    return EdgeStore(settings.store, name, min_free_mb=settings.min_free_mb)


def open_store(settings, *, client=None, collection: str | None = None) -> VectorStore:
    """The store named by ``settings.store``: a directory (Qdrant Edge) or a server URL.

    Args:
        settings: :class:`embedder.settings.Settings`.
        client: an existing ``QdrantClient`` (tests pass ``QdrantClient(":memory:")``).
        collection: another collection than ``settings.collection`` (e.g. the users one).
    """
    logical = collection or settings.collection
    if client is not None or settings.is_server:
        store = ServerStore.connect(settings, client=client, collection=logical)
        catalog = open_catalog(settings, client=store.client)
        physical, exists = catalog.resolve(logical)
        store.collection = physical
    else:
        catalog = EdgeCatalog(settings.store)
        physical, exists = catalog.resolve(logical)
        store = open_physical(settings, physical)
    store.logical = logical
    if not exists:  # the first write creates <logical>_v1 and points the alias at it
        store.on_create = lambda: catalog.switch_alias(logical, physical)
    return store
