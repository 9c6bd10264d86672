"""The web page (``/``) and its two assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
router = APIRouter()


@router.get(
    "/",
    summary="The web page: search, more like this, recommendations",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def page():
    return HTMLResponse((WEB_DIR / "index.html").read_text())


@router.get("/ui/{name}", include_in_schema=False)
def page_asset(name: str):
    if name not in ("app.js", "style.css"):
        raise HTTPException(status_code=404, detail=f"no page asset {name}")
    return FileResponse(WEB_DIR / name, media_type="text/javascript" if name.endswith(".js") else "text/css")
