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
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.encoders.bundle import configured_model_ids, schema_for
from embedder.encoders.registry import check_speech_model, get_spec
from embedder.engine.stages import Executor, IngestStages, LocalExecutor, StageReport
from embedder.errors import EmbedderError, Failure
from embedder.failures import FailureMemory, failures_path
from embedder.jobs_lock import job_lock
from embedder.media.discover import MISSING, DiscoveredFile, discover, root_path
from embedder.payload import folders_above, location_fields, stored_identities
from embedder.progress import Progress
from embedder.store import PointRecord, VectorStore, open_store, point_id
from embedder.store.status import check_models, collection_status
from embedder.trash import Trash

if TYPE_CHECKING:
    from embedder.settings import Settings


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
    held_back: list[HeldBack] = field(default_factory=list)  # removals the guard refused
    restore: list[DiscoveredFile] = field(default_factory=list)  # content found in the trash: no re-encode


# Removals a run may make without --prune. The share rule starts at this many removals from one
# folder: deleting 1 of 2 files is ordinary housekeeping, deleting a folder's worth is not.
REMOVE_GUARD_MIN_ITEMS = 3
REMOVALS = ("guarded", "prune", "never")


@dataclass
class HeldBack:
    """Stored items whose files are missing under ``root`` but were kept, and why."""

    root: str
    paths: list[str]
    stored: int  # items stored under the root before this run
    reason: str
    guard: bool = True  # False when the user asked for no removals (--no-delete)

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "items": len(self.paths),
            "stored": self.stored,
            "reason": self.reason,
            "guard": self.guard,
            "paths": self.paths,
        }


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
    restored: list[str] = field(default_factory=list)
    held_back: list[HeldBack] = field(default_factory=list)
    trash: dict = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Paths given to the run that do not exist (a typo, an unmounted share)."""
        return [s["path"] for s in self.skipped if s["reason"] == MISSING]

    @property
    def removals_held_back(self) -> bool:
        """Whether the guard kept items whose files are missing (the CLI exits 3 then)."""
        return any(h.guard for h in self.held_back)

    def to_dict(self) -> dict:
        decoded = len(self.new) + len(self.updated) + len(self.failed)
        return {
            "counts": {
                "new": len(self.new),
                "updated": len(self.updated),
                "unchanged": len(self.unchanged),
                "removed": len(self.removed),
                "restored": len(self.restored),
                "held_back": sum(len(h.paths) for h in self.held_back),
                "failed": len(self.failed),
                "skipped": len(self.skipped),
            },
            "new": self.new,
            "updated": self.updated,
            "removed": self.removed,
            "restored": self.restored,
            "held_back": [h.to_dict() for h in self.held_back],
            "missing": self.missing,
            "trash": self.trash,
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
    """Which stored points hold which paths, and the hashes already known for those paths.

    Only the points a run can touch are read: those with a file under its roots (the indexed
    ``dirs`` and ``paths`` keys), then, after discovery, those holding the content of a found file
    (by id). So planning costs what the folders hold, not what the collection holds.
    """

    ids_by_path: dict[str, set[str]] = field(default_factory=dict)
    paths_by_id: dict[str, list[str]] = field(default_factory=dict)
    hash_cache: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)  # path -> device its file was on at ingest

    @classmethod
    def read(cls, store: VectorStore, roots: list[Path] | None = None) -> StoreIndex:
        """The points with a file under ``roots`` (every point with ``None``, or when some stored
        items predate the ``dirs`` key: see :func:`add_folder_keys`)."""
        index = cls()
        if roots is None or not has_folder_keys(store):
            records = store.scroll()
        else:
            folders = sorted({str(r) for r in roots if r.is_dir()})
            files = sorted({str(r) for r in roots if not r.is_dir()})
            found: dict[str, PointRecord] = {}
            for key, values in (("dirs", folders), ("paths", folders + files)):
                for chunk in range(0, len(values), 256):
                    for record in store.scroll({key: values[chunk : chunk + 256]}):
                        found[record.id] = record
            records = found.values()
        for record in records:
            index.add(record)
        return index

    def add(self, record: PointRecord) -> None:
        payload = record.payload
        paths = list(payload.get("paths") or [])
        self.paths_by_id[record.id] = paths
        stamps = payload.get("mtimes") or {}
        for p, identity in (payload.get("identities") or {}).items():
            if identity.get("dev"):
                self.devices[p] = int(identity["dev"])
        for p in paths:
            self.ids_by_path.setdefault(p, set()).add(record.id)
            if p in stamps and "sha256" in payload:
                self.hash_cache[p] = (int(payload.get("size", -1)), int(stamps[p]), payload["sha256"])

    def add_content(self, store: VectorStore, files: list[DiscoveredFile]) -> None:
        """Read the points holding the content of ``files`` that the roots did not cover (the same
        file stored under another folder is linked, not encoded again)."""
        wanted = sorted({point_id(f.sha256) for f in files} - set(self.paths_by_id))
        for chunk in range(0, len(wanted), 1000):
            for record in store.retrieve(wanted[chunk : chunk + 1000]):
                self.add(record)


def has_folder_keys(store: VectorStore) -> bool:
    """Whether every stored media item has the ``dirs`` key (items stored before it existed lack it)."""
    return store.count({"kind": ["video", "audio"]}) <= store.count({"dirs": "/"})


def add_folder_keys(store: VectorStore) -> int:
    """Give items stored by an older version their ``dirs`` key, and create the indexes that
    version did not make; once, by the first ingest that writes. Returns how many items changed."""
    by_folders: dict[tuple[str, ...], list[str]] = {}
    for record in store.scroll():
        paths = record.payload.get("paths") or []
        if paths and "dirs" not in record.payload:
            by_folders.setdefault(tuple(folders_above(paths)), []).append(record.id)
    for folders, ids in by_folders.items():  # one write per distinct folder set, not per item
        for chunk in range(0, len(ids), 1000):
            store.set_payload(ids[chunk : chunk + 1000], {"dirs": list(folders)})
    store.ensure_indexes()
    return sum(len(ids) for ids in by_folders.values())


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
    # A file or folder that could not be read is not gone: nothing under it is removed.
    unreadable = [s.path for s in found.skipped if s.reason.startswith("cannot")]
    for path, ids in sorted(ids_by_path.items()):
        if path not in seen and not _below_any(path, unreadable) and _under(path, found.roots):
            plan.removed.append(path)
            plan.unlink.setdefault(path, set()).update(ids)
    return plan


def _below_any(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def guard_removals(plan: IngestPlan, found, index: StoreIndex, removals: str, max_fraction: float) -> None:
    """Move removals the policy does not allow from ``plan.removed`` to ``plan.held_back``.

    ``removals``: ``guarded`` holds back every removal from a folder that has no media files left
    (an unmounted share looks exactly like that) or of more than ``max_fraction`` of the folder's
    stored items; ``prune`` allows them; ``never`` removes nothing.
    """
    if removals not in REMOVALS:
        raise EmbedderError(f"removals must be one of {', '.join(REMOVALS)}, not {removals!r}")
    if removals == "prune" or not plan.removed:
        return
    held: set[str] = set()
    if removals == "guarded":
        for folder, paths, reason in _vanished_folders(plan.removed, found, index):
            stored = sum(1 for p in index.ids_by_path if _below_any(p, [folder]))
            plan.held_back.append(HeldBack(folder, paths, stored, reason))
            held.update(paths)
    by_root: dict[str, list[str]] = {}
    for path in plan.removed:
        if path in held:
            continue
        root = max((str(r) for r in found.roots if _under(path, [r])), key=len)
        by_root.setdefault(root, []).append(path)
    for root, paths in by_root.items():
        stored = sum(1 for p in index.ids_by_path if _under(p, [Path(root)]))
        media_now = sum(1 for f in found.files if _under(str(f.path), [Path(root)]))
        if removals == "never":
            plan.held_back.append(HeldBack(root, paths, stored, "removals are off (--no-delete)", guard=False))
        elif media_now == 0:
            plan.held_back.append(
                HeldBack(root, paths, stored, "the folder has no media files now (unmounted or emptied?)")
            )
        elif len(paths) >= REMOVE_GUARD_MIN_ITEMS and len(paths) > max_fraction * stored:
            plan.held_back.append(
                HeldBack(
                    root,
                    paths,
                    stored,
                    f"{len(paths)} of its {stored} stored items would go, over max_remove_fraction={max_fraction:g}",
                )
            )
        else:
            continue
        held.update(paths)
    plan.removed = [p for p in plan.removed if p not in held]
    for path in held:
        plan.unlink.pop(path, None)


def _vanished_folders(removed: list[str], found, index: StoreIndex) -> list[tuple[str, list[str], str]]:
    """Removals below the named roots that look like a share gone rather than files deleted:
    ``(folder, paths, reason)`` for each folder to hold back.

    - files that were on another device than the folder that holds their place now: a share
      unmounted (its mount point left empty) or gone with its mount point;
    - a folder's worth (``REMOVE_GUARD_MIN_ITEMS`` or more) of files whose folder below the root
      has no media files now, or is gone.
    """
    with_media = set(folders_above([str(f.path) for f in found.files]))
    device_of: dict[str, int | None] = {}

    def device(folder: str) -> int | None:
        if folder not in device_of:
            try:
                device_of[folder] = os.stat(folder).st_dev
            except OSError:
                device_of[folder] = None
        return device_of[folder]

    groups: dict[tuple[str, str], list[str]] = {}
    for path in removed:
        root = max((str(r) for r in found.roots if _under(path, [r])), key=len)
        chain = []  # the file's folders, deepest first, down to (not including) the root
        folder = os.path.dirname(path)
        while folder != root and _below_any(folder, [root]):
            chain.append(folder)
            folder = os.path.dirname(folder)
        existing = next((f for f in chain if device(f) is not None), root)
        recorded = index.devices.get(path)
        if recorded is not None and device(existing) not in (None, recorded):
            groups.setdefault((existing, "device"), []).append(path)
            continue
        empty = [f for f in chain if f not in with_media]
        if empty:
            groups.setdefault((empty[-1], "empty"), []).append(path)  # the highest such folder
    out = []
    for (folder, why), paths in sorted(groups.items()):
        if why == "device":
            out.append(
                (folder, paths, f"its files were on another device than {folder} is on now (an unmounted share?)")
            )
        elif len(paths) >= REMOVE_GUARD_MIN_ITEMS:
            state = "has no media files now" if device(folder) is not None else "is gone"
            out.append((folder, paths, f"the folder {state} (unmounted, moved away or emptied?)"))
    return out


def _apply_unlinks(store: VectorStore, unlink: dict[str, set[str]], trash: Trash, removed: set[str]) -> int:
    """Drop paths from points; points left with no path go to the trash, then out of the collection.

    Returns how many points were moved to the trash.
    """
    by_id: dict[str, set[str]] = {}
    for path, ids in unlink.items():
        for pid in ids:
            by_id.setdefault(pid, set()).add(path)
    emptied: dict[str, list[str]] = {"file removed": [], "file replaced by other content": []}
    for record in store.retrieve(sorted(by_id)):
        keep = [p for p in record.payload.get("paths") or [] if p not in by_id[record.id]]
        if keep:
            store.set_payload([record.id], location_fields(keep, stored_identities(record.payload)))
        else:
            gone = all(p in removed for p in by_id[record.id])
            emptied["file removed" if gone else "file replaced by other content"].append(record.id)
    moved = 0
    for reason, ids in emptied.items():
        if ids:  # copied before deleting: a crash between the two leaves a duplicate, never a loss
            moved += trash.put(ids, reason)
            store.delete(ids)
    return moved


def _remember(memory: FailureMemory, encoded: list[DiscoveredFile], failed: list[Failure], found) -> None:
    """Remember this run's failures by content hash; forget files that went in, changed or went away."""
    failed_paths = {f.path: f for f in failed}
    for f in encoded:
        if str(f.path) in failed_paths:
            memory.remember(f.sha256, failed_paths[str(f.path)])
        else:
            memory.forget(f.sha256)
    sha_now = {str(f.path): f.sha256 for f in found.files}
    memory.prune(lambda path, sha: sha_now.get(path) == sha if _under(path, found.roots) else True)
    memory.save()


