"""``embedder snapshot create|list|restore``: consistent copies of a store to go back to.

Embedded store: a snapshot is a copy of the whole store directory (every collection version, the
trash, aliases, the interaction log, the failure record), taken while holding the store's job
lock and every collection's lock, so no process writes during the copy. Edge preallocates sparse
files, so the copy keeps holes (``cp --sparse=always``): a snapshot takes the disk the data takes.
The interaction log is copied with SQLite's backup API. Snapshots live in ``snapshot_dir``
(default: ``<store>-snapshots`` beside the store), one folder each, named by UTC time; a snapshot
is written to a temporary folder and renamed when complete. Restoring first moves the current
store aside as a snapshot of its own (``pre-restore-...``), so a restore can be undone.

Qdrant server: the server's own snapshot API, one snapshot per collection behind the alias.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError, StoreError
from embedder.jobs_lock import job_lock

if TYPE_CHECKING:
    from embedder.settings import Settings

LOCK_GLOB = ".*.lock"  # per-collection and job locks: never copied, never replaced


def snapshot_root(settings: Settings) -> Path:
    """Where the embedded store's snapshots live."""
    if settings.snapshot_dir:
        return Path(settings.snapshot_dir).expanduser()
    store = Path(settings.store).expanduser().resolve()
    return store.with_name(store.name + "-snapshots")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _size(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def _lock_collections(stack: ExitStack, store_dir: Path) -> list[str]:
    """Hold every collection's lock of an embedded store (so no process has one open)."""
    from embedder.store.catalog import EdgeCatalog
    from embedder.store.edge import EdgeStore

    names = EdgeCatalog(store_dir).collections()
    for name in names:
        stack.enter_context(EdgeStore(store_dir, name, load=False))
    return names


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a store directory keeping sparse files sparse; locks are left out."""
    target.mkdir(parents=True)
    for entry in sorted(source.iterdir()):
        if entry.match(LOCK_GLOB) or entry.name.endswith((".sqlite-wal", ".sqlite-shm")):
            continue
        if entry.suffix == ".sqlite":
            try:
                with sqlite3.connect(entry) as src, sqlite3.connect(target / entry.name) as dst:
                    src.backup(dst)  # a consistent copy even while the log is being appended to
            except sqlite3.Error as exc:
                raise StoreError(f"cannot copy {entry} into the snapshot: {exc}") from None
            continue
        proc = subprocess.run(
            ["cp", "-a", "--sparse=always", str(entry), str(target / entry.name)], capture_output=True, text=True
        )
        if proc.returncode != 0:  # cp says it once per file: the first line is the reason
            lines = proc.stderr.strip().splitlines() or ["cp failed"]
            more = f" (and {len(lines) - 1} more errors)" if len(lines) > 1 else ""
            raise StoreError(f"cannot copy {entry} into the snapshot: {lines[0]}{more}")


def _require_room(store_dir: Path, root: Path) -> None:
    """Refuse before copying when the snapshot's filesystem cannot hold what the store takes."""
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    need, free = _size(store_dir), shutil.disk_usage(existing).free
    if need > free:
        raise StoreError(
            f"not enough free space for a snapshot in {root}: the store takes {need / 1e6:.0f} MB, "
            f"{free / 1e6:.0f} MB are free; free some space or set snapshot_dir; nothing was written"
        )


def create_snapshot(settings: Settings, label: str = "") -> dict:
    """Take a consistent snapshot of the store named by ``settings``; returns what was written."""
    if settings.is_server:
        return _server(settings, "create")
    store_dir = Path(settings.store).expanduser()
    if not store_dir.is_dir():
        raise EmbedderError(f"no store at {store_dir} to snapshot")
    root = snapshot_root(settings)
    name = _stamp() + (f"-{label}" if label else "")
    with ExitStack() as stack:
        stack.enter_context(job_lock(settings, "snapshot"))
        collections = _lock_collections(stack, store_dir)
        _require_room(store_dir, root)
        tmp = root / f".{name}.partial"
        try:
            _copy_tree(store_dir, tmp)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"cannot write the snapshot to {root}: {exc.strerror or exc}; nothing was kept") from None
        except StoreError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"{exc}; the partial snapshot was removed") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, root / name)
    return {"name": name, "path": str(root / name), "collections": collections, "size_bytes": _size(root / name)}


def list_snapshots(settings: Settings) -> list[dict]:
    """Snapshots, newest first."""
    if settings.is_server:
        return _server(settings, "list")
    root = snapshot_root(settings)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [
        {
            "name": p.name,
            "path": str(p),
            "size_bytes": _size(p),
            "collections": sorted(c.name for c in p.iterdir() if (c / "embedder-dims.json").is_file()),
        }
        for p in sorted(found, key=lambda p: p.name, reverse=True)
    ]


def restore_snapshot(settings: Settings, name: str) -> dict:
    """Replace the store's contents with snapshot ``name``; the current contents become a
    ``pre-restore-...`` snapshot first."""
    if settings.is_server:
        return _server(settings, "restore", name)
    store_dir = Path(settings.store).expanduser()
    source = snapshot_root(settings) / name
    if not name or "/" in name or not source.is_dir():
        known = ", ".join(s["name"] for s in list_snapshots(settings)[:5]) or "none"
        raise EmbedderError(f"no snapshot '{name}' in {snapshot_root(settings)} (newest: {known})")
    store_dir.mkdir(parents=True, exist_ok=True)
    aside = snapshot_root(settings) / f"{_stamp()}-pre-restore"
    with ExitStack() as stack:
        stack.enter_context(job_lock(settings, "snapshot restore"))
        _lock_collections(stack, store_dir)
        _copy_tree(store_dir, aside)  # the current state, so the restore can be undone
        staged = store_dir.with_name(f".{store_dir.name}.restoring")
        shutil.rmtree(staged, ignore_errors=True)
        _copy_tree(source, staged)
        for entry in store_dir.iterdir():  # locks stay: other processes may be waiting on them
            if not entry.match(LOCK_GLOB):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for entry in staged.iterdir():
            os.replace(entry, store_dir / entry.name)
        staged.rmdir()
    return {"restored": name, "previous_state": aside.name, "store": str(store_dir)}


def _server(settings: Settings, action: str, name: str | None = None) -> dict | list:
    """Snapshots on a Qdrant server: one per physical collection behind the alias."""
    from embedder.store import open_store

    with open_store(settings) as store:
        client, collection = store.client, store.collection
        try:
            if action == "create":
                made = client.create_snapshot(collection_name=collection, wait=True)
                return {"name": made.name, "collection": collection, "size_bytes": made.size}
            if action == "list":
                return [
                    {"name": s.name, "collection": collection, "size_bytes": s.size, "created": s.creation_time}
                    for s in client.list_snapshots(collection)
                ]
            location = f"{settings.store.rstrip('/')}/collections/{collection}/snapshots/{name}"
            client.recover_snapshot(collection, location=location, wait=True)
            return {"restored": name, "collection": collection}
        except NotImplementedError:
            raise EmbedderError(
                "this Qdrant back-end has no snapshots (qdrant-client's local mode); use a Qdrant server"
            ) from None
