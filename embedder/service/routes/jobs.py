"""Jobs: ``POST /ingest`` starts an ingest in the background and ``GET /jobs/{id}`` follows it;
``POST /jobs/run`` runs a scheduled job in the server (:mod:`embedder.service.scheduled`) and
``GET /schedule`` shows what ``serve --schedule`` runs."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field

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


class JobRequest(BaseModel):
    """A scheduled job handed to the server by ``embedder jobs run NAME``: its name and its steps,
    each the arguments of one ``embedder`` command."""

    name: str = Field(..., min_length=1, max_length=200)
    steps: list[list[str]] = Field(..., min_length=1, max_length=50)


@router.post("/jobs/run", summary="Run a scheduled job in the server ('embedder jobs run NAME' hands it here)")
def run_job(request: JobRequest, svc: Service = Depends(service)) -> dict:
    import re

    from pipelines.scheduler import Job

    for step in request.steps:  # an unknown command fails as its step, with the CLI's own 'usage:' line
        if not step or not re.fullmatch(r"[a-z][a-z-]*", step[0]):
            raise HTTPException(status_code=422, detail=f"a step must start with an embedder command, not {step[:1]}")
    ok, message = svc.scheduled.run(Job(request.name, "", tuple(tuple(s) for s in request.steps)))
    return {"job": request.name, "ok": ok, "message": message}


@router.get("/schedule", summary="The jobs 'serve --schedule' runs: next runs and recent outcomes")
def schedule(svc: Service = Depends(service)) -> dict:
    scheduler = svc.scheduler
    if scheduler is None:
        return {"scheduled": False, "jobs": [], "outcomes": []}
    jobs = [
        {"name": name, "cron": job.cron, "next_run": scheduler.next_run[name].isoformat(timespec="minutes")}
        for name, job in scheduler.jobs.items()
    ]
    return {"scheduled": True, "jobs": jobs, "outcomes": scheduler.outcomes[-50:]}


@router.post(
    "/warm/exit", summary="A warm query process steps aside for a command that writes", include_in_schema=False
)
def warm_exit(svc: Service = Depends(service)) -> dict:
    if not svc.warm_process or svc.request_exit is None:
        raise HTTPException(status_code=404, detail="not a warm query process: stop 'embedder serve' yourself")
    svc.request_exit()
    return {"exiting": True}
