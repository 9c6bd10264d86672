"""``embedder reembed``: find stale vectors and rebuild them without search downtime.

Causes of staleness, per stored item:

* ``model:<modality>``: the encoder that produced a modality vector is not the configured one;
* ``fusion``: the content vector was fused by another rule or other weights;
* ``segments``: the item's moments were cut by another rule (mode, length, version) than the
  settings name, or it has none (a collection made before moments): its segment vectors are
  rebuilt from the file, with the rest, blue-green;
* ``speech``: the item has sound and its transcript was made by another speech model than the
  settings name (or none was made): the file is decoded again for its words, blue-green;
* ``words``: the item predates lexical search (no ``words`` payload): the same;
* ``content``: the file at the item's path has other bytes now;
* ``gone``: none of the item's files exists any more;
* ``head``: its ``rec`` vector is missing (media added after training) or comes from another
  trained head than the users' current one; the current head's item tower recomputes it from
  the stored modality vectors (if the encoders changed since training, retrain instead).

Content and gone are ingest's business: ``reembed`` runs ingest over the folders the items came
from. Model and fusion changes are rebuilt blue-green: the next versioned collection is filled
(unchanged modality vectors, CF and head vectors are reused; only changed modalities are
re-encoded), counts are verified, and then the alias moves in one atomic step. The previous
version stays for ``embedder collections rollback``. A killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.encoders.bundle import configured_model_ids, schema_for
from embedder.errors import EmbedderError, Failure, one_line
from embedder.fusion import FUSION_VERSION, MODALITIES, fuse, item_weights
from embedder.jobs_lock import job_lock
from embedder.progress import Progress
from embedder.store import PointRecord, VectorStore, open_store
from embedder.store.catalog import open_catalog
from embedder.store.factory import open_physical

if TYPE_CHECKING:
    from embedder.settings import Settings

# Points read, rebuilt and written together by a blue-green rebuild: one upsert per page, and a
# killed run resumes after the last page written.
REBUILD_PAGE = 64


@dataclass
class StaleItem:
    id: str
    path: str | None
    causes: list[str]


@dataclass
class ReembedPlan:
    """Stale items by cause, and what the rebuild will do."""

    items: int = 0
    stale: list[StaleItem] = field(default_factory=list)
    rebuild_collection: bool = False  # a model or fusion change: blue-green
    folders: list[str] = field(default_factory=list)  # re-ingested for content and gone causes

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.stale:
            for c in s.causes:
                key = c.split(":")[0] if not c.startswith("model:") else c
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


def _content_changed(payload: dict, path: str) -> bool:
    from embedder.media.discover import hash_file

    stamp = (payload.get("mtimes") or {}).get(path)
    st = os.stat(path)
    if stamp is not None and int(stamp) == st.st_mtime_ns and st.st_size == payload.get("size"):
        return False
    return hash_file(Path(path)) != payload.get("sha256")


def _segments_stale(payload: dict, settings: Settings, stamp: dict, has_vector: bool) -> bool:
    """Whether an item's moments must be cut again (or dropped, with segments turned off)."""
    if not settings.segments:
        return bool(payload.get("segments"))
    return not has_vector or payload.get("segmenting") != stamp


def _words_stale(payload: dict, settings: Settings) -> list[str]:
    """``speech`` when the item's transcript is another model's than the configured one (an item
    without sound needs none), ``words`` when it predates lexical search."""
    causes = []
    heard = payload.get("speech_model", "none")
    if "audio" in (payload.get("modalities") or []) and heard != settings.speech_model:
        causes.append("speech")
    if "words" not in payload:
        causes.append("words")
    return causes


