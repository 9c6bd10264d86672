"""``embedder check``: verify every point of a collection, and repair what re-encoding can repair.

Qdrant Edge does not verify its files when it opens them: a truncated vector chunk makes reads
fail later, and random bytes in a vector file read back as numbers, so searches return garbage
with exit 0. The check reads every point and reports, per point, what is wrong:

- vectors that cannot be read, or that hold non-finite numbers;
- cosine vectors (``visual``, ``audio``, ``text``, ``content``, ``cf_sim``) whose length is not 1,
  and dot-product vectors (``cf``, ``rec``) far longer than any trained factor
  (:mod:`embedder.store.integrity`, which every query applies too);
- a media point whose payload misses a key ingest always writes, whose listed modalities have no
  vector, or whose id is not the one its content hash gives;
and for the collection: an alias that points at a missing collection, and a count that does not
match the points read. :func:`check_store` runs that over every collection embedder owns in the
store (the media collection's versions, their trash, the users collections) and checks the
interaction log with SQLite's ``PRAGMA integrity_check``.

``--repair`` deletes the damaged points whose files still exist and ingests those files again
(their hash is unchanged, so only re-encoding brings them back); it reports what it could not fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from embedder.errors import EmbedderError, one_line
from embedder.store import VectorStore, point_id
from embedder.store.integrity import vector_problem

MEDIA_KEYS = ("path", "paths", "sha256", "size", "kind", "modalities", "models", "fusion")


@dataclass
class Problem:
    """One thing wrong with one point (``id`` None: with the collection)."""

    id: str | None
    path: str | None
    problem: str

    def to_dict(self) -> dict:
        return {"id": self.id, "path": self.path, "problem": self.problem}


@dataclass
class CheckReport:
    collection: str
    points: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[dict] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def fixed(self) -> bool:
        """Every problem found was repaired (only point problems can be)."""
        return all(p.id is not None for p in self.problems) and not self.unrepaired and bool(self.repaired)

    @property
    def damaged_ids(self) -> list[str]:
        return sorted({p.id for p in self.problems if p.id is not None})

    def to_dict(self) -> dict:
        return {
            "collection": self.collection,
            "points": self.points,
            "problems": [p.to_dict() for p in self.problems],
            "damaged_points": len(self.damaged_ids),
            "repaired": self.repaired,
            "unrepaired": self.unrepaired,
            "healthy": self.healthy,
            "fixed": self.fixed,
        }


def point_problems(record) -> list[str]:
    """What is wrong with one point read with its vectors (empty when it is sound)."""
    found = [problem for name, vector in record.vectors.items() if (problem := vector_problem(name, vector))]
    payload = record.payload
    if payload.get("kind") in ("video", "audio"):
        missing = [k for k in MEDIA_KEYS if k not in payload]
        if missing:
            found.append("payload lacks " + ", ".join(missing))
        for modality in payload.get("modalities") or []:
            if modality not in record.vectors:
                found.append(f"payload lists {modality} but the point has no {modality} vector")
        if "content" not in record.vectors:
            found.append("media point without a content vector")
        if payload.get("sha256") and point_id(payload["sha256"]) != record.id:
            found.append("id does not match the content hash")
    return found


def _read_pages(store: VectorStore, report: CheckReport, batch: int = 128):
    """Every point with vectors; a page that cannot be read is read point by point to find the culprits."""
    offset = None
    while True:
        try:
            page, nxt = store.page(offset, limit=batch, with_vectors=True, raw=True)
        except Exception as exc:  # the page holds an unreadable point: find which
            ids_page, nxt = store.page(offset, limit=batch, with_vectors=False)
            page = []
            for record in ids_page:
                try:
                    page += store.page(record.id, limit=1, with_vectors=True, raw=True)[0][:1]
                except Exception as one:
                    report.problems.append(
                        Problem(record.id, record.payload.get("path"), f"vectors cannot be read: {one_line(one, 160)}")
                    )
            if not ids_page:
                raise EmbedderError(f"cannot read collection '{report.collection}': {one_line(exc, 200)}") from None
        yield from page
        if nxt is None:
            return
        offset = nxt


def check_collection(store: VectorStore, catalog=None) -> CheckReport:
    """Read every point of ``store`` and report what is wrong (see the module docstring)."""
    report = CheckReport(store.logical or store.collection)
    if catalog is not None:
        collections = set(catalog.collections())
        for alias, target in catalog.aliases().items():
            if target not in collections:
                report.problems.append(Problem(None, None, f"alias '{alias}' points at missing collection '{target}'"))
    if store.collection_dims() is None:
        return report
    store.forget_reads()  # the engine's own answers, not ones kept from earlier commands
    seen = 0
    for record in _read_pages(store, report):
        seen += 1
        for problem in point_problems(record):
            report.problems.append(Problem(record.id, record.payload.get("path"), problem))
    report.points = seen
    counted = store.count()
    if counted != seen + len({p.id for p in report.problems if p.problem.startswith("vectors cannot be read")}):
        report.problems.append(Problem(None, None, f"the collection counts {counted} points but {seen} could be read"))
    return report


def owned_collections(names: list[str], logical: str) -> list[str]:
    """The physical collections embedder made for ``logical``: its versions, their trash, the
    users collections (``media_v1``, ``media_v1_trash``, ``media_users_v2``, ...)."""
    return [n for n in names if n == logical or n.startswith(logical + "_")]


def check_log(path) -> Problem | None:
    """What is wrong with the interaction log at ``path`` (None when it is sound or absent)."""
    import sqlite3
    from pathlib import Path
    from urllib.parse import quote

    path = Path(path)
    if not path.exists():
        return None
    try:
        # Read-only, by URI: a check never creates or changes the log (the path quoted: '?' or '#' in it).
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=30)
        try:
            rows = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return None
    return Problem(
        None,
        str(path),
        "interaction log is damaged: " + "; ".join(rows[:3]) + " (restore a snapshot: 'embedder snapshot restore')",
    )


@dataclass
class StoreCheck:
    """``check_store``'s answer: the collection searches use (the one ``--repair`` mends), every
    other collection embedder owns in the store, and the interaction log."""

    main: CheckReport
    others: list[CheckReport] = field(default_factory=list)
    log: Problem | None = None
    log_path: str | None = None

    @property
    def healthy(self) -> bool:
        return self.main.healthy and all(r.healthy for r in self.others) and self.log is None

    @property
    def settled(self) -> bool:
        """Nothing is left wrong: healthy, or every problem was in the main collection and repaired."""
        return (self.main.healthy or self.main.fixed) and all(r.healthy for r in self.others) and self.log is None

    def to_dict(self) -> dict:
        return {
            **self.main.to_dict(),
            "healthy": self.healthy,
            "collections": [r.to_dict() for r in self.others],
            "interaction_log": {
                "path": self.log_path,
                "healthy": self.log is None,
                "problem": self.log.problem if self.log else None,
            },
        }


def check_store(store: VectorStore, catalog, open_collection, logical: str, log_path=None) -> StoreCheck:
    """Check ``store`` (the collection searches use), then every other collection embedder owns
    for ``logical`` beside it, each opened with ``open_collection(name)``, and the interaction log."""
    result = StoreCheck(check_collection(store, catalog), log_path=str(log_path) if log_path else None)
    for name in owned_collections(catalog.collections(), logical):
        if name == store.collection:
            continue
        with open_collection(name) as other:
            result.others.append(check_collection(other))
    if log_path is not None:
        result.log = check_log(log_path)
    return result


def repair(report: CheckReport, store: VectorStore, reingest) -> None:
    """Delete damaged points whose files exist and ingest those files again; fills ``repaired``/``unrepaired``.

    ``reingest(files)`` ingests the files into ``store`` and returns the run's summary (its
    ``failed`` records are read): the caller supplies the ingest job
    (:func:`embedder.engine.ingest.reingest`), so this module stays below the jobs layer.
    """
    import os

    unreadable = sorted({p.id for p in report.problems if p.id and p.problem.startswith("vectors cannot be read")})
    if unreadable:  # writing into a shard whose files are cut short makes it unopenable: never try
        for pid in report.damaged_ids:
            report.unrepaired.append(
                {
                    "id": pid,
                    "reason": "the collection's files are damaged (vectors cannot be read); "
                    "restore a snapshot ('embedder snapshot restore') or ingest into a new collection",
                }
            )
        return
    records = {r.id: r for r in store.retrieve(report.damaged_ids)}
    files, ids = [], []
    for pid in report.damaged_ids:
        paths = [p for p in (records[pid].payload.get("paths") or []) if os.path.isfile(p)] if pid in records else []
        if paths:
            files += paths
            ids.append(pid)
        else:
            report.unrepaired.append({"id": pid, "reason": "no file of the item exists any more to encode again"})
    if not files:
        return
    store.delete(ids)  # damaged vectors are not worth keeping in the trash
    summary = reingest(files)
    failed = {f.path: f for f in summary.failed}
    for path in files:
        if path in failed:
            report.unrepaired.append(
                {"id": None, "path": path, "reason": f"{failed[path].stage}: {failed[path].reason}"}
            )
        else:
            report.repaired.append(path)
