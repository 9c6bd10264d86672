"""Interaction logs: import from CSV/TSV/JSONL/Parquet, validate, deduplicate, persist.

Storage is SQLite in WAL mode: in the standard library (no server, no extra dependency), one
file, transactional appends that a concurrent reader never sees half-done, and a UNIQUE index
that makes re-importing the same file a no-op. Event logs are append-heavy and read whole for
training, which is what SQLite does well at this scale (millions of rows).
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError
from embedder.progress import Progress

if TYPE_CHECKING:
    from embedder.settings import Settings

DEFAULT_EVENT_WEIGHTS = {
    "view": 1.0,
    "play": 1.0,
    "click": 1.0,
    "like": 3.0,
    "share": 4.0,
    "save": 3.0,
    "skip": -1.0,
    "dislike": -3.0,
}
FORMATS = ("csv", "tsv", "jsonl", "parquet")
MAX_REPORTED_BAD_ROWS = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    user TEXT NOT NULL,
    item TEXT NOT NULL,
    weight REAL NOT NULL,
    ts REAL,
    event TEXT NOT NULL DEFAULT '',
    seq INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE UNIQUE INDEX IF NOT EXISTS interactions_dedup ON interactions (user, item, IFNULL(ts, -1), event, weight);
CREATE INDEX IF NOT EXISTS interactions_user ON interactions (user);
CREATE TABLE IF NOT EXISTS served_model (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    choice TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantined_users (user TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS training_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Interaction:
    """One event: a user's weighted interaction with an item. Negative weight = negative feedback."""

    user: str
    item: str
    weight: float
    ts: float | None = None
    event: str = ""
    seq: int = 0  # import order: the tie-breaker for logs without timestamps


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold what. Exactly one of weight, rating or event may be given;
    with none, every row weighs 1."""

    user: str = "user"
    item: str = "item"
    weight: str | None = None
    rating: str | None = None
    event: str | None = None
    timestamp: str | None = None
    rating_threshold: float = 3.0  # ratings above count as positive, below as negative, equal as neutral
    event_weights: dict = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))


@dataclass
class ImportReport:
    """What an import did: rows read, added, duplicates, and bad rows with their line numbers."""

    path: str
    rows: int = 0
    added: int = 0
    neutral: int = 0  # valid rows with weight 0 (a rating equal to the threshold)
    expired: int = 0  # valid rows older than retention_days, not stored
    duplicates: int = 0
    bad: int = 0
    bad_rows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "rows": self.rows,
            "added": self.added,
            "neutral": self.neutral,
            "expired": self.expired,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "bad_rows": self.bad_rows,
            "warnings": self.warnings,
        }


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise EmbedderError(f"--format must be one of {', '.join(FORMATS)}, not '{given}'")
        return given
    suffix = path.suffix.lower()
    by_suffix = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    raise EmbedderError(f"{path}: cannot tell the format from '{suffix}'; pass --format {'|'.join(FORMATS)}")


MAX_FIELD_BYTES = 128 * 1024  # csv's own limit; a longer field is a bad row, not a crash


def looks_binary(path: Path) -> bool:
    """Whether a file meant to be CSV/TSV/JSONL text starts like binary data (NUL bytes, not UTF-8)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a multi-byte character cut at the end is still text
    return False


