"""Ingest jobs: ``POST /ingest`` starts one in the background, ``GET /jobs/{id}`` follows it."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Body, Depends, HTTPException

from embedder.errors import EmbedderError
from embedder.service.state import IngestJob, Service, service

router = APIRouter()


@router.post("/ingest", summary="Ingest folders on the server's disk, in the background", status_code=202)
def ingest(
    paths: list[str] = Body(..., embed=True, min_length=1),
    removals: str = Body("guarded", embed=True, pattern="^(guarded|prune|never)$"),
    dry_run: bool = Body(False, embed=True),
    retry_failed: bool = Body(False, embed=True),
    svc: Service = Depends(service),
) -> dict:
    if any(j.state in ("queued", "running") for j in svc.jobs.values()):
        raise HTTPException(status_code=409, detail="an ingest job is already running")
    job = IngestJob(paths)
    svc.jobs[job.id] = job

    def run() -> None:
        job.state = "running"
        try:
            summary = svc.library.ingest(
                paths, removals=removals, dry_run=dry_run, retry_failed=retry_failed, progress=job
            )
            job.summary = summary.to_dict()
            job.state = "done"
        except Exception as exc:  # reported to whoever polls the job, never lost
            job.error = str(exc) if isinstance(exc, EmbedderError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"

    threading.Thread(target=run, name=f"embedder-ingest-{job.id}", daemon=True).start()
    return job.to_dict()


@router.get("/jobs/{job_id}", summary="An ingest job's state, progress and outcome")
def job(job_id: str, svc: Service = Depends(service)) -> dict:
    if job_id not in svc.jobs:
        raise HTTPException(status_code=404, detail=f"no job {job_id}")
    return svc.jobs[job_id].to_dict()