def _restore_from_trash(store: VectorStore, trash: Trash, files: list[DiscoveredFile]) -> list[str]:
    """Put trashed points back for files whose content is there, under the files' current paths."""
    by_id = {point_id(f.sha256): f for f in files}
    records = trash.take(sorted(by_id))
    for r in records:
        f = by_id[r.id]
        r.payload.update(location_fields([str(f.path)], {str(f.path): f.identity().to_dict()}))
    trash.restore(records)
    return sorted(str(by_id[r.id].path) for r in records)


def _apply_links(
    store: VectorStore, links: dict[str, list[DiscoveredFile]], failed: list[Failure], sha_by_path: dict[str, str]
) -> list[Failure]:
    """Add paths to points holding the same content; returns failures for copies of failed files."""
    failed_ids = {point_id(sha_by_path[f.path]): f for f in failed if f.path in sha_by_path}
    extra = [
        Failure(
            str(copy.path), failed_ids[pid].stage, f"same content as {failed_ids[pid].path}: {failed_ids[pid].reason}"
        )
        for pid, copies in links.items()
        if pid in failed_ids
        for copy in copies
    ]
    for record in store.retrieve(sorted(links)):
        files = links[record.id]
        paths = list(dict.fromkeys([*(record.payload.get("paths") or []), *(str(f.path) for f in files)]))
        identities = {**stored_identities(record.payload), **{str(f.path): f.identity().to_dict() for f in files}}
        store.set_payload([record.id], location_fields(paths, identities))
    return extra


