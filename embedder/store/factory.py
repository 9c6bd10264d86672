"""Which back-end a store is: the only module that knows both (as qdrant-client's facade picks
its local or remote client), so the interface module imports neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedder.errors import StoreError
from embedder.store.base import VectorStore
from embedder.store.catalog import EdgeCatalog, ServerCatalog
from embedder.store.edge import EdgeStore
from embedder.store.server import ServerStore

if TYPE_CHECKING:
    from embedder.settings import Settings


def require_store(settings: Settings) -> None:
    """Refuse a read of an embedded store that is not there, before anything is created: a typo
    in ``--store`` must not make a store (or drop a lock file into a media folder).

    Raises:
        StoreError: "no store at PATH", with what to do.
    """
    if settings.is_server:
        return
    from pathlib import Path

    from embedder.store.catalog import ALIASES_FILE
    from embedder.store.edge import EDGE_VECTOR_DIMS_FILE

    root = Path(settings.store).expanduser()
    marks = [root / ALIASES_FILE, root / "interactions.sqlite"]
    if root.is_dir() and (
        any(m.exists() for m in marks) or any((d / EDGE_VECTOR_DIMS_FILE).is_file() for d in root.iterdir())
    ):
        return
    raise StoreError(f"no store at {root}; run 'embedder ingest' first, or check --store (or EMBEDDER_STORE)")


def open_physical(settings: Settings, name: str) -> VectorStore:
    """A physical collection by its exact name (no alias resolution), on the back-end ``settings`` name.

    Args:
        settings: :class:`embedder.settings.Settings`.
        name: the physical collection, e.g. ``media_v2`` or ``media_v1_trash``.
    """
    if settings.is_server:
        store = ServerStore.connect(settings, collection=name)
    else:
        store = EdgeStore(settings.store, name, min_free_mb=settings.min_free_mb)
    store.text_language = settings.text_language
    return store


def open_store(settings: Settings, *, collection: str | None = None) -> VectorStore:
    """The store named by ``settings.store``: a directory (Qdrant Edge) or a server URL.

    Args:
        settings: :class:`embedder.settings.Settings`.
        collection: another collection than ``settings.collection`` (e.g. the users one).
    """
    logical = collection or settings.collection
    if settings.is_server:
        store = ServerStore.connect(settings, collection=logical)
        store.text_language = settings.text_language
        catalog = ServerCatalog(store.client)  # the same connection
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
