"""The payload keys of a media point that searches can filter on, with their types.

`build_payload` in the ingest pipeline writes these keys; `--filter` is parsed against this table,
so an unknown key or a value of the wrong type is an error that names the known keys, numbers
compare as numbers, and ranges exist for numeric keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embedder.errors import EmbedderError
from embedder.store.base import AllOf, Filter, Range


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
    return ", ".join(f"{k} ({v.type})" for k, v in FILTERABLE.items())


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
    spec = FILTERABLE.get(key)
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