def _read_for_next_run(store: VectorStore, roots: list[Path]) -> None:
    """Read, after this run's last write, what the next run over the same folders plans from and
    what ``embedder status`` shows. An embedded store keeps those answers until its next write
    (:mod:`embedder.store.reads`), so a next run that finds nothing changed, and a ``status``,
    answer without opening the engine. When this run wrote nothing, these are its own answers."""
    if store.collection_dims() is None:
        return
    has_folder_keys(store)
    StoreIndex.read(store, roots)
    collection_status(store)


def executor_for(settings: Settings, store: VectorStore) -> Executor:
    """The executor the settings name: local decoder processes, or a Ray cluster."""
    if settings.executor == "ray":
        from embedder.engine.ray_executor import RayExecutor

        return RayExecutor(
            settings.ray_address,
            encoders=settings.ray_encoders,
            gpus_per_encoder=settings.ray_gpus_per_encoder,
            decode_timeout_s=settings.decode_timeout_s,
            embedded_store=store.backend == "edge",
        )
    return LocalExecutor(settings.workers, settings.decode_timeout_s)


def _ensure_lexical(store: VectorStore, progress: Progress) -> None:
    """Give a collection made before lexical search its ``lexical`` vector, where the back-end can
    add one; where it cannot (some Qdrant servers), search stays dense and says so."""
    from embedder.errors import StoreError
    from embedder.lexical import LEXICAL

    if LEXICAL in store.sparse_names():
        return
    try:
        store.ensure_sparse(LEXICAL)
        progress.note("added lexical search to the collection (its items get words as they are encoded)")
    except StoreError as exc:
        progress.note(f"lexical search unavailable: {exc}")


