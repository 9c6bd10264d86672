"""``embedder ingest``: discover -> plan against the store -> decode -> encode -> fuse -> write.

Idempotent: point ids come from content hashes, unchanged files are recognised by hash without
decoding, and a path that changed or vanished is unlinked only after its replacement is stored,
so a killed run loses nothing and the next run finishes the job.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from embedder.encoders.bundle import schema_for
from embedder.errors import EmbedderError, Failure, one_line
from embedder.fusion import FUSION_VERSION, item_weights
from embedder.jobs_lock import job_lock
from embedder.media.decode import DecodeOptions, DecodedItem, decode_item
from embedder.media.discover import DiscoveredFile, discover
from embedder.media.isolation import map_isolated
from embedder.progress import Progress
from embedder.store import PointRecord, VectorStore, open_store, point_id

GROUP_MAX_ITEMS = 16  # decoded items encoded together; bounds memory while filling batches


@dataclass
class IngestPlan:
    """What a run will do, decided from hashes alone."""

    to_encode: list[DiscoveredFile] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    links: dict[str, list[DiscoveredFile]] = field(default_factory=dict)  # existing point id -> files to add
    unlink: dict[str, set[str]] = field(default_factory=dict)  # path -> point ids that must drop it
    removed: list[str] = field(default_factory=list)


@dataclass
class IngestSummary:
    """The outcome of a run (``to_dict`` is the ``--json`` output)."""

    new: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    failed: list[Failure]
    skipped: list[dict]
    warnings: list[dict]
    timings: dict
    dry_run: bool
    elapsed_s: float
    store: dict

    def to_dict(self) -> dict:
        decoded = len(self.new) + len(self.updated) + len(self.failed)
        return {
            "counts": {
                "new": len(self.new),
                "updated": len(self.updated),
                "unchanged": len(self.unchanged),
                "removed": len(self.removed),
                "failed": len(self.failed),
                "skipped": len(self.skipped),
            },
            "new": self.new,
            "updated": self.updated,
            "removed": self.removed,
            "failed": [f.to_dict() for f in self.failed],
            "skipped": self.skipped,
            "warnings": self.warnings,
            "timings": self.timings,
            "dry_run": self.dry_run,
            "elapsed_s": round(self.elapsed_s, 3),
            "files_per_s": round(decoded / self.elapsed_s, 3) if self.elapsed_s > 0 and decoded else None,
            "store": self.store,
        }


def _under(path: str, roots: list[Path]) -> bool:
    for root in roots:
        r = str(root)
        if path == r or (root.is_dir() and path.startswith(r.rstrip(os.sep) + os.sep)):
            return True
    return False


@dataclass
class StoreIndex:
    """Which stored points hold which paths, and the hashes already known for those paths."""

    ids_by_path: dict[str, set[str]] = field(default_factory=dict)
    paths_by_id: dict[str, list[str]] = field(default_factory=dict)
    hash_cache: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, store: VectorStore) -> "StoreIndex":
        index = cls()
        for record in store.scroll():
            payload = record.payload
            paths = list(payload.get("paths") or [])
            index.paths_by_id[record.id] = paths
            stamps = payload.get("mtimes") or {}
            for p in paths:
                index.ids_by_path.setdefault(p, set()).add(record.id)
                if p in stamps and "sha256" in payload:
                    index.hash_cache[p] = (int(payload.get("size", -1)), int(stamps[p]), payload["sha256"])
        return index


def plan_ingest(found, index: StoreIndex) -> IngestPlan:
    """Compare discovered files with the store's points by content hash and path."""
    ids_by_path, paths_by_id = index.ids_by_path, index.paths_by_id
    plan = IngestPlan()
    seen: set[str] = set()
    planned: set[str] = set()  # ids encoded in this run: identical files are encoded once
    for f in found.files:
        path, pid = str(f.path), point_id(f.sha256)
        seen.add(path)
        known_ids = ids_by_path.get(path, set())
        stale = known_ids - {pid}
        if stale:
            plan.unlink[path] = stale
        if pid in paths_by_id or pid in planned:
            if path in paths_by_id.get(pid, ()):
                plan.unchanged.append(path)
            else:  # same content already stored under another path: link, don't re-encode
                plan.links.setdefault(pid, []).append(f)
                (plan.updated if known_ids else plan.new).append(path)
        else:
            plan.to_encode.append(f)
            planned.add(pid)
            (plan.updated if known_ids else plan.new).append(path)
    unreadable = {s.path for s in found.skipped if s.reason.startswith("cannot")}
    for path, ids in sorted(ids_by_path.items()):
        if path not in seen and path not in unreadable and _under(path, found.roots):
            plan.removed.append(path)
            plan.unlink.setdefault(path, set()).update(ids)
    return plan


