"""The two collections recommendation works on, opened with the schema the settings imply."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedder.store import VectorStore, open_store, users_collection

if TYPE_CHECKING:
    from embedder.settings import Settings


def open_collections(settings: Settings, *, create: bool = True) -> tuple[VectorStore, VectorStore]:
    """The media collection and its users collection.

    With ``create``, missing collections are created with every named vector (content side,
    ``cf``, ``cf_sim``, ``rec``; users: ``cf``, ``rec``), and existing ones are checked against it.
    """
    from embedder.encoders.bundle import schema_for, users_schema

    media = open_store(settings)
    try:
        users = open_store(settings, collection=users_collection(settings))
    except BaseException:
        media.close()
        raise
    if create:
        media.ensure_collection(schema_for(settings))
        users.ensure_collection(users_schema(settings))
    return media, users
