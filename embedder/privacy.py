"""Erasure: forget a user everywhere embedder keeps a trace of them, and say so without naming them.

``forget_user`` removes, in this order, under the store's job lock:

1. the user's events from the interaction log; deleted rows are overwritten (``secure_delete``),
   the write-ahead log truncated and the file vacuumed, so the bytes leave the disk;
2. their influence on the collaborative model: ALS is fitted again on the remaining log (a full
   retrain: exact, and about a second for 100k events), which rewrites every item's ``cf``
   vectors and popularity;
3. their point in the users collection: on the embedded store the current version is copied,
   without them, into the next version, the alias moves, and every older version (rollback
   copies) is dropped, because a deleted point's payload stays in Qdrant's files until they are
   rewritten; on a Qdrant server the point is deleted (the server compacts its own files);
4. the trained head: their row of the user embeddings is zeroed in every run directory the users
   collection names (``rec_run``), their id in its ``index.json`` is replaced by the audit hash,
   its resumable checkpoints (``last/``, ``best/``) are deleted, and the head is marked stale so
   the next scheduled training replaces it;
5. an audit record (``privacy-audit.jsonl`` beside the store): what was removed and when, with the
   user as a keyed hash (HMAC-SHA256, key ``EMBEDDER_PRIVACY_KEY``, else a random key kept in
   ``.privacy-key`` beside the store, readable by its owner only).

Snapshots are copies taken before the erasure and still hold the user: the report lists them.

``forget_item`` removes a media item (or an item known only from the log): its point from the
media collection (rewritten the same way as the users collection in step 3, trash included), its
events, its failure record, and the collaborative model is fitted again without them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError
from embedder.jobs_lock import job_lock, lock_path

if TYPE_CHECKING:
    from embedder.settings import Settings

AUDIT_FILE = "privacy-audit.jsonl"
KEY_FILE = ".privacy-key"
HEAD_STALE_FILE = "head-stale.json"


def state_dir(settings: Settings) -> Path:
    """Beside an embedded store; the data directory for a server store."""
    return lock_path(settings).parent


def privacy_key(settings: Settings) -> bytes:
    """The key of the audit hashes: ``EMBEDDER_PRIVACY_KEY``, else a random one made once (mode 0600)."""
    env = os.environ.get("EMBEDDER_PRIVACY_KEY")
    if env:
        return env.encode()
    path = state_dir(settings) / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def user_hash(settings: Settings, user: str) -> str:
    """A keyed hash of a user id: the same for the same id and key, useless without the key."""
    return hmac.new(privacy_key(settings), user.encode(), hashlib.sha256).hexdigest()


def _forget_events(settings: Settings, value: str | list[str], column: str = "user") -> tuple[int, list]:
    """Delete the log's events whose ``column`` is one of ``value``, so that their bytes leave the file."""
    from embedder.recommend.interactions import InteractionLog, default_log_path

    values = [value] if isinstance(value, str) else list(value)
    path = default_log_path(settings)
    if not path.is_file():
        return 0, []
    with InteractionLog(path) as log:
        users = tuple(values) if column == "user" else ()
        removed = log.erase(f"{column} IN ({','.join('?' * len(values))})", tuple(values), users=users)
        return removed, log.all()


