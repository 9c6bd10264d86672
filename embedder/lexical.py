"""Lexical search: BM25 over everything textual an item has, scored by the Qdrant engine itself.

Each media point gets a sparse named vector, ``lexical``: the BM25 term weights of its words
(Qdrant's own ``Bm25`` model from ``qdrant_edge``: tokenizer, Snowball stemmer, stop words, term
hashing), in a sparse vector whose query side the engine multiplies by each term's inverse
document frequency over the collection (``Modifier.IDF``). A query is the same model's query
vector, so the engine's sparse dot product is exactly Okapi BM25 (k1 = 1.2, b = 0.75) with the
collection's live document frequencies, on the embedded store and on a Qdrant server alike.

What an item's words are (:func:`parts`): its title (the file name as a phrase), its text (sidecar
title, description and tags, or a ``.txt``), its subtitle lines and its transcript lines, each line
with its time, so an explanation can say which words matched where, and when.

BM25 normalises term frequency by the document's length over the average length
(``avg_len``): each point records the average it was written with (payload ``lexical``), and
:func:`refresh` rewrites the vectors whose average is more than :data:`AVG_DRIFT` away from the
collection's current one (ingest calls it at the end of every run).

The payload key :data:`SEARCH_TEXT` holds the same words as one string under a full-text index
with phrase matching, for quoted phrases in a query (:class:`embedder.store.base.Phrase`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

from embedder.settings import TEXT_LANGUAGES
from embedder.store.base import LEXICAL, SEARCH_TEXT  # the sparse named vector; the phrase-indexed payload key

LANGUAGES = TEXT_LANGUAGES  # Snowball stemmers Qdrant's tokenizer has, by the names the settings take
DEFAULT_AVG_LEN = 64.0  # tokens: what an empty collection's first items are written with
AVG_DRIFT = 0.1  # rewrite a point's vector when the collection's average moved this far (relative)
MAX_CUES = 20_000  # subtitle or transcript lines kept per item (a 10-hour file has about 7,000)
_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_PHRASE = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Part:
    """A piece of an item's words: where it is (title, text, subtitle or transcript) and when."""

    where: str
    text: str
    start: float | None = None
    end: float | None = None


@dataclass
class Match:
    """Where a query's words matched in an item: the part, and the words of it that matched."""

    where: str
    text: str
    words: list[str]
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def _model(language: str, avg_len: float):
    from qdrant_edge import Bm25, Bm25Config

    return Bm25(Bm25Config(language=language, avg_len=float(avg_len)))


def parts(payload: dict) -> list[Part]:
    """Every piece of an item's words, in the order they are indexed (see the module docstring)."""
    words = payload.get("words") or {}
    out = []
    if words.get("title"):
        out.append(Part("title", words["title"]))
    if words.get("text"):
        out.append(Part("text", words["text"]))
    for cue in (words.get("subtitles") or [])[:MAX_CUES]:
        out.append(Part("subtitle", cue["text"], cue.get("start"), cue.get("end")))
    for line in ((payload.get("transcript") or {}).get("lines") or [])[:MAX_CUES]:
        out.append(Part("transcript", line["text"], line.get("start"), line.get("end")))
    return out


def document(payload: dict) -> str:
    """An item's words as one text (what :data:`SEARCH_TEXT` stores); lines end with a full stop,
    so a phrase never runs from one line into the next unnoticed."""
    return "\n".join(p.text.strip() for p in parts(payload) if p.text.strip())


def words_payload(title: str, text: str | None, text_source: str, cues) -> dict:
    """The payload key ``words``: the title, the item text unless it is the subtitles themselves
    (they are indexed line by line), and the subtitle lines with their times."""
    subtitles = [{"start": round(c.start, 3), "end": round(c.end, 3), "text": c.text} for c in (cues or [])]
    keep_text = text and text_source not in ("subtitles", "embedded-subtitles", "filename")
    return {"title": title, "text": text if keep_text else "", "subtitles": subtitles[:MAX_CUES]}


def token_count(text: str, language: str) -> int:
    """How many tokens BM25 counts in ``text`` (its words less stop words), the document length."""
    return sum(1 for word in _WORD.findall(text) if _term(word.lower(), language))


@lru_cache(maxsize=200_000)
def _term(word: str, language: str) -> int | None:
    """The hashed term of one word after stemming, ``None`` for a stop word."""
    indices = _model(language, DEFAULT_AVG_LEN).embed_query(word).indices
    return int(indices[0]) if indices else None


