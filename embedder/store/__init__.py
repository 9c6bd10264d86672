"""One vector-store interface with two back-ends: embedded Qdrant Edge and a Qdrant server."""

from embedder.store.base import (
    Hit,
    Nearest,
    PointRecord,
    Recommend,
    Sparse,
    SparseNearest,
    VectorStore,
    is_point_id,
    point_id,
    users_collection,
)
from embedder.store.factory import open_physical, open_store

__all__ = [
    "Hit",
    "Nearest",
    "PointRecord",
    "Recommend",
    "Sparse",
    "SparseNearest",
    "VectorStore",
    "is_point_id",
    "open_physical",
    "open_store",
    "point_id",
    "users_collection",
]
