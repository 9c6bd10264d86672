"""The payload schema: every key a point of the media or users collection carries, and which of
them searches can filter on.

Writers: ``stages.build_payload`` (a media file), ``recommend.cf.write_cf`` (``item``,
``popularity``, ``cf_model``; users: ``user``, ``cf_model``), ``train.export.write_rec``
(``rec_model``, ``rec_run``), ``evaluate`` (``eval_role``, scratch stores only). Readers annotate
payloads with :class:`MediaPayload` / :class:`UserPayload`, so a type checker catches a
misspelt key. ``--filter`` is parsed against :data:`FILTERABLE`, so an unknown key or a value of
the wrong type is an error that names the known keys, numbers compare as numbers, and ranges
exist for numeric keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from embedder.errors import EmbedderError
from embedder.store.base import AllOf, Filter, Range


class Fusion(TypedDict):
    version: int  # embedder.fusion.FUSION_VERSION when the content vector was made
    weights: dict[str, float]  # the modality weights actually used (renormalised over present ones)


class MediaPayload(TypedDict, total=False):
    """A point of the media collection: an ingested file, or an item known only from the log."""

    path: str  # the first of ``paths``
    paths: list[str]  # every file with this content (same sha256)
    mtimes: dict[str, int]  # path -> mtime_ns, so the next ingest skips re-hashing unchanged files
    identities: dict[str, dict]  # path -> FileIdentity.to_dict(): what serving checks before reading it
    dirs: list[str]  # every folder above any of ``paths`` (indexed): ingest reads only the points under its roots
    sha256: str
    size: int  # bytes
    duration: float  # seconds
    kind: str  # video, audio, or item (log only, no media)
    modalities: list[str]  # visual, audio, text: the ones that have a vector
    models: dict[str, str]  # modality -> model id that made its vector
    fusion: Fusion
    text: str  # the item's text (subtitles, sidecar, tags), first 500 characters
    text_source: str
    frames: list[float]  # timestamps of the frames encoded, seconds
    audio_windows: int
    ingested_at: str  # ISO 8601, UTC
    item: str  # the interaction log's item key
    popularity: float  # users who interacted, as of the last 'interactions train'
    cf_model: str  # version of the collaborative model that wrote the cf vectors
    rec_model: str  # version of the trained head that wrote the rec vector
    eval_role: str  # "candidate" in evaluation scratch stores
    meta: dict  # catalogue fields ('embedder items import'), filterable as meta.<name>
    catalogue: dict  # where the catalogue row came from: source, imported_at, text_sha
    words: dict  # title, text and subtitle lines: what lexical search indexes (embedder.lexical)
    transcript: dict  # what is said (embedder.media.speech.Transcript.to_payload)
    speech_model: str  # the speech model that made the transcript ("none": not transcribed)
    search_text: str  # the words as one text, under the full-text (phrase) index
    lexical: dict  # tokens, avg_len and language the lexical vector was written with


def folders_above(paths: list[str]) -> list[str]:
    """Every folder that contains one of ``paths`` (``/a/b/c.mp4`` -> ``/``, ``/a``, ``/a/b``), sorted."""
    import posixpath

    out: set[str] = set()
    for path in paths:
        folder = posixpath.dirname(path)
        while folder and folder not in out:
            out.add(folder)
            parent = posixpath.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return sorted(out)


def location_fields(paths: list[str], identities: dict[str, dict]) -> MediaPayload:
    """The payload keys that say where an item's files are; written together whenever they change.

    ``identities`` maps a path to what it was at ingest (``FileIdentity.to_dict()``:
    size, mtime, device, inode, real path, root), or, for an item stored before identities were
    recorded, to ``{"mtime_ns": ...}`` alone (see :func:`stored_identities`).
    """
    known = {p: identities[p] for p in paths if p in identities}
    return {
        "path": paths[0],
        "paths": list(paths),
        "mtimes": {p: int(v["mtime_ns"]) for p, v in known.items() if int(v.get("mtime_ns", -1)) >= 0},
        "identities": {p: dict(v) for p, v in known.items() if v.get("ino")},
        "dirs": folders_above(paths),
    }


def stored_identities(payload: MediaPayload) -> dict[str, dict]:
    """Path -> identity for every path of a stored item; items from before identities were
    recorded give ``{"size", "mtime_ns"}`` from their ``mtimes`` (-1 when even that is missing)."""
    size = int(payload.get("size", -1))
    out: dict[str, dict] = {p: {"size": size, "mtime_ns": -1} for p in payload.get("paths") or []}
    out.update({p: {"size": size, "mtime_ns": int(m)} for p, m in (payload.get("mtimes") or {}).items()})
    out.update(payload.get("identities") or {})
    return out


class UserPayload(TypedDict, total=False):
    """A point of the users collection."""

    user: str  # as stored: a keyed hash when ids are pseudonymous
    cf_model: str
    rec_model: str
    rec_run: str  # the run directory of the head that wrote the rec vector


@dataclass(frozen=True)
class Key:
    """A filterable payload key: ``keyword``, ``int`` or ``float``, and its allowed values if closed."""

    type: str
    values: tuple[str, ...] = ()
    help: str = ""


FILTERABLE: dict[str, Key] = {
    "kind": Key("keyword", ("video", "audio", "item"), "what the file is"),
    "modalities": Key("keyword", ("visual", "audio", "text"), "a modality the item has"),
    "path": Key("keyword", help="the item's first path"),
    "paths": Key("keyword", help="any of the item's paths"),
    "sha256": Key("keyword", help="content hash"),
    "text_source": Key("keyword", help="where the text came from, e.g. sidecar-json"),
    "item": Key("keyword", help="the interaction log's item key"),
    "size": Key("int", help="bytes"),
    "duration": Key("float", help="seconds"),
    "audio_windows": Key("int", help="audio windows encoded"),
    "popularity": Key("float", help="users who interacted (after 'interactions train')"),
}

_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|=|>|<|!=)\s*(.*?)\s*$")
_RANGE_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def _known() -> str:
    return ", ".join(f"{k} ({v.type})" for k, v in FILTERABLE.items()) + ", meta.<catalogue column>"


_META_KEY = re.compile(r"^meta\.[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _meta_key(key: str, raw: str) -> Key | None:
    """A catalogue field (``meta.price``, from 'embedder items import'): a number where the value
    given is one (so ranges work), a keyword otherwise; ``None`` for any other unknown key."""
    if not _META_KEY.match(key):
        return None
    try:
        float(raw.split(",")[0])
    except ValueError:
        return Key("keyword", help="a catalogue field")
    return Key("float", help="a catalogue field")


def _number(key: str, spec: Key, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise EmbedderError(f"--filter {key}: '{text}' is not a number ({key} is {spec.type})") from None
    if spec.type == "int" and value.is_integer():
        return int(value)
    return value


def parse_condition(text: str) -> tuple[str, object]:
    """One ``--filter`` string as (key, condition): ``kind=video``, ``kind=video,audio`` (any of),
    ``size=16033``, ``duration>10``, ``size<=1e6``."""
    m = _CONDITION.match(text)
    if not m:
        raise EmbedderError(f"--filter expects key=value or key>number (also >=, <, <=), got '{text}'")
    key, op, raw = m.groups()
    spec = FILTERABLE.get(key) or _meta_key(key, raw)
    if spec is None:
        raise EmbedderError(f"--filter: unknown key '{key}'; known keys: {_known()}")
    if op == "!=":
        raise EmbedderError(f"--filter {text}: '!=' is not supported; use =, >, >=, < or <=")
    if not raw:
        raise EmbedderError(f"--filter {text}: no value")
    if op in _RANGE_OPS:
        if spec.type == "keyword":
            raise EmbedderError(f"--filter {text}: {key} is a keyword; ranges work on numeric keys only")
        return key, Range(**{_RANGE_OPS[op]: float(_number(key, spec, raw))})
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if spec.type == "keyword":
        bad = [v for v in values if spec.values and v not in spec.values]
        if bad:
            raise EmbedderError(f"--filter {key}: '{bad[0]}' is not one of {', '.join(spec.values)}")
        return key, values[0] if len(values) == 1 else values
    numbers = [_number(key, spec, v) for v in values]
    if spec.type == "float" or any(isinstance(n, float) for n in numbers):
        if len(numbers) > 1:
            raise EmbedderError(f"--filter {key}: a list of values works for whole numbers only; use a range")
        return key, Range(gte=float(numbers[0]), lte=float(numbers[0]))
    return key, numbers[0] if len(numbers) == 1 else numbers


def parse_filters(conditions: list[str] | None) -> Filter:
    """``--filter`` strings as one filter: all conditions must hold; a key given twice keeps both.

    Raises:
        EmbedderError: an unknown key (the message lists the known ones), a bad value or operator.
    """
    out: Filter = {}
    for text in conditions or []:
        key, cond = parse_condition(text)
        if key in out:
            previous = out[key].conditions if isinstance(out[key], AllOf) else (out[key],)
            out[key] = AllOf((*previous, cond))
        else:
            out[key] = cond
    return out