def document_vector(payload: dict, language: str, avg_len: float):
    """The item's ``lexical`` sparse vector and its token count; ``(None, 0)`` when it has no words."""
    from embedder.store.base import Sparse

    text = document(payload)
    count = token_count(text, language)
    if not count:
        return None, 0
    vector = _model(language, round(float(avg_len), 2)).embed_document(text)
    return Sparse.of(vector.indices, vector.values), count


def query_vector(query: str, language: str):
    """A query's sparse vector (each term once; the engine applies IDF); ``None`` when every word
    is a stop word."""
    from embedder.store.base import Sparse

    vector = _model(language, DEFAULT_AVG_LEN).embed_query(query)
    return Sparse.of(vector.indices, vector.values) if len(vector.indices) else None


def phrases(query: str) -> list[str]:
    """The quoted phrases of a query (``kites "paper kites"`` -> ``["paper kites"]``)."""
    return [p.strip() for p in _PHRASE.findall(query) if p.strip()]


def lexical_fields(payload: dict, language: str, avg_len: float) -> tuple[dict, dict]:
    """What a point with these ``words``/``transcript`` keys gets for lexical search: named
    vectors (``{}`` when it has no words) and payload keys (:data:`SEARCH_TEXT`, ``lexical``)."""
    vector, count = document_vector(payload, language, avg_len)
    stamp = {"tokens": count, "avg_len": round(float(avg_len), 2), "language": language}
    fields = {SEARCH_TEXT: document(payload), LEXICAL: stamp}
    return ({LEXICAL: vector} if vector is not None else {}), fields


def matches(payload: dict, query: str, language: str, limit: int = 5) -> list[Match]:
    """The parts of an item that hold a query's words, the most matched words first (then by
    time), with the words as they appear in the part (stemmed alike: "kites" matches "kite")."""
    vector = query_vector(query, language)
    if vector is None:
        return []
    wanted = set(vector.indices)
    found = []
    for order, part in enumerate(parts(payload)):
        hit = [w for w in _WORD.findall(part.text) if _term(w.lower(), language) in wanted]
        if hit:
            found.append((order, part, hit))
    found.sort(key=lambda f: (-len({_term(w.lower(), language) for w in f[2]}), f[0]))
    return [Match(p.where, p.text, _distinct(hit), p.start, p.end) for _, p, hit in found[:limit]]


def _distinct(words: list[str]) -> list[str]:
    """Words in their first spelling, each once whatever its case ("Thriller", "thriller")."""
    seen: dict[str, str] = {}
    for word in words:
        seen.setdefault(word.lower(), word)
    return list(seen.values())


def average_length(records: Iterator) -> float | None:
    """The mean token count over points that have a ``lexical`` payload (``None`` when none do)."""
    total = n = 0
    for record in records:
        tokens = (record.payload.get(LEXICAL) or {}).get("tokens")
        if tokens:
            total += int(tokens)
            n += 1
    return total / n if n else None


def refresh(store, language: str) -> dict:
    """Rewrite the ``lexical`` vectors written with an average length that drifted more than
    :data:`AVG_DRIFT` from the collection's current average (or with another language).

    Points that lack the vector but have words (restored from the trash, encoded by a worker with
    no store) get it too. Returns ``{"avg_len", "rewritten", "items"}``; a no-op on a collection
    without the vector.
    """
    if LEXICAL not in store.sparse_names():
        return {"avg_len": None, "rewritten": 0, "items": 0}
    records = [r for r in store.scroll(with_vectors=[LEXICAL]) if r.payload.get("words") or r.payload.get("transcript")]
    avg = average_length(records) or DEFAULT_AVG_LEN
    stale = []
    for r in records:
        stored = r.payload.get(LEXICAL) or {}
        was = float(stored.get("avg_len") or 0)
        lacking = LEXICAL not in r.vectors and stored.get("tokens", 1)  # a copy that lost it (trash, a worker)
        if lacking or stored.get("language") != language or not was or abs(was - avg) / avg > AVG_DRIFT:
            stale.append(r)
    for start in range(0, len(stale), 256):
        batch = stale[start : start + 256]
        vectors = {}
        for r in batch:
            named, fields = lexical_fields(r.payload, language, avg)
            store.set_payload([r.id], fields)
            if named:
                vectors[r.id] = named
        if vectors:
            store.update_vectors(vectors)
    return {"avg_len": round(avg, 2), "rewritten": len(stale), "items": len(records)}


__all__ = [
    "LEXICAL",
    "SEARCH_TEXT",
    "Match",
    "Part",
    "document",
    "document_vector",
    "lexical_fields",
    "matches",
    "parts",
    "phrases",
    "query_vector",
    "refresh",
    "words_payload",
]
