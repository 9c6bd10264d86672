"""Search: by text (``/search``), like an item (``/items/{id}/like``), like an upload (``/search/file``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from embedder.errors import printable_line
from embedder.media.access import FileIdentity, NotServable, open_recorded
from embedder.service.state import MAX_QUERY_CHARS, UPLOAD_CHUNK, Service, hits_json, log, service

router = APIRouter()


@router.get("/search", summary="Search by text ('embedder search TEXT'), for a user, or for moments")
def search(
    q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS),
    limit: int = Query(10, ge=1, le=1000),
    modality: str = "all",
    filter: list[str] = Query(default=[]),
    min_score: float | None = None,
    moments: bool = False,
    user: str | None = Query(None, min_length=1, max_length=512),
    seen: str = "demote",
    mode: str = Query(
        "auto",
        description="hybrid (dense and lexical rankings fused), dense, lexical, or auto: hybrid where the "
        "collection has a lexical index. Quoted phrases must occur as phrases.",
    ),
    fusion: str = Query("rrf", description="How hybrid fuses: rrf (reciprocal rank) or dbsf (normalised scores)."),
    collapse_duplicates: bool = Query(
        False, description="Show each cluster of near-duplicates ('embedder duplicates --mark') once."
    ),
    diversity: float | None = Query(
        None, gt=0, le=1, description="0-1: maximal marginal relevance on the dense side (dense mode)."
    ),
    svc: Service = Depends(service),
) -> dict:
    svc.batched()
    hits = svc.library.search(
        q,
        limit=limit,
        modality=modality,
        filters=filter,
        min_score=min_score,
        moments=moments,
        user=user,
        seen=seen,
        mode=mode,
        fusion=fusion,
        collapse_duplicates=collapse_duplicates,
        diversity=diversity,
    )
    used = hits[0].mode if hits else None
    return {
        "query": q,
        "like": None,
        "mode": used,
        "fusion": fusion if used == "hybrid" else None,
        "modality": modality,
        "min_score": min_score,
        "moments": moments,
        "user": user,
        "hits": hits_json(hits),
    }


@router.get("/items/{item_id}/like", summary="Items like an ingested item ('embedder search --like ID')")
def search_like(
    item_id: str,
    limit: int = Query(10, ge=1, le=1000),
    modality: str = "all",
    filter: list[str] = Query(default=[]),
    include_self: bool = False,
    moments: bool = False,
    user: str | None = Query(None, min_length=1, max_length=512),
    seen: str = "demote",
    collapse_duplicates: bool = False,
    svc: Service = Depends(service),
) -> dict:
    svc.item_or_404(item_id)
    hits = svc.library.search(
        like=item_id,
        limit=limit,
        modality=modality,
        filters=filter,
        include_self=include_self,
        moments=moments,
        user=user,
        seen=seen,
        collapse_duplicates=collapse_duplicates,
    )
    return {
        "query": None,
        "like": item_id,
        "modality": modality,
        "moments": moments,
        "user": user,
        "hits": hits_json(hits),
    }


@router.post("/search/file", summary="Items like an uploaded file (decoded in an isolated worker)")
def search_file(
    file: UploadFile = File(...),
    limit: int = Query(10, ge=1, le=1000),
    modality: str = "all",
    moments: bool = False,
    svc: Service = Depends(service),
) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="embedder-upload-"))
    try:
        target = _receive(file, tmp, svc.max_upload_mb)
        hits = svc.library.search(like=str(target), limit=limit, modality=modality, moments=moments)
        return {"query": None, "like": file.filename, "modality": modality, "moments": moments, "hits": hits_json(hits)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _receive(file: UploadFile, tmp: Path, max_upload_mb: float) -> Path:
    """Write the upload into the private folder ``tmp``, bounded, and check it is still that file."""
    target = tmp / f"upload{Path(file.filename or 'upload').suffix[:16]}"
    size, limit_bytes = 0, int(max_upload_mb * 1e6)
    # Created here, never followed: the decoder reads exactly the file this request wrote.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := file.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit_bytes:
                raise HTTPException(status_code=413, detail=f"the file is over {max_upload_mb:g} MB")
            out.write(chunk)
        out.flush()
        written = os.fstat(out.fileno())
    identity = FileIdentity(
        size,
        written.st_mtime_ns,
        written.st_dev,
        written.st_ino,
        str(target.resolve()),
        str(tmp.resolve()),
        written.st_ctime_ns,
    )
    try:
        fh, _ = open_recorded(str(target), identity, "")
    except NotServable as exc:
        log.warning("upload refused: %s", printable_line(str(exc)))
        raise HTTPException(status_code=400, detail="the upload changed on disk before it was read") from None
    fh.close()
    return target
