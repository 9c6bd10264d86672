"""``embedder inspect``: what ingest would do with each file, without encoding or storing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.encoders.bundle import configured_image_size
from embedder.media.decode import DecodeOptions, decode_item
from embedder.media.discover import discover
from embedder.media.isolation import map_isolated
from embedder.progress import Progress

if TYPE_CHECKING:
    from embedder.settings import Settings


def inspect_paths(paths: list[str | Path], settings: Settings, progress: Progress | None = None) -> list[dict]:
    """Report, per file, the probe facts, decoder, sampled frames, audio windows and text.

    Files that would be skipped or fail carry ``status`` "skipped" or "failed" with the stage
    and reason. The order is the discovery order (sorted by path). ``progress`` hears of the
    walk and of each file as it is decoded.
    """
    progress = progress or Progress()
    # A report names every stream, its disposition and both frame rates: ffprobe for every file.
    options = replace(
        DecodeOptions.from_settings(settings, image_size=configured_image_size(settings)), exact_probe=True
    )
    found = discover(
        paths,
        include_hidden=settings.include_hidden,
        max_files=settings.discover_max_files,
        timeout_s=settings.discover_timeout_s,
        on_progress=progress.note,
    )
    reports: dict[str, dict] = {}
    tasks = []
    for f in found.files:
        reports[str(f.path)] = {"path": str(f.path), "size": f.size, "sha256": f.sha256, "container": f.container}
        tasks.append((str(f.path), (str(f.path), options)))
    progress.start(len(tasks), "inspect")
    for result in map_isolated(decode_item, tasks, workers=settings.workers, timeout_s=settings.decode_timeout_s):
        report = reports[result.key]
        if result.error is not None:
            report.update(status="failed", stage=result.error.stage, reason=result.error.reason)
        else:
            report.update(status="ok", **result.value.summary())
        progress.advance(result.key, report["status"])
    progress.finish()
    for s in found.skipped:
        reports.setdefault(s.path, {"path": s.path, "status": "skipped", "stage": "discover", "reason": s.reason})
    return [reports[k] for k in sorted(reports)]