def _rewrite_without(settings: Settings, logical: str, point_id: str) -> dict:
    """``logical`` without one point, in files that never held it.

    Deleting a point from an embedded (Qdrant Edge) collection leaves its payload in the segment
    files and in the write-ahead log until they are rewritten, so the current version is copied,
    minus the point, into the next version (and its trash into that version's trash), the alias
    moves, and every older version is dropped with its trash. On a Qdrant server the point is
    deleted everywhere and the server compacts its own files.
    """
    from embedder.store import open_store
    from embedder.store.catalog import open_catalog, versions_of
    from embedder.store.factory import open_physical
    from embedder.trash import TRASH_SUFFIX

    catalog = open_catalog(settings)
    current, exists = catalog.resolve(logical)
    if not exists:
        return {"versions_dropped": []}
    with open_store(settings, collection=logical) as store:
        backend = store.backend
    names = catalog.collections()
    if backend != "edge":
        for _, name in versions_of(logical, names):
            for physical in (name, name + TRASH_SUFFIX):
                if physical in names:
                    with open_physical(settings, physical) as collection:
                        collection.delete([point_id])
        return {"versions_dropped": []}
    target = catalog.next_version(logical)
    for source, copy in ((current, target), (current + TRASH_SUFFIX, target + TRASH_SUFFIX)):
        if source not in names:
            continue
        with open_physical(settings, source) as old, open_physical(settings, copy) as fresh:
            fresh.ensure_collection(old.collection_dims())
            # Sparse vectors (lexical words, item-to-item models) are read only when named.
            sparse = sorted(old.sparse_names())
            for name in sparse:
                fresh.ensure_sparse(name)
            wanted = [*(old.collection_dims() or {}), *sparse] if sparse else True
            offset = None
            while True:
                page, offset = old.page(offset, limit=512, with_vectors=wanted)
                fresh.upsert([r for r in page if r.id != point_id])
                if offset is None:
                    break
    catalog.switch_alias(logical, target)
    dropped = [name for _, name in versions_of(logical, catalog.collections()) if name != target]
    if current not in dropped and current != target and current in catalog.collections():
        dropped.append(current)  # an unversioned collection
    for name in dropped:
        for physical in (name, name + TRASH_SUFFIX):
            if physical in catalog.collections():
                catalog.drop(physical)
    return {"versions_dropped": dropped}


def _scrub_runs(settings: Settings, user: str, hashed: str, run_dirs: set[str]) -> list[str]:
    """Zero the user's row of the head in each run, replace their id, drop resumable checkpoints."""
    import shutil

    scrubbed = []
    for run in sorted(run_dirs):
        run_dir = Path(run)
        index_file = run_dir / "index.json"
        if not index_file.is_file():
            continue
        index = json.loads(index_file.read_text())
        if user not in index.get("users", []):
            continue
        row = index["users"].index(user)
        model_file = run_dir / "model.safetensors"
        if model_file.is_file():
            from safetensors.numpy import load_file, save_file

            tensors = load_file(model_file)
            if "users.ids.weight" in tensors:
                tensors["users.ids.weight"][row] = 0
            save_file(tensors, model_file)
        index["users"][row] = f"forgotten:{hashed[:16]}"
        index_file.write_text(json.dumps(index))
        for checkpoint in ("last", "best", "refit"):
            shutil.rmtree(run_dir / checkpoint, ignore_errors=True)
        scrubbed.append(str(run_dir))
    return scrubbed


def _user_vectors(settings: Settings, user_id: str) -> tuple[bool, set[str]]:
    """Whether the users collection holds the user, and the run directories its points name."""
    from embedder.store import open_store, users_collection

    with open_store(settings, collection=users_collection(settings)) as users:
        if users.collection_dims() is None:
            return False, set()
        runs = {r.payload["rec_run"] for r in users.scroll() if r.payload.get("rec_run")}
        return bool(users.retrieve([user_id])), runs