def find_stale(store: VectorStore, settings: Settings, head_version: str | None = None) -> ReembedPlan:
    """Check every stored item's provenance against the current settings and files."""
    from embedder.media.segments import SegmentOptions

    models = configured_model_ids(settings)
    weights = settings.fusion_weights
    stamp = SegmentOptions.from_settings(settings).stamp()
    has_segments = store.has_vector("segments")
    plan = ReembedPlan()
    folders: set[str] = set()
    for record in store.scroll():
        p = record.payload
        paths = p.get("paths") or []
        if not paths:
            if p.get("text_source") == "catalogue":  # metadata only: its text is re-encoded from the payload
                plan.items += 1
                causes = [f"model:{m}" for m in _changed_modalities(p, models)]
                if (p.get("fusion") or {}).get("version") != FUSION_VERSION:
                    causes.append("fusion")
                if causes:
                    plan.stale.append(StaleItem(record.id, p.get("item"), causes))
            continue  # an item known only from interactions: nothing to embed
        plan.items += 1
        causes = []
        present = p.get("modalities") or []
        for m in present:
            if (p.get("models") or {}).get(m) != models[m]:
                causes.append(f"model:{m}")
        fusion = p.get("fusion") or {}
        expected = item_weights(present, weights)
        if fusion.get("version") != FUSION_VERSION or any(
            abs(float((fusion.get("weights") or {}).get(m, -1)) - expected[m]) > 1e-6 for m in present
        ):
            causes.append("fusion")
        if _segments_stale(p, settings, stamp, has_segments):
            causes.append("segments")
        causes += _words_stale(p, settings)
        existing = [x for x in paths if os.path.exists(x)]
        if not existing:
            causes.append("gone")
        elif any(_content_changed(p, x) for x in existing):
            causes.append("content")
        if head_version and p.get("rec_model") != head_version:
            causes.append("head")  # a newer head, or an item added after training
        if causes:
            plan.stale.append(StaleItem(record.id, p.get("path"), causes))
            if "gone" in causes or "content" in causes:
                folders.update(os.path.dirname(x) for x in paths)
    plan.rebuild_collection = any(
        c.startswith("model:") or c in ("fusion", "segments", "speech", "words") for s in plan.stale for c in s.causes
    )
    plan.folders = sorted(f for f in folders if os.path.isdir(f))
    return plan


def _state_path(settings: Settings) -> Path:
    from embedder.jobs_lock import lock_path

    return lock_path(settings).with_name(f"reembed-{settings.collection}.json")


def run_reembed(
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    encoders=None,
    allow_failures: bool = False,
) -> dict:
    """Detect stale items and rebuild them (see the module docstring).

    Args:
        encoders: loaded encoders to reuse, or a function that loads them (called only when an
            item needs re-encoding); ``None`` loads them when needed.
        allow_failures: switch the alias even if some items could not be rebuilt (they are left
            out of the new version, and listed).
    """
    progress = progress or Progress()
    started = time.monotonic()
    with job_lock(settings, "reembed"):
        catalog = open_catalog(settings)
        source, exists = catalog.resolve(settings.collection)
        if not exists:
            raise EmbedderError(f"collection '{settings.collection}' does not exist yet; run 'embedder ingest' first")
        users_head, head_run = _current_head(settings)
        with open_store(settings) as store:
            plan = find_stale(store, settings, users_head)
        report = {
            "collection": settings.collection,
            "source": source,
            "items": plan.items,
            "stale": len(plan.stale),
            "causes": plan.counts(),
            "dry_run": dry_run,
            "rebuild_collection": plan.rebuild_collection,
            "folders": plan.folders,
            "stale_items": [{"id": s.id, "path": s.path, "causes": s.causes} for s in plan.stale],
        }
        if dry_run or not plan.stale:
            report["elapsed_s"] = round(time.monotonic() - started, 3)
            return report
        if plan.folders:  # content changed or files gone: ingest does exactly that, idempotently
            from embedder.engine.ingest import run_ingest

            ingested = run_ingest(plan.folders, settings, progress=progress, encoders=encoders, locked=True).to_dict()
            report["ingest"] = {
                "counts": ingested["counts"],
                "failed": ingested["failed"],
                "held_back": ingested["held_back"],
            }
        if plan.rebuild_collection:
            report["rebuild"] = _blue_green(settings, catalog, source, progress, encoders, allow_failures)
        if users_head and any("head" in s.causes for s in plan.stale):
            report["head"] = _refresh_head_vectors(settings, users_head, head_run)
        report["elapsed_s"] = round(time.monotonic() - started, 3)
        return report


