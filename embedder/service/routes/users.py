"""Users: the picker's list, recommendations, similar users."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from embedder.service.state import MAX_QUERY_CHARS, Service, service

router = APIRouter()


@router.get("/users", summary="The most active users, for a user picker")
def users(limit: int = Query(100, ge=1, le=10000), svc: Service = Depends(service)) -> dict:
    return {"users": svc.library.users_by_activity(limit)}


@router.get("/users/{user}/recommendations", summary="Recommendations ('embedder recommend')")
def recommend(
    user: str,
    strategy: str = Query(
        "auto", description="A strategy name, or auto: the one 'interactions train --auto' chose (else hybrid)"
    ),
    limit: int = Query(10, ge=1, le=1000),
    exclude_seen: bool = True,
    query: str | None = Query(None, max_length=MAX_QUERY_CHARS),
    collapse_duplicates: bool = Query(
        False, description="Each cluster of near-duplicates once, and no copy of an item the user has had"
    ),
    svc: Service = Depends(service),
) -> dict:
    svc.check_user(user)
    return svc.library.recommend(
        user,
        strategy=strategy,
        limit=limit,
        exclude_seen=exclude_seen,
        query=query,
        collapse_duplicates=collapse_duplicates,
    ).to_dict()


@router.get("/users/{user}/similar", summary="Users with the closest taste ('embedder similar-users')")
def similar_users(user: str, limit: int = Query(10, ge=1, le=1000), svc: Service = Depends(service)) -> dict:
    svc.check_user(user)
    return {"user": user, "users": svc.library.similar_users(user, limit=limit)}