def forget_user(settings: Settings, user: str) -> dict:
    """Remove every trace of ``user`` (see the module docstring); returns the audit record.

    Raises:
        EmbedderError: the user id is empty, or nothing anywhere mentions the user.
    """
    from embedder.ids import user_point_id
    from embedder.snapshots import list_snapshots
    from embedder.store import users_collection

    if not user.strip():
        raise EmbedderError("forget --user needs a user id")
    hashed = user_hash(settings, user)
    with job_lock(settings, "forget"):
        had_vector, run_dirs = _user_vectors(settings, user_point_id(user))
        events, remaining = _forget_events(settings, user)
        retrained = _retrain_cf(settings, remaining)
        users_report = _rewrite_without(settings, users_collection(settings), user_point_id(user))
        scrubbed = _scrub_runs(settings, user, hashed, run_dirs)
        if scrubbed:
            (state_dir(settings) / HEAD_STALE_FILE).write_text(
                json.dumps({"reason": "a user was forgotten", "at": _now(), "runs": scrubbed})
            )
        if not events and not had_vector and not scrubbed:
            raise EmbedderError("no trace of that user: no events, no user vector, no trained head row")
        snapshots = [s["name"] for s in list_snapshots(settings)] if not settings.is_server else []
        record = {
            "at": _now(),
            "action": "forget-user",
            "user_hmac": hashed,
            "events_removed": events,
            "cf_retrained": retrained,
            "users_point_removed": had_vector,
            "users_versions_dropped": users_report["versions_dropped"],
            "runs_scrubbed": scrubbed,
            "head_stale": bool(scrubbed),
            "snapshots_still_holding_the_user": snapshots,
        }
        audit = state_dir(settings) / AUDIT_FILE
        with open(audit, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return record


def _retrain_cf(settings: Settings, remaining) -> str | None:
    """Fit ALS again on what is left, when a collaborative model was trained before."""
    from embedder.recommend.cf import CFParams, fit_cf, write_cf
    from embedder.recommend.collections import open_collections

    if not any(e.weight > 0 for e in remaining):
        return None
    media, users = open_collections(settings)
    with media, users:
        if not users.count():
            return None
        return write_cf(fit_cf(remaining, CFParams.from_settings(settings)), media, users)["model"]


def forget_item(settings: Settings, ref: str) -> dict:
    """Remove an item everywhere (see the module docstring); returns the audit record.

    Raises:
        EmbedderError: ``ref`` names no item (id, ingested path, or interaction item key).
    """
    from embedder.failures import FailureMemory, failures_path
    from embedder.media.thumbnail import ThumbnailStore
    from embedder.recommend.queries import resolve_item_ref
    from embedder.store import open_store
    from embedder.store.catalog import open_catalog, versions_of
    from embedder.store.factory import open_physical
    from embedder.trash import TRASH_SUFFIX

    with job_lock(settings, "forget"):
        with open_store(settings) as media:
            pid = resolve_item_ref(media, ref)
            payload = media.retrieve([pid])[0].payload
        keys = sorted(
            {
                pid,
                ref,
                os.path.abspath(ref),
                *(payload.get("paths") or []),
                *([payload["item"]] if payload.get("item") else []),
            }
        )
        events, remaining = _forget_events(settings, keys, column="item")
        catalog = open_catalog(settings)
        names = [name for _, name in versions_of(settings.collection, catalog.collections())]
        names += [n + TRASH_SUFFIX for n in names if n + TRASH_SUFFIX in catalog.collections()]
        held_by = []
        for name in names:
            with open_physical(settings, name) as collection:
                if collection.retrieve([pid]):
                    held_by.append(name)
        rewrite = _rewrite_without(settings, settings.collection, pid)
        thumbnails = ThumbnailStore(settings.thumbnails_dir).remove([pid])  # a frame of the video
        if payload.get("sha256"):
            memory = FailureMemory(failures_path(settings))
            memory.forget(payload["sha256"])
            memory.save()
        retrained = _retrain_cf(settings, remaining)
        still_on_disk = [p for p in payload.get("paths") or [] if os.path.exists(p)]
        record = {
            "at": _now(),
            "action": "forget-item",
            "item": pid,
            "events_removed": events,
            "removed_from": held_by,
            "thumbnails_removed": thumbnails,
            "versions_dropped": rewrite["versions_dropped"],
            "cf_retrained": retrained,
            "files_still_on_disk": still_on_disk,
        }
        with open(state_dir(settings) / AUDIT_FILE, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return record


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