def _current_head(settings: Settings) -> tuple[str | None, str | None]:
    """(version, run directory) of the head that produced the users' ``rec`` vectors."""
    from embedder.store import users_collection

    with open_store(settings, collection=users_collection(settings)) as users:
        if users.collection_dims() is None:
            return None, None
        heads = {
            (r.payload["rec_model"], r.payload.get("rec_run")) for r in users.scroll() if r.payload.get("rec_model")
        }
    # Versions end in "@<UTC timestamp>": the newest head is the one with the latest timestamp.
    return max(heads, key=lambda h: h[0].rsplit("@", 1)[-1]) if heads else (None, None)


def _refresh_head_vectors(settings: Settings, version: str, run_dir: str | None) -> dict:
    """Compute ``rec`` vectors with the current head for items that lack them or have older ones.

    The head's item tower needs only the stored modality vectors, so new media become servable
    by ``recommend --strategy trained`` without retraining. Vectors from other encoders than the
    head was trained on are refused (the head must be retrained).
    """
    from embedder.train.inference import TrainedHead

    if not run_dir or not Path(run_dir).is_dir():
        return {
            "updated": 0,
            "note": f"the run directory of head {version} is not here ({run_dir}); retrain to refresh",
        }
    head = TrainedHead(run_dir)
    updated = 0
    with open_store(settings) as store:
        stale = [
            r
            for r in store.scroll(with_vectors=True)
            if r.payload.get("paths") and r.payload.get("rec_model") != version
        ]
        for start in range(0, len(stale), 256):
            batch = stale[start : start + 256]
            try:
                vectors = head.item_vectors(batch)
            except EmbedderError as exc:
                return {"updated": updated, "note": str(exc)}
            store.merge([PointRecord(r.id, {"rec": v}, {"rec_model": version}) for r, v in zip(batch, vectors)])
            updated += len(batch)
    return {"updated": updated, "head": version}


def _blue_green(settings: Settings, catalog, source: str, progress: Progress, encoders, allow_failures):
    """Fill the next version from ``source``, verify, then move the alias."""
    load = encoders if callable(encoders) else None  # a loader: called only if an item needs encoding
    encoders = None if load else encoders
    state_file = _state_path(settings)
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if state.get("source") == source and state.get("target") in catalog.collections():
        target = state["target"]  # a killed run: continue filling the same version
    else:
        target = catalog.next_version(settings.collection)
        state = {
            "source": source,
            "target": target,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state))
    models = configured_model_ids(settings)
    from embedder.media.segments import SegmentOptions

    stamp = SegmentOptions.from_settings(settings).stamp()

    failed: list[Failure] = []
    rebuilt = copied = 0
    with open_physical(settings, target) as new:
        new.ensure_collection(schema_for(settings))
        done = {r.id for r in new.scroll()}
        with open_physical(settings, source) as old:
            total = old.count()
            # Sparse vectors (item-to-item models) are read only when named; they carry over as is.
            sparse = sorted(old.sparse_names())
            wanted = [*(old.collection_dims() or {}), *sparse] if sparse else True
        for name in sparse:
            new.ensure_sparse(name)
        progress.start(total - len(done), f"reembed into {target}")
        offset = None
        while True:
            # The source is opened one page at a time, so searches served from it (an embedded
            # store admits one process at a time) only ever wait for a page read.
            with open_physical(settings, source) as old:
                page, offset = old.page(offset, limit=REBUILD_PAGE, with_vectors=wanted)
            points, outcomes = [], []
            for record in page:
                if record.id in done:
                    continue
                name = record.payload.get("path") or record.id
                try:
                    if encoders is None and _needs_encoders(record, models, settings, stamp):
                        from embedder.encoders.bundle import load_encoders

                        encoders = load() if load else load_encoders(settings)
                    point, how = _rebuild_point(record, settings, models, encoders, stamp)
                except EmbedderError as exc:
                    failed.append(Failure(name, getattr(exc, "stage", "encode"), getattr(exc, "reason", str(exc))))
                    progress.advance(name, "failed")
                    continue
                points.append(point)
                outcomes.append((name, how))
            if points:
                new.upsert(points)
            for name, how in outcomes:
                rebuilt += how == "rebuilt"
                copied += how == "copied"
                progress.advance(name, how)
            if offset is None:
                break
        progress.finish()
        from embedder.lexical import refresh

        refresh(new, settings.text_language)  # length normalisation over the new version's items
        expected = total - len(failed)
        got = new.count()
    if got != expected:
        raise EmbedderError(f"{target} has {got} points where {expected} were expected; the alias was not moved")
    if failed and not allow_failures:
        return {
            "target": target,
            "switched": False,
            "failed": [f.to_dict() for f in failed],
            "note": "some items could not be rebuilt; the alias still points at "
            + source
            + " (fix or remove the files and run again, or pass --allow-failures)",
        }
    catalog.switch_alias(settings.collection, target)
    state_file.unlink(missing_ok=True)
    return {
        "target": target,
        "switched": True,
        "previous": source,
        "rebuilt": rebuilt,
        "copied": copied,
        "failed": [f.to_dict() for f in failed],
    }