def _refresh_lexical(store: VectorStore, settings: Settings) -> None:
    """Rewrite the lexical vectors whose length normalisation drifted, or that are missing."""
    from embedder.lexical import refresh

    refresh(store, settings.text_language)


def run_ingest(
    paths: list[str | Path],
    settings: Settings,
    *,
    dry_run: bool = False,
    removals: str = "guarded",
    retry_failed: bool = False,
    progress: Progress | None = None,
    store: VectorStore | None = None,
    encoders=None,
    locked: bool = False,
) -> IngestSummary:
    """Ingest files and folders into the store named by ``settings``.

    Args:
        paths: files and folders; a folder's files that were stored before and are gone now
            are removed from the collection (into its trash, see :mod:`embedder.trash`).
        settings: :class:`embedder.settings.Settings`.
        dry_run: plan only: report what would be new, updated, unchanged and removed.
        removals: ``guarded`` (default) holds back the removal of a folder's worth of items
            (see :func:`guard_removals`); ``prune`` removes whatever is gone; ``never`` keeps all.
        retry_failed: decode files again that failed before and have not changed since
            (otherwise they are reported from :mod:`embedder.failures` without decoding).
        progress: receives per-file progress.
        store, encoders: already-open ones to reuse (tests, long-running workers); ``encoders``
            may also be a function that loads them, called only when a file needs encoding.
        locked: the caller already holds the store's job lock (re-embedding calls ingest).

    Raises:
        EmbedderError: the run cannot proceed (no input, store or weights unavailable).
    """
    started = time.monotonic()
    progress = progress or Progress()
    if removals not in REMOVALS:
        raise EmbedderError(f"removals must be one of {', '.join(REMOVALS)}, not {removals!r}")
    if not any(os.path.lexists(os.path.expanduser(str(p))) for p in paths):
        raise EmbedderError("nothing to ingest: " + ", ".join(str(p) for p in paths) + " not found")
    with contextlib.nullcontext() if locked else job_lock(settings, "ingest"):
        own_store = store is None
        store = store or open_store(settings)
        try:
            with Trash(settings, store) as trash:
                run = IngestRun(paths, settings, store, trash, progress, encoders, dry_run, removals, retry_failed)
                return _run_ingest(run, started)
        finally:
            if own_store:
                store.close()