def read_rows(
    path: Path, fmt: str, columns: list[str] | None = None, position: list | None = None, need: list[str] | None = None
) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)``; line numbers are 1-based lines of the file (rows for Parquet).

    ``columns`` names the fields of a file without a header line. ``position``, when given, is a
    one-element list kept at the byte offset read so far (for progress). ``need`` are the columns
    the mapping reads: a file whose header (or first object) lacks one is refused at once with
    the file's actual columns.

    Raises:
        EmbedderError: binary input, or a needed column that the file does not have.
    """
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise EmbedderError(f"{path}: not a readable Parquet file ({exc})") from None
        _check_columns(path, table.column_names, need)
        for i, row in enumerate(table.to_pylist(), start=1):
            yield i, row
        return
    if looks_binary(path):
        raise EmbedderError(
            f"{path}: binary data, not {fmt.upper()} text (is it compressed, or Parquet? "
            "decompress it, or pass --format parquet)"
        )
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:

        def tell():
            if position is not None:
                position[0] = fh.buffer.tell()

        if fmt == "jsonl":
            checked = False
            for i, line in enumerate(fh, start=1):
                tell()
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield i, {"__error__": f"invalid JSON: {exc.msg}"}
                    continue
                if isinstance(row, dict) and not checked:
                    _check_columns(path, list(row), need)
                    checked = True
                yield i, row if isinstance(row, dict) else {"__error__": "not a JSON object"}
            return
        delimiter = "\t" if fmt == "tsv" else ","
        csv.field_size_limit(MAX_FIELD_BYTES)
        reader = csv.reader(fh, delimiter=delimiter)
        header = columns
        if header is None:
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                return
            except csv.Error as exc:
                raise EmbedderError(f"{path}: line 1 (the header): {exc}") from None
        _check_columns(path, header, need, headerless=columns is not None)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a field over the limit, a NUL byte: this row is bad, go on
                tell()
                yield reader.line_num, {"__error__": f"unreadable row: {exc}"}
                continue
            tell()
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield reader.line_num, {"__error__": f"expected {len(header)} fields, found {len(values)}"}
                continue
            yield reader.line_num, {k: v.strip() for k, v in zip(header, values)}


def _check_columns(path: Path, have: list[str], need: list[str] | None, headerless: bool = False) -> None:
    missing = [c for c in need or [] if c not in have]
    if missing:
        how = "--columns" if headerless else "--user-col/--item-col/... or --columns for a file without a header"
        raise EmbedderError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)}; "
            f"the file's columns are "
            f"{', '.join(repr(c) for c in have)} (map them with {how})"
        )


def parse_timestamp(value) -> float | None:
    """Epoch seconds (or milliseconds) as a number, or an ISO 8601 date-time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        number = float(value)
    except (TypeError, ValueError):
        text = str(value).strip().replace("Z", "+00:00")
        return datetime.fromisoformat(text).timestamp()
    return number / 1000.0 if number > 1e11 else number  # milliseconds since the epoch


def to_interaction(row: dict, cols: ColumnMap) -> Interaction:
    """Validate one row; raises ValueError with a reason naming the column."""
    if "__error__" in row:
        raise ValueError(row["__error__"])
    user = row.get(cols.user)
    item = row.get(cols.item)
    if user is None or str(user).strip() == "":
        raise ValueError(f"missing user (column '{cols.user}')")
    if item is None or str(item).strip() == "":
        raise ValueError(f"missing item (column '{cols.item}')")
    event = ""
    if cols.weight:
        weight = _number(row.get(cols.weight), cols.weight)
    elif cols.rating:
        weight = _number(row.get(cols.rating), cols.rating) - cols.rating_threshold
    elif cols.event:
        event = str(row.get(cols.event) or "").strip().lower()
        if event not in cols.event_weights:
            raise ValueError(
                f"unknown event '{event}' (column '{cols.event}'; known: {', '.join(sorted(cols.event_weights))})"
            )
        weight = float(cols.event_weights[event])
    else:
        weight = 1.0
    if weight == 0 and not cols.rating:
        raise ValueError("weight 0 carries no signal")
    # A rating equal to the threshold is neutral: kept with weight 0, so the item counts as seen
    # (never recommended back) without being a positive or a negative.
    ts = None
    if cols.timestamp:
        try:
            ts = parse_timestamp(row.get(cols.timestamp))
        except ValueError:
            raise ValueError(f"unreadable timestamp '{row.get(cols.timestamp)}' (column '{cols.timestamp}')") from None
    return Interaction(str(user).strip(), str(item).strip(), weight, ts, event)


