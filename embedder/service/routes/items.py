"""Items: details, thumbnails and moment previews, the file itself, similar items."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from embedder.errors import printable_line
from embedder.media.access import FileIdentity, NotServable, open_recorded
from embedder.payload import stored_identities
from embedder.service.files import OpenedFileResponse
from embedder.service.state import Service, log, service

router = APIRouter()


@router.get(
    "/items/{item_id}/moments/{segment}/thumbnail",
    summary="A preview of one segment of an item (JPEG)",
    response_class=FileResponse,
)
def moment_thumbnail(item_id: str, segment: int = PathParam(..., ge=0, le=100_000), svc: Service = Depends(service)):
    from embedder.media.thumbnail import ThumbnailStore

    record = svc.item_or_404(item_id)
    found = ThumbnailStore(svc.library.settings.thumbnails_dir).get_moment(record.id, segment)
    if found is None:
        raise HTTPException(status_code=404, detail=f"item {item_id} has no preview of segment {segment}")
    return svc.picture(found)


@router.get("/items/{item_id}", summary="An item's stored details (payload and vector names)")
def item(item_id: str, svc: Service = Depends(service)) -> dict:
    record = svc.item_or_404(item_id, with_vectors=True)
    return {"id": record.id, "payload": record.payload, "vectors": sorted(record.vectors)}


@router.get(
    "/items/{item_id}/transcript",
    summary="What is said in the item (speech recognition at ingest): json with word times, vtt, srt or text",
)
def transcript(item_id: str, format: str = "json", svc: Service = Depends(service)):
    from fastapi.responses import PlainTextResponse

    from embedder.media.speech import TRANSCRIPT_FORMATS, format_transcript

    if format not in TRANSCRIPT_FORMATS:
        raise HTTPException(status_code=422, detail=f"format must be one of {', '.join(TRANSCRIPT_FORMATS)}")
    record = svc.item_or_404(item_id)
    stored = svc.library.transcript(record.id)
    if format == "json":
        return stored
    media_type = {"vtt": "text/vtt", "srt": "application/x-subrip", "text": "text/plain"}[format]
    return PlainTextResponse(format_transcript(stored, format), media_type=media_type)


@router.get(
    "/items/{item_id}/thumbnail",
    summary="The item's thumbnail (JPEG: a frame, or the audio's waveform)",
    response_class=FileResponse,
)
def thumbnail(item_id: str, svc: Service = Depends(service)):
    from embedder.media.thumbnail import ThumbnailStore

    record = svc.item_or_404(item_id)
    found = ThumbnailStore(svc.library.settings.thumbnails_dir).get(record.id)
    if found is None:
        raise HTTPException(
            status_code=404,
            detail=f"item {item_id} has no thumbnail (ingested before they existed, or with thumbnails off)",
        )
    return svc.picture(found)


@router.head("/items/{item_id}/media", include_in_schema=False)
@router.get("/items/{item_id}/media", summary="The item's file, inline, with HTTP range requests (seekable) and HEAD")
def media(item_id: str, svc: Service = Depends(service)):
    record = svc.item_or_404(item_id)
    identities = stored_identities(record.payload)
    reasons = []
    for path in record.payload.get("paths") or []:  # only a path this item was ingested from
        try:
            fh, st = open_recorded(path, FileIdentity.from_dict(identities[path]), record.payload.get("sha256", ""))
        except NotServable as exc:
            reasons.append(str(exc))
            continue
        # inline: a browser plays it in the page (a <video>, or the URL opened) rather than saving it
        return OpenedFileResponse(fh, st, filename=os.path.basename(path), content_disposition_type="inline")
    log.warning("media of item %s refused: %s", item_id, printable_line("; ".join(reasons) or "it has no file"))
    raise HTTPException(status_code=404, detail=f"item {item_id}: none of its files is still the file ingested")


# ':path': the item may be named by an ingested file's path, whose '/'s arrive decoded from %2F.
@router.get("/items/{item_id:path}/similar", summary="Similar items ('embedder similar'): by id or ingested path")
def similar(
    item_id: str,
    by: str = "content",
    limit: int = Query(10, ge=1, le=1000),
    collapse_duplicates: bool = Query(
        False, description="Each cluster of near-duplicates once, and no copy of the item"
    ),
    svc: Service = Depends(service),
) -> dict:
    items = svc.library.similar(item_id, by=by, limit=limit, collapse_duplicates=collapse_duplicates)
    return {"item": item_id, "by": by, "items": [r.to_dict() for r in items]}