def _cut_again(payload: dict, settings: Settings, stamp: dict, changed: list[str]) -> bool:
    """Whether the item's segments must be rebuilt from its file: segmenting is on, and the item
    has none, was cut by another rule, or a model its segment vectors used has changed."""
    return settings.segments and (bool(changed) or payload.get("segmenting") != stamp)


def _changed_modalities(payload: dict, models: dict[str, str]) -> list[str]:
    """The item's modalities whose vectors another model made than the configured one."""
    return [m for m in payload.get("modalities") or [] if (payload.get("models") or {}).get(m) != models[m]]


def _needs_encoders(record, models, settings: Settings, stamp: dict) -> bool:
    p = record.payload
    changed = _changed_modalities(p, models)
    if not p.get("paths"):
        return p.get("text_source") == "catalogue" and bool(changed)
    return bool(changed) or _cut_again(p, settings, stamp, changed)


def _rebuild_catalogue_item(record, settings: Settings, models, encoders) -> PointRecord:
    """A catalogue item ('embedder items import') with its text encoded by the configured model."""
    p = dict(record.payload)
    words = p.get("words") or {}
    text = ". ".join(x for x in (words.get("title"), words.get("text")) if x) or p.get("text") or ""
    vector = encoders["text"].model.encode_texts([text])[0]
    vectors = dict(record.vectors)
    vectors["text"] = vector
    vectors["content"] = fuse({"text": vector}, encoders.dims, settings.fusion_weights)
    p["models"] = {"text": models["text"]}
    p["fusion"] = {"version": FUSION_VERSION, "weights": item_weights(["text"], settings.fusion_weights)}
    p["reembedded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return PointRecord(record.id, vectors, p)


def _rebuild_point(record, settings: Settings, models, encoders, stamp: dict | None = None) -> tuple[PointRecord, str]:
    """The new version of one point: changed modalities re-encoded, the rest reused, re-fused; its
    segments cut and encoded again when they are stale (which needs the file and every encoder)."""
    p = dict(record.payload)
    vectors = dict(record.vectors)
    present = p.get("modalities") or []
    if not p.get("paths"):
        if p.get("text_source") != "catalogue" or not _changed_modalities(p, models):
            return PointRecord(record.id, vectors, p), "copied"
        return _rebuild_catalogue_item(record, settings, models, encoders), "rebuilt"
    changed = _changed_modalities(p, models)
    if not settings.segments:
        vectors.pop("segments", None)
        p.pop("segments", None)
        p.pop("segmenting", None)
    if stamp is not None and _cut_again(p, settings, stamp, changed):
        fresh, segments = _encode_with_segments(p, record.id, settings, encoders)
        vectors.update({m: v for m, v in fresh.items() if m in changed})
        if segments is not None:
            vectors["segments"], p["segments"], p["segmenting"] = segments[0], segments[1], stamp
        if changed:
            for m in changed:
                if m not in fresh:
                    vectors.pop(m, None)
                    present = [x for x in present if x != m]
            p["modalities"] = present
    elif changed:
        fresh = _encode_modalities(p, changed, settings, encoders)
        vectors.update(fresh)
        for m in changed:
            if m not in fresh:  # the file no longer yields it: drop the old model's vector
                vectors.pop(m, None)
                present = [x for x in present if x != m]
        p["modalities"] = present
    if _words_stale(p, settings):
        _rewrite_words(p, vectors, settings)
    weights = settings.fusion_weights
    modality = {m: vectors.get(m) for m in MODALITIES}
    vectors["content"] = fuse(modality, encoders.dims if encoders else _dims_from(vectors, settings), weights)
    p["models"] = {m: models[m] for m in present}
    p["fusion"] = {"version": FUSION_VERSION, "weights": item_weights(present, weights)}
    p["reembedded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return PointRecord(record.id, {k: v for k, v in vectors.items() if v is not None}, p), "rebuilt"


def _rewrite_words(payload: dict, vectors: dict, settings: Settings) -> None:
    """Decode the item's file again for its words (file name, sidecar text, subtitles and the
    configured speech model's transcript) and set its lexical vector from them; no model loads."""
    from embedder.engine.stages import said_and_written
    from embedder.lexical import DEFAULT_AVG_LEN, LEXICAL, lexical_fields

    quick = settings.model_copy(update={"segments": False, "thumbnails": False, "max_frames": 1})
    path, item = _decode_stored(payload, quick, None)
    payload.pop("transcript", None)
    payload.update(said_and_written(path, item))
    named, fields = lexical_fields(payload, settings.text_language, DEFAULT_AVG_LEN)  # refresh() re-weights
    vectors.pop(LEXICAL, None)
    vectors.update(named)
    payload.update(fields)


def _dims_from(vectors, settings: Settings) -> dict[str, int]:
    dims = schema_for(settings)
    return {m: dims[m] for m in MODALITIES}


def _decode_stored(payload: dict, settings: Settings, encoders):
    """(path, decoded item) of the first of the item's files still on disk, decoded in isolation."""
    from embedder.embedding import decode_file
    from embedder.errors import MediaError

    path = next((x for x in payload.get("paths") or [] if os.path.exists(x)), None)
    if path is None:
        raise MediaError(payload.get("path") or "?", "decode", "file is gone")
    return path, decode_file(path, settings, encoders)


def _encode_with_segments(payload: dict, point: str, settings: Settings, encoders):
    """Decode the item's file (isolated) and encode all of it: its modality vectors, and its
    segments as (S x content vector, segment payloads), or ``None`` when it has none. The segment
    previews are written beside the store."""
    from embedder.embedding import embed_items
    from embedder.errors import MediaError
    from embedder.media.thumbnail import ThumbnailStore

    path, item = _decode_stored(payload, settings, encoders)
    try:
        vectors = embed_items([item], encoders, settings.fusion_weights, settings.batch_size)[0]
    except Exception as exc:
        raise MediaError(path, "encode", one_line(exc, 200)) from None
    if item.segment_thumbnails:
        ThumbnailStore(settings.thumbnails_dir).put_moments(point, item.segment_thumbnails)
    fresh = {m: v for m, v in vectors.named().items() if m in MODALITIES}
    if vectors.segments is None:
        return fresh, None
    return fresh, (vectors.segments, [s.to_payload() for s in item.segments])


def _encode_modalities(payload: dict, modalities: list[str], settings: Settings, encoders) -> dict:
    """Decode the item's file (isolated) and encode only the modalities whose model changed."""
    from embedder.embedding import encode_items
    from embedder.errors import MediaError

    path, item = _decode_stored(payload, settings, encoders)
    try:
        return encode_items(
            [item], encoders, settings.batch_size, modalities=[m for m in MODALITIES if m in modalities]
        )[0]
    except Exception as exc:
        raise MediaError(path, "encode", one_line(exc, 200)) from None
