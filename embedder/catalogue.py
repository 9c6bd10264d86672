"""``embedder items import``: items known by their metadata alone (movies, artists, products, ads).

A catalogue is a CSV/TSV file with a header line, or JSON Lines (one object per line). Columns:

- ``id`` (required): the item's key, the same key interaction logs use, so events and catalogue
  rows join (the point is the one an interaction-only item gets, :func:`embedder.ids.item_point_id`);
- ``title``, ``description``, and ``tags`` or ``genres`` (a JSON list, or text split on ``|``,
  ``;`` or ``,``): the item's words;
- any other column: a filterable field under ``meta`` (``--filter meta.price<10``,
  ``--filter meta.audience=teens``); numbers are stored as numbers.

Each item's text (``title. description. tags``, as a sidecar's) is encoded by the text block's
encoder and fused into a content vector of that block alone, and its words are indexed for
lexical search (:mod:`embedder.lexical`), so search, the content, hybrid and trained strategies
and cold start all see the item. An id that names an ingested media file (its path or point id)
gets the metadata and words added, and keeps its vectors.

Rows are checked one by one: no id, a duplicate id, bytes that are not UTF-8, a field over
:data:`MAX_FIELD_CHARS`, no text at all, or a malformed JSON line make the row a *problem*,
counted and reported with its line number and a one-line reason; columns that cannot be a field
name are reported once and ignored. Nothing stored is lost: points are merged, never replaced, so
an item's collaborative and trained vectors and its interaction-derived payload stay.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError

if TYPE_CHECKING:
    from embedder.settings import Settings

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_FIELD_CHARS = 10_000  # a description longer than this is not a description
TEXT_COLUMNS = ("title", "description")
TAG_COLUMNS = ("tags", "genres")
# Payload keys a catalogue column may not be: they are embedder's own.
RESERVED = {"id", "item", "path", "paths", "kind", "modalities", "models", "fusion", "text", "meta", "words"}
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
ENCODE_BATCH = 256


@dataclass
class CatalogueRow:
    line: int
    id: str
    title: str
    description: str
    tags: list[str]
    meta: dict

    @property
    def text(self) -> str:
        """The item's text, composed as a sidecar's is (title. description. tags)."""
        parts = [p for p in (self.title, self.description) if p]
        if self.tags:
            parts.append(", ".join(self.tags))
        return ". ".join(parts)


@dataclass
class Problem:
    """A row that was not imported: its line, the kind of problem (counted) and a one-line reason."""

    line: int
    kind: str  # no-id, duplicate-id, not-utf8, too-long, no-text, nested, not-json, field-count
    reason: str


@dataclass
class CatalogueRead:
    rows: list[CatalogueRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def _value(raw):
    """A CSV cell as stored: numbers as numbers, empty as absent."""
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None
        if _NUMBER.match(raw):
            number = float(raw)
            return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    return raw


def _tags(raw) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(t).strip() for t in raw if str(t).strip()]
    text = str(raw)
    for sep in ("|", ";", ","):
        if sep in text:
            return [t.strip() for t in text.split(sep) if t.strip()]
    return [text.strip()] if text.strip() else []


def _row(line: int, record: dict, columns_ok: set[str]) -> CatalogueRow | Problem:
    """One row, checked (see the module docstring)."""
    item = record.get("id")
    if item is None or not str(item).strip():
        return Problem(line, "no-id", "no id")
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if text is not None and len(text) > MAX_FIELD_CHARS:
            return Problem(
                line, "too-long", f"field '{key}' has {len(text):,} characters, over the limit of {MAX_FIELD_CHARS:,}"
            )
    title = str(record.get("title") or "").strip()
    description = str(record.get("description") or "").strip()
    tags = next((_tags(record[c]) for c in TAG_COLUMNS if record.get(c) is not None), [])
    if not (title or description or tags):
        return Problem(
            line, "no-text", f"item '{item}' has no title, description, tags or genres: nothing to search or encode"
        )
    meta = {}
    for key, value in record.items():
        if key in columns_ok and key not in RESERVED and key not in TEXT_COLUMNS and key not in TAG_COLUMNS:
            value = _value(value)
            if value is not None:
                if isinstance(value, (dict,)) or (
                    isinstance(value, list) and not all(isinstance(v, str) for v in value)
                ):
                    return Problem(line, "nested", f"field '{key}' is nested; use a number, a text or a list of texts")
                meta[key] = value
    return CatalogueRow(line, str(item).strip(), title, description, tags, meta)


def _lines(path: Path) -> tuple[list[tuple[int, str]], list[Problem]]:
    """The file's lines, decoded as UTF-8 one by one: a line that is not is a problem, the rest go on."""
    good, bad = [], []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                good.append((number, raw.decode("utf-8")))
            except UnicodeDecodeError as exc:
                bad.append(
                    Problem(number, "not-utf8", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
                )
    return good, bad


def read_catalogue(path: str | Path) -> CatalogueRead:
    """The rows of a catalogue file and the problems of the others.

    Raises:
        EmbedderError: the file is missing or unreadable, of an unknown format, or has no ``id``
        column.
    """
    path = Path(path).expanduser()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise EmbedderError(f"{path}: a catalogue is .csv, .tsv or .jsonl (JSON Lines), not '{path.suffix}'")
    try:
        lines, problems = _lines(path)
    except OSError as exc:
        raise EmbedderError(f"{path}: cannot read the catalogue: {exc.strerror or exc}") from None
    out = CatalogueRead(problems=problems)
    if fmt == "jsonl":
        records = []
        for number, text in lines:
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                out.problems.append(Problem(number, "not-json", f"not JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(record, dict):
                out.problems.append(Problem(number, "not-json", "not a JSON object"))
                continue
            records.append((number, record))
        columns = sorted({k for _, r in records for k in r})
    else:
        if not lines:
            raise EmbedderError(f"{path}: the catalogue is empty")
        reader = csv.reader(io.StringIO("".join(t for _, t in lines)), delimiter="\t" if fmt == "tsv" else ",")
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise EmbedderError(f"{path}: not {fmt.upper()}: {exc}") from None
        header = [h.strip() for h in rows[0]] if rows else []
        if "id" not in header:
            raise EmbedderError(f"{path}: the header has no 'id' column (it has: {', '.join(header) or 'nothing'})")
        numbers = [n for n, t in lines]
        records = []
        for index, cells in enumerate(rows[1:], 1):
            if not any(c.strip() for c in cells):
                continue
            line = numbers[index] if index < len(numbers) else index + 1
            if len(cells) != len(header):
                out.problems.append(
                    Problem(line, "field-count", f"{len(cells)} fields where the header has {len(header)}")
                )
                continue
            records.append((line, dict(zip(header, cells))))
        columns = header
    columns_ok = {c for c in columns if _FIELD_NAME.match(c) and c != "id"}
    out.ignored_columns = sorted(c for c in columns if c not in columns_ok and c != "id")
    if fmt == "jsonl" and records and not any("id" in r for _, r in records):
        raise EmbedderError(f"{path}: no line has an 'id'")
    seen: dict[str, int] = {}
    for line, record in records:
        row = _row(line, record, columns_ok)
        if isinstance(row, CatalogueRow) and row.id in seen:
            row = Problem(
                line, "duplicate-id", f"duplicate id '{row.id}' (first at line {seen[row.id]}): the first is kept"
            )
        if isinstance(row, Problem):
            out.problems.append(row)
        else:
            seen[row.id] = line
            out.rows.append(row)
    out.problems.sort(key=lambda p: p.line)
    return out


def _text_sha(row: CatalogueRow) -> str:
    return hashlib.sha256(row.text.encode()).hexdigest()[:16]


def import_catalogue(
    path: str | Path, settings: Settings, store, encoders=None, *, dry_run: bool = False, progress=None
) -> dict:
    """Read a catalogue and merge its items into the media collection (see the module docstring).

    ``encoders``: loaded encoders, or a function that loads them (called only when some row's text
    is new or changed). Returns counts (``rows``, ``created``, ``updated``, ``unchanged``,
    ``media_matched``, ``problems``), the problems by kind, and up to 20 of them with their lines.
    """
    from embedder.encoders.bundle import configured_model_ids, schema_for
    from embedder.fusion import FUSION_VERSION, fuse, item_weights
    from embedder.ids import resolve_items
    from embedder.lexical import DEFAULT_AVG_LEN, LEXICAL, lexical_fields, refresh
    from embedder.progress import Progress
    from embedder.store import PointRecord
    from embedder.store.status import check_models

    progress = progress or Progress()
    read = read_catalogue(path)
    report = {
        "catalogue": str(path),
        "rows": len(read.rows),
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "media_matched": 0,
        "problems": len(read.problems),
        "problems_by_kind": dict(Counter(p.kind for p in read.problems)),
        "problem_examples": [asdict(p) for p in read.problems[:20]],
        "ignored_columns": read.ignored_columns,
        "dry_run": dry_run,
    }
    if dry_run or not read.rows:
        return report
    models = configured_model_ids(settings)
    store.ensure_collection(schema_for(settings))
    check_models(store, models, writing=True)
    has_lexical = LEXICAL in store.sparse_names()
    ids = resolve_items([r.id for r in read.rows], store)
    existing = {r.id: r for r in _retrieve(store, sorted(set(ids.values())))}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    dims = {m: d for m, d in schema_for(settings).items() if m in ("visual", "audio", "text")}
    to_encode = [r for r in read.rows if _needs_encoding(r, existing.get(ids[r.id]), models["text"])]
    vectors: dict[str, object] = {}
    if to_encode:
        if encoders is None or callable(encoders):
            from embedder.encoders.bundle import load_encoders

            progress.note("loading models")
            encoders = encoders() if callable(encoders) else load_encoders(settings)
        progress.start(len(to_encode), "encode catalogue text")
        text_model = encoders["text"].model
        for start in range(0, len(to_encode), ENCODE_BATCH):
            batch = to_encode[start : start + ENCODE_BATCH]
            for row, vector in zip(batch, text_model.encode_texts([r.text for r in batch])):
                vectors[row.id] = vector
                progress.advance(row.id, "encoded")
        progress.finish()
    points = []
    for row in read.rows:
        pid = ids[row.id]
        stored = existing.get(pid)
        stamp = {"source": str(Path(path).name), "imported_at": now, "text_sha": _text_sha(row)}
        words = {"title": row.title, "text": ". ".join(p for p in (row.description, ", ".join(row.tags)) if p)}
        if stored is not None and stored.payload.get("paths"):  # an ingested file: metadata and words only
            report["media_matched"] += 1
            old_words = stored.payload.get("words") or {}
            merged = {**old_words, "text": ". ".join(p for p in (old_words.get("text"), row.text) if p)}
            payload = {"meta": row.meta, "catalogue": stamp, "words": merged}
            points.append(PointRecord(pid, {}, payload))
            continue
        payload = {
            "item": row.id,
            "kind": "item",
            "meta": row.meta,
            "catalogue": stamp,
            "words": words,
            "text": row.text[:500],
            "text_source": "catalogue",
        }
        named = {}
        if row.id in vectors:
            text_vector = vectors[row.id]
            named = {"text": text_vector, "content": fuse({"text": text_vector}, dims, settings.fusion_weights)}
            payload.update(
                modalities=["text"],
                models={"text": models["text"]},
                fusion={"version": FUSION_VERSION, "weights": item_weights(["text"], settings.fusion_weights)},
            )
        if has_lexical:
            full = {**(stored.payload if stored else {}), **payload}
            lexical, fields = lexical_fields(full, settings.text_language, DEFAULT_AVG_LEN)
            named.update(lexical)
            payload.update(fields)
        if stored is None:
            report["created"] += 1
        elif row.id in vectors or (stored.payload.get("meta") != row.meta):
            report["updated"] += 1
        else:
            report["unchanged"] += 1
        points.append(PointRecord(pid, named, payload))
    with_vectors = [p for p in points if p.vectors]
    for start in range(0, len(with_vectors), 500):
        store.merge(with_vectors[start : start + 500], new_payload={"paths": [], "popularity": 0.0})
    for point in points:
        if not point.vectors:  # metadata for an existing point only (an ingested file, or unchanged words)
            store.set_payload([point.id], point.payload)
    if has_lexical:
        refresh(store, settings.text_language)
    return report


def _needs_encoding(row: CatalogueRow, stored, text_model: str) -> bool:
    """Whether a row's text must be encoded: a new item, or a catalogue item whose text or text
    model changed (an ingested file keeps its own vectors)."""
    if stored is None:
        return True
    if stored.payload.get("paths"):
        return False
    same_text = (stored.payload.get("catalogue") or {}).get("text_sha") == _text_sha(row)
    return not same_text or (stored.payload.get("models") or {}).get("text") != text_model


def _retrieve(store, ids: list[str]) -> list:
    out = []
    for start in range(0, len(ids), 512):
        out += store.retrieve(ids[start : start + 512])
    return out


__all__ = ["MAX_FIELD_CHARS", "CatalogueRead", "CatalogueRow", "Problem", "import_catalogue", "read_catalogue"]