def build_payload(f: DiscoveredFile, item: DecodedItem, encoders, weights: dict[str, float]) -> dict:
    """What a point records about its file, and what produced its vectors (provenance)."""
    present = [m for m in ("visual", "audio", "text") if m in item.modalities]
    return {
        "path": str(f.path),
        "paths": [str(f.path)],
        "mtimes": {str(f.path): f.mtime_ns},  # lets the next run skip re-hashing unchanged files
        "sha256": f.sha256,
        "size": f.size,
        "duration": round(item.info.duration, 3),
        "kind": item.info.kind,
        "modalities": present,
        "models": {m: encoders.model_ids[m] for m in present},
        "fusion": {"version": FUSION_VERSION, "weights": item_weights(present, weights)},
        "text": item.text.text[:500],
        "text_source": item.text.source,
        "frames": [] if item.frames is None else item.frames.timestamps,
        "audio_windows": 0 if item.audio is None else len(item.audio.windows),
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _apply_unlinks(store: VectorStore, unlink: dict[str, set[str]]) -> None:
    """Drop paths from points; delete points left with no path."""
    by_id: dict[str, set[str]] = {}
    for path, ids in unlink.items():
        for pid in ids:
            by_id.setdefault(pid, set()).add(path)
    for record in store.retrieve(sorted(by_id)):
        keep = [p for p in record.payload.get("paths") or [] if p not in by_id[record.id]]
        if keep:
            mtimes = {p: t for p, t in (record.payload.get("mtimes") or {}).items() if p in keep}
            store.set_payload([record.id], {"paths": keep, "path": keep[0], "mtimes": mtimes})
        else:
            store.delete([record.id])


def _apply_links(
    store: VectorStore, links: dict[str, list[DiscoveredFile]], failed: list[Failure], sha_by_path: dict[str, str]
) -> list[Failure]:
    """Add paths to points holding the same content; returns failures for copies of failed files."""
    failed_ids = {point_id(sha_by_path[f.path]): f for f in failed if f.path in sha_by_path}
    extra = [
        Failure(str(copy.path), failed_ids[pid].stage, f"same content as {failed_ids[pid].path}: {failed_ids[pid].reason}")
        for pid, copies in links.items() if pid in failed_ids for copy in copies
    ]
    for record in store.retrieve(sorted(links)):
        files = links[record.id]
        paths = list(dict.fromkeys([*(record.payload.get("paths") or []), *(str(f.path) for f in files)]))
        mtimes = {**(record.payload.get("mtimes") or {}), **{str(f.path): f.mtime_ns for f in files}}
        store.set_payload([record.id], {"paths": paths, "path": paths[0], "mtimes": mtimes})
    return extra


def run_ingest(
    paths: list[str | Path],
    settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    store: VectorStore | None = None,
    encoders=None,
    client=None,
    locked: bool = False,
) -> IngestSummary:
    """Ingest files and folders into the store named by ``settings``.

    Args:
        paths: files and folders; a folder's files that were stored before and are gone now
            are removed from the collection.
        settings: :class:`embedder.settings.Settings`.
        dry_run: plan only: report what would be new, updated, unchanged and removed.
        progress: receives per-file progress.
        store, encoders: already-open ones to reuse (tests, long-running workers).
        client: a ``QdrantClient`` to use instead of ``settings.store`` (tests).
        locked: the caller already holds the store's job lock (re-embedding calls ingest).

    Raises:
        EmbedderError: the run cannot proceed (no input, store or weights unavailable).
    """
    started = time.monotonic()
    progress = progress or Progress()
    if not any(os.path.lexists(os.path.expanduser(str(p))) for p in paths):
        raise EmbedderError("nothing to ingest: " + ", ".join(str(p) for p in paths) + " not found")
    with contextlib.nullcontext() if locked else job_lock(settings, "ingest"):
        return _run_ingest(paths, settings, dry_run, progress, store, encoders, client, started)


def _run_ingest(paths, settings, dry_run, progress, store, encoders, client, started) -> IngestSummary:
    dims = schema_for(settings)
    own_store = store is None
    store = store or open_store(settings, client=client)
    failed: list[Failure] = []
    warnings: list[dict] = []
    timings: dict = {}
    try:
        if dry_run:
            existing = store.collection_dims()
            if existing is not None and existing != dims:
                store.ensure_collection(dims)  # raises the mismatch error
        else:
            store.ensure_collection(dims)
        index = StoreIndex.read(store)
        found = discover(paths, include_hidden=settings.include_hidden, hash_cache=index.hash_cache)
        plan = plan_ingest(found, index)
        progress.note(
            f"{len(found.files)} media files: {len(plan.to_encode)} to encode, {len(plan.unchanged)} unchanged, "
            f"{len(plan.removed)} removed"
        )
        if not dry_run:
            if plan.to_encode:
                if encoders is None:
                    from embedder.encoders.bundle import load_encoders

                    progress.note("loading models")
                    encoders = load_encoders(settings)
                failed, warnings, timings = _encode_and_write(plan, settings, store, encoders, progress)
            failed += _apply_links(store, plan.links, failed, {str(f.path): f.sha256 for f in plan.to_encode})
            failed_paths = {f.path for f in failed}
            # A file that failed keeps its old point and links: nothing stored is lost.
            _apply_unlinks(store, {p: ids for p, ids in plan.unlink.items() if p not in failed_paths})
        failed_paths = {f.path for f in failed}
        return IngestSummary(
            new=[p for p in plan.new if p not in failed_paths],
            updated=[p for p in plan.updated if p not in failed_paths],
            unchanged=plan.unchanged,
            removed=plan.removed,
            failed=failed,
            skipped=[{"path": s.path, "reason": s.reason} for s in found.skipped],
            warnings=warnings,
            timings=timings,
            dry_run=dry_run,
            elapsed_s=time.monotonic() - started,
            store=store.info(),
        )
    finally:
        if own_store:
            store.close()


def _encode_and_write(plan: IngestPlan, settings, store: VectorStore, encoders, progress: Progress):
    from embedder.embedding import embed_items

    options = DecodeOptions.from_settings(settings, image_size=encoders.clip.image_size)
    by_path = {str(f.path): f for f in plan.to_encode}
    failed: list[Failure] = []
    warnings: list[dict] = []
    group: list[tuple[DiscoveredFile, DecodedItem]] = []
    # Where the time goes (clip-retrieval reports the same split): waiting for decoders means the
    # encoder is starved; encode time dominating means decoding keeps up.
    timings = {"wait_for_decode_s": 0.0, "encode_s": 0.0, "write_s": 0.0}

    def write(batch):
        started = time.perf_counter()
        try:
            vectors = embed_items([item for _, item in batch], encoders, settings.fusion_weights, settings.batch_size)
        except Exception as exc:
            if len(batch) > 1:  # find the item that breaks the batch; the others still go in
                for one in batch:
                    write([one])
                return
            failed.append(Failure(str(batch[0][0].path), "encode", one_line(exc, 200)))
            progress.advance(str(batch[0][0].path), "failed")
            return
        finally:
            timings["encode_s"] += time.perf_counter() - started
        started = time.perf_counter()
        points = [
            PointRecord(point_id(f.sha256), v.named(), build_payload(f, item, encoders, settings.fusion_weights))
            for (f, item), v in zip(batch, vectors)
        ]
        store.upsert(points)  # a store error stops the run: nothing can be written anyway
        timings["write_s"] += time.perf_counter() - started
        for f, item in batch:
            if item.warnings:
                warnings.append({"path": str(f.path), "warnings": item.warnings})
            progress.advance(str(f.path), "ok")

    progress.start(len(plan.to_encode), "ingest")
    tasks = [(str(f.path), (str(f.path), options)) for f in plan.to_encode]
    results = map_isolated(decode_item, tasks, workers=settings.workers, timeout_s=settings.decode_timeout_s)
    while True:
        waited = time.perf_counter()
        result = next(results, None)
        timings["wait_for_decode_s"] += time.perf_counter() - waited
        if result is None:
            break
        if result.error is not None:
            failed.append(Failure.from_error(result.error))
            progress.advance(result.key, "failed")
            continue
        group.append((by_path[result.key], result.value))
        frames = sum(0 if i.frames is None else len(i.frames.timestamps) for _, i in group)
        if len(group) >= GROUP_MAX_ITEMS or frames >= 4 * settings.batch_size:
            write(group)
            group = []
    if group:
        write(group)
    progress.finish()
    failed.sort(key=lambda f: f.path)
    return failed, warnings, {k: round(v, 3) for k, v in timings.items()}
