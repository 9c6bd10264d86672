"""``POST /events``: interaction events, within the write limits (:mod:`embedder.limits`)."""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException

from embedder.limits import LimitExceeded
from embedder.service.state import Service, service

router = APIRouter()


@router.post("/events", summary="Append interaction events (one object or a list); they count at once")
def events(body: Any = Body(...), svc: Service = Depends(service)) -> dict:
    from embedder.recommend.interactions import Interaction

    rows = body if isinstance(body, list) else [body]
    if not rows:
        raise HTTPException(status_code=422, detail="no events: send one event object or a list of them")
    _within_limits(svc, lambda: svc.gate.limits.check_batch(rows))
    stored_user = svc.library.settings.stored_user
    try:
        parsed = [
            Interaction(
                stored_user(str(r["user"])),
                str(r["item"]),
                float(r.get("weight", 1.0)),
                ts=float(r.get("ts", time.time())),
                event=str(r.get("event", "")),
            )
            for r in rows
        ]
        if not all(math.isfinite(e.weight) and math.isfinite(e.ts) for e in parsed):
            raise ValueError("weight and ts must be finite numbers")
    except (KeyError, TypeError, ValueError) as exc:
        raise HTTPException(status_code=422, detail=f"each event needs user and item, weight a number: {exc}") from None
    keys, known = svc.library.join_items([e.item for e in parsed])
    _within_limits(svc, lambda: svc.gate.admit(parsed, lambda _: known))
    parsed = [Interaction(e.user, keys[e.item], e.weight, e.ts, e.event) for e in parsed]  # as the store knows it
    report = svc.library.record_events(parsed)
    svc.metrics.events.inc(len(parsed))
    return report


def _within_limits(svc: Service, check) -> None:
    """Run ``check``; a limit it finds exceeded is a JSON error, counted by reason."""
    try:
        check()
    except LimitExceeded as exc:
        svc.metrics.events_refused.labels(exc.reason).inc()
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