def _number(value, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: '{value}' (column '{column}')") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"not a finite number: '{value}' (column '{column}')")
    return number


class InteractionLog:
    """The persistent interaction log (SQLite, WAL).

    One connection may serve several threads (a service) when the caller serialises its calls,
    as :class:`embedder.library.Library` does.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise EmbedderError(f"interaction log {self.path} cannot be opened: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, events: list[Interaction]) -> int:
        """Append events; exact duplicates of stored ones are ignored. Returns how many were added."""
        before = self.db.total_changes
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO interactions (user, item, weight, ts, event) VALUES (?, ?, ?, ?, ?)",
                [(e.user, e.item, e.weight, e.ts, e.event) for e in events],
            )
        return self.db.total_changes - before

    def import_file(
        self,
        path: str | Path,
        cols: ColumnMap,
        fmt: str | None = None,
        columns: list[str] | None = None,
        batch: int = 10_000,
        progress: Progress | None = None,
        not_before: float | None = None,
        user_id=None,
        item_keys=None,
    ) -> ImportReport:
        """Read, validate and append a file. Bad rows are reported with line numbers and skipped.

        ``not_before`` (epoch seconds, from ``retention_days``) skips older rows, counted as expired.
        ``user_id`` maps each raw user id to the id stored (``Settings.stored_user``: pseudonyms).
        ``item_keys`` maps a batch of raw item keys to the keys stored (``embedder.ids.ItemJoin``).

        Raises:
            EmbedderError: the file is missing, binary, lacks a mapped column, or has no valid row.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise EmbedderError(f"{path}: no such file")
        report = ImportReport(str(path))
        pending: list[Interaction] = []
        position = [0]
        size = path.stat().st_size
        progress = progress or Progress()
        progress.start(size, f"import {path.name}", unit="bytes")
        need = [c for c in (cols.user, cols.item, cols.weight, cols.rating, cols.event, cols.timestamp) if c]
        for line, row in read_rows(path, detect_format(path, fmt), columns, position, need):
            if report.rows % 10_000 == 0:
                progress.update(position[0], f"{report.rows} rows")
            report.rows += 1
            try:
                event = to_interaction(row, cols)
                if user_id is not None:
                    event = Interaction(user_id(event.user), event.item, event.weight, event.ts, event.event)
                if not_before is not None and event.ts is not None and event.ts < not_before:
                    report.expired += 1  # past the retention period: never stored
                    continue
                pending.append(event)
                report.neutral += event.weight == 0
            except ValueError as exc:
                report.bad += 1
                if len(report.bad_rows) < MAX_REPORTED_BAD_ROWS:
                    report.bad_rows.append({"line": line, "reason": str(exc)})
            if len(pending) >= batch:
                report.added += self.add(_joined(pending, item_keys))
                pending = []
        report.added += self.add(_joined(pending, item_keys))
        progress.update(size, f"{report.rows} rows")
        progress.finish()
        report.duplicates = report.rows - report.bad - report.added - report.expired
        if report.rows == 0:
            report.warnings.append(f"{path} has no data rows: nothing was imported")
        if report.rows and report.bad == report.rows:
            first = report.bad_rows[0]
            raise EmbedderError(
                f"{path}: no valid rows (line {first['line']}: {first['reason']}); check the column flags"
            )
        return report

    def erase(self, where: str, params: tuple, users: tuple[str, ...] = ()) -> int:
        """Delete the events matching the SQL condition ``where`` (and ``users`` from the
        quarantine list) so that their bytes leave the disk: overwritten on delete
        (``secure_delete``), the write-ahead log truncated, the file vacuumed. Returns how many
        events were deleted."""
        with self.db:
            self.db.execute("PRAGMA secure_delete=ON")
            removed = self.db.execute(f"DELETE FROM interactions WHERE {where}", params).rowcount
            if users:
                marks = ",".join("?" * len(users))
                self.db.execute(f"DELETE FROM quarantined_users WHERE user IN ({marks})", tuple(users))
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def drop_older_than(self, cutoff_ts: float) -> dict:
        """Delete events timed before ``cutoff_ts`` (epoch seconds) for good.

        The rows are erased (:meth:`erase`). Events without a time cannot be judged and are kept
        (counted as ``undated``).
        """
        dropped = self.erase("ts IS NOT NULL AND ts < ?", (cutoff_ts,))
        undated = self.db.execute("SELECT COUNT(*) FROM interactions WHERE ts IS NULL").fetchone()[0]
        return {"dropped": dropped, "undated_kept": undated, "cutoff": datetime.fromtimestamp(cutoff_ts).isoformat()}

    def all(self) -> list[Interaction]:
        """Every event, in time order (import order where there is no time)."""
        cur = self.db.execute("SELECT user, item, weight, ts, event, seq FROM interactions ORDER BY IFNULL(ts, 0), seq")
        return [Interaction(*row) for row in cur]

    def for_user(self, user: str) -> list[Interaction]:
        cur = self.db.execute(
            "SELECT user, item, weight, ts, event, seq FROM interactions WHERE user = ? ORDER BY IFNULL(ts, 0), seq",
            (user,),
        )
        return [Interaction(*row) for row in cur]

    def users(self, limit: int = 100) -> list[dict]:
        """The ``limit`` users with the most events: ``{"user", "events"}``, most active first."""
        rows = self.db.execute(
            "SELECT user, COUNT(*) AS n FROM interactions GROUP BY user ORDER BY n DESC, user LIMIT ?", (limit,)
        ).fetchall()
        return [{"user": user, "events": n} for user, n in rows]

    def served_model(self) -> dict | None:
        """What 'interactions train --auto' chose to serve by default (strategy, settings, the
        validation scores behind the choice), or ``None`` before it has run."""
        row = self.db.execute("SELECT choice FROM served_model WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def set_served_model(self, choice: dict) -> None:
        """Record the strategy ``recommend`` serves by default (see :meth:`served_model`)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO served_model (id, choice) VALUES (1, ?)", (json.dumps(choice),))

    def quarantined(self) -> set[str]:
        """The users the last training left out as suspicious (``quarantine_suspicious``)."""
        return {row[0] for row in self.db.execute("SELECT user FROM quarantined_users")}

    def set_quarantined(self, users: set[str]) -> None:
        """Replace the quarantined users (empty when the last training quarantined nobody)."""
        with self.db:
            self.db.execute("DELETE FROM quarantined_users")
            self.db.executemany("INSERT INTO quarantined_users (user) VALUES (?)", [(u,) for u in sorted(users)])

    def trained_through(self) -> int | None:
        """The newest event (``seq``) the last ``interactions train`` read, or ``None`` before one."""
        row = self.db.execute("SELECT seq FROM training_mark WHERE id = 1").fetchone()
        return row[0] if row else None

    def set_trained_through(self, seq: int) -> None:
        """Record that a training read every event up to ``seq`` (see :meth:`newcomers`)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO training_mark (id, seq) VALUES (1, ?)", (int(seq),))

    def newcomers(self, users: list[str]) -> set[str]:
        """The ``users`` the last training did not see: their first event came after it. Empty
        before any training (nothing has been judged yet, so no one is new)."""
        through = self.trained_through()
        if through is None or not users:
            return set()
        found = set()
        for start in range(0, len(users), 500):  # SQLite's bound on parameters
            chunk = users[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found |= {
                user
                for user, first in self.db.execute(
                    f"SELECT user, MIN(seq) FROM interactions WHERE user IN ({marks}) GROUP BY user", tuple(chunk)
                )
                if first > through
            }
        return found

    def stats(self) -> dict:
        rows, users, items = self.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT user), COUNT(DISTINCT item) FROM interactions"
        ).fetchone()
        negatives = self.db.execute("SELECT COUNT(*) FROM interactions WHERE weight < 0").fetchone()[0]
        return {"path": str(self.path), "events": rows, "users": users, "items": items, "negative_events": negatives}


def _joined(events: list[Interaction], item_keys) -> list[Interaction]:
    """``events`` with their item keys as the store knows them (unchanged without ``item_keys``)."""
    if item_keys is None or not events:
        return events
    keys = item_keys([e.item for e in events])
    return [Interaction(e.user, keys[e.item], e.weight, e.ts, e.event) for e in events]


def default_log_path(settings: Settings) -> Path:
    """Beside an embedded store; in the data directory when the store is a server."""
    if settings.interactions_db:
        return Path(settings.interactions_db).expanduser()
    return settings.data_dir / "interactions.sqlite"


__all__ = ["ColumnMap", "ImportReport", "Interaction", "InteractionLog", "default_log_path"]
