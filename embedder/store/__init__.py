"""One vector-store interface with two back-ends: embedded Qdrant Edge and a Qdrant server."""

from embedder.store.base import Hit, PointRecord, VectorStore, open_store, point_id

__all__ = ["Hit", "PointRecord", "VectorStore", "open_store", "point_id"]