def check_speech_recogniser(settings: Settings) -> None:
    """Refuse an unknown ``speech_model``, or a Whisper model whose weights cannot be had.

    Raises:
        SettingsError, WeightsUnavailableError: one line naming the fix.
    """
    name = check_speech_model(settings.speech_model)
    if name not in ("pocketsphinx", "none"):
        from embedder.encoders.whisper import check_weights

        check_weights(get_spec(name), settings.weights_dir)


@dataclass
class IngestRun:
    """One ingest: what it reads, the open pieces it works with, and how."""

    paths: list[str | Path]
    settings: Settings
    store: VectorStore
    trash: Trash
    progress: Progress
    encoders: object = None  # open encoders, a function that loads them, or None (load when needed)
    dry_run: bool = False
    removals: str = "guarded"
    retry_failed: bool = False

    def encode(self, files: list[DiscoveredFile]) -> StageReport:
        """Decode, encode and write ``files`` with the executor the settings name. A Ray run's
        driver loads no encoders (the cluster's encode actors do); a local run loads them now."""
        self.store.pause()  # model loading and decoding take seconds to hours: let readers in meanwhile
        encoders = None
        if self.settings.executor != "ray":
            encoders = self.encoders
            if encoders is None or callable(encoders):
                from embedder.encoders.bundle import load_encoders

                self.progress.note("loading models")
                encoders = encoders() if callable(encoders) else load_encoders(self.settings)
        stages = IngestStages(self.settings, encoders, self.store)
        return executor_for(self.settings, self.store).run(stages, files, self.progress)


