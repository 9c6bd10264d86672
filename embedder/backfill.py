"""Thumbnails for items that lack them: the files decoded again, nothing encoded (``embedder items thumbnails``)."""

from __future__ import annotations

import os

from embedder.errors import Failure
from embedder.media.decode import DecodeOptions, decode_item
from embedder.media.isolation import map_isolated
from embedder.media.thumbnail import ThumbnailStore


def make_missing_thumbnails(settings, store, progress=None, redo: bool = False) -> dict:
    """Thumbnails for stored items that have none (items ingested before thumbnails existed, or
    with them off), or for every item with ``redo``. Each file is decoded again in the isolated
    workers, nothing is encoded, and the store is only read.

    Returns:
        ``made``, ``already`` (had one), ``no_file`` (ids whose files are all gone) and ``failed``
        (path, stage, reason).
    """
    thumbnails = ThumbnailStore(settings.thumbnails_dir)
    todo: dict[str, str] = {}  # path -> point id
    already, no_file = 0, []
    for record in store.scroll():
        if not redo and thumbnails.get(record.id) is not None:
            already += 1
            continue
        path = next((p for p in record.payload.get("paths") or [] if os.path.isfile(p)), None)
        if path is None:
            if record.payload.get("paths"):
                no_file.append(record.id)
            continue
        todo[path] = record.id
    # The frame size only picks the representative frame; the preview is decoded at its own size.
    options = DecodeOptions.from_settings(settings.model_copy(update={"thumbnails": True}), 64)
    made, failed = 0, []
    if progress is not None:
        progress.start(len(todo), "thumbnails")
    for result in map_isolated(
        decode_item, [(p, (p, options)) for p in todo], workers=settings.workers, timeout_s=settings.decode_timeout_s
    ):
        item = result.value
        if result.error is not None:
            failed.append(Failure.from_error(result.error).to_dict())
        elif item.thumbnail is None:
            failed.append(Failure(result.key, "thumbnail", "; ".join(item.warnings) or "nothing to show").to_dict())
        else:
            thumbnails.put(todo[result.key], item.thumbnail)
            made += 1
        if progress is not None:
            progress.advance(result.key, "ok" if item is not None and item.thumbnail else "failed")
    if progress is not None:
        progress.finish()
    return {
        "made": made,
        "already": already,
        "no_file": sorted(no_file),
        "failed": sorted(failed, key=lambda f: f["path"]),
    }
