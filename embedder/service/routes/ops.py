"""Probes and metrics: ``/health``, ``/ready``, ``/metrics``, ``/status``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from embedder.service.state import Service, service

router = APIRouter()


@router.get("/health", summary="The process answers")
def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", summary="Models loaded and store open (503 until then)")
def ready(svc: Service = Depends(service)):
    if not svc.ready:
        return JSONResponse(status_code=503, content={"ready": False, "reason": "loading models"})
    return {"ready": True, "points": svc.library.media.count()}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(svc: Service = Depends(service)):
    svc.metrics.store_points.set(svc.library.media.count())
    return PlainTextResponse(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/status", summary="Back-end, collection, items, modalities and models ('embedder status')")
def status(svc: Service = Depends(service)) -> dict:
    return svc.library.status()