def _run_ingest(run: IngestRun, started: float) -> IngestSummary:
    settings, store, trash, progress, dry_run = run.settings, run.store, run.trash, run.progress, run.dry_run
    encoders = run.encoders
    dims = schema_for(settings)
    check_speech_recogniser(settings)  # a typo or missing weights fail before a file is read, not per file
    failed: list[Failure] = []
    warnings: list[dict] = []
    timings: dict = {}
    restored: list[str] = []
    trash_info = {"moved": 0, "purged": 0}
    if dry_run:
        existing = store.collection_dims()
        if existing is not None and existing != dims:
            store.ensure_collection(dims)  # raises the mismatch error
    else:
        store.ensure_collection(dims)
        _ensure_lexical(store, progress)
    # Same sizes, other models (a rollback, then an ingest with the newer models): never mixed.
    loaded = encoders is not None and not callable(encoders)
    check_models(store, encoders.model_ids if loaded else configured_model_ids(settings), writing=True)
    if not dry_run and store.collection_dims() is not None and not has_folder_keys(store):
        progress.note(f"adding folder keys to {add_folder_keys(store)} items stored by an older version (once)")
    roots = [root for root in map(root_path, run.paths) if os.path.lexists(root)]
    index = StoreIndex.read(store, roots)
    found = discover(
        run.paths,
        include_hidden=settings.include_hidden,
        hash_cache=index.hash_cache,
        max_files=settings.discover_max_files,
        timeout_s=settings.discover_timeout_s,
        on_progress=progress.note,
    )
    index.add_content(store, found.files)
    plan = plan_ingest(found, index)
    guard_removals(plan, found, index, run.removals, settings.max_remove_fraction)
    if plan.to_encode and store.collection_dims() is not None:
        in_trash = {r.id for r in trash.take([point_id(f.sha256) for f in plan.to_encode], with_vectors=False)}
        plan.restore = [f for f in plan.to_encode if point_id(f.sha256) in in_trash]
        plan.to_encode = [f for f in plan.to_encode if point_id(f.sha256) not in in_trash]
    memory = FailureMemory(failures_path(settings))
    recalled_files = [] if run.retry_failed else [f for f in plan.to_encode if f.sha256 in memory.entries]
    recalled = [memory.recalled(f.sha256, str(f.path)) for f in recalled_files]
    plan.to_encode = [f for f in plan.to_encode if f not in recalled_files]
    progress.note(
        f"{len(found.files)} media files: {len(plan.to_encode)} to encode, "
        f"{len(plan.restore)} to restore from the trash, "
        f"{len(plan.unchanged)} unchanged, {len(plan.removed)} removed"
    )
    if dry_run:
        restored = sorted(str(f.path) for f in plan.restore)
    else:
        restored = _restore_from_trash(store, trash, plan.restore)
        if plan.to_encode:
            report = run.encode(plan.to_encode)
            failed, warnings, timings = report.failed, report.warnings, report.timings
        _remember(memory, plan.to_encode, failed, found)
        failed += recalled
        failed += _apply_links(
            store, plan.links, failed, {str(f.path): f.sha256 for f in plan.to_encode + recalled_files}
        )
        failed_paths = {f.path for f in failed}
        # A file that failed keeps its old point and links: nothing stored is lost.
        unlink = {p: ids for p, ids in plan.unlink.items() if p not in failed_paths}
        trash_info["moved"] = _apply_unlinks(store, unlink, trash, set(plan.removed))
        trash_info["purged"] = trash.purge(settings.trash_days)
        if plan.to_encode or restored:
            _refresh_lexical(store, settings)
        _read_for_next_run(store, roots)
    if dry_run:
        failed = recalled
    failed.sort(key=lambda f: f.path)
    failed_paths = {f.path for f in failed}
    restored_set = set(restored)
    return IngestSummary(
        new=[p for p in plan.new if p not in failed_paths and p not in restored_set],
        updated=[p for p in plan.updated if p not in failed_paths and p not in restored_set],
        unchanged=plan.unchanged,
        removed=plan.removed,
        failed=failed,
        skipped=[{"path": s.path, "reason": s.reason} for s in found.skipped],
        warnings=warnings,
        timings=timings,
        dry_run=dry_run,
        elapsed_s=time.monotonic() - started,
        store=store.info(),
        restored=restored,
        held_back=plan.held_back,
        trash=trash_info,
    )


def reingest(
    files: list[str], settings: Settings, store: VectorStore, progress: Progress | None = None
) -> IngestSummary:
    """Ingest ``files`` again into the open ``store``, as ``embedder check --repair`` needs: the
    caller holds the job lock, nothing is removed, and earlier failures are tried again."""
    return run_ingest(files, settings, store=store, locked=True, removals="never", retry_failed=True, progress=progress)
