"""Search what is said and written: is the lexical ranking right, what does hybrid cost, how fast is ASR?

Three measurements, one run, this machine:

1. **Lexical ranking vs an independent BM25.** Real text corpora, MovieLens 100K titles and genres
   (``u.item``) and Last.fm-2k artist names (``artists.dat``), are written into an embedded
   collection through embedder's own path (``embedder.lexical``: Qdrant's ``Bm25`` term weights,
   the engine's IDF, :func:`embedder.lexical.refresh` for the length normalisation). The same
   texts, cut by the same tokenizer (Qdrant's, with English stemming and stop words), are indexed
   by ``bm25s`` (Lucene's BM25, k1 = 1.2, b = 0.75), code that shares nothing with Qdrant. Queries are
   1 to 3 words drawn from random documents, as a person types them. Reported: top-10 overlap
   strict (each side's own tie order), counting documents tied with the 10th as agreement, and
   with ties broken alike on both sides (score, then document order): short titles tie often;
   and the relative difference between the engine's score and bm25s's (times k1 + 1, the constant
   factor Lucene's variant leaves out) for the engine's top 10.
2. **Hybrid vs dense latency through ``embedder serve``**, at 10k and 100k items: synthetic items
   (random unit vectors at the preset's sizes; words from the corpora above), then ``GET /search``
   in ``dense``, ``lexical`` and ``hybrid`` modes, interleaved, after a warm-up; p50/p95.
3. **ASR real-time factor** of the offline recogniser (pocketsphinx) on real speech (the NASA
   narration, repeated to two minutes) and on two minutes of a tone (the voice detector's cost);
   ``asr.py`` measures the Whisper architectures the same way.

Usage:
    .venv/bin/python benchmarks/search/run.py --movielens ../shared/data/ml-100k \\
        --lastfm ../shared/data/lastfm-2k [--sizes 10000,100000] [--models tiny] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "serve"))
from asr import asr_speed  # noqa: E402  (this folder's ASR measurement; the script's folder is on sys.path)
from load import pct, start_server, stop_server  # noqa: E402  (the serve benchmark's helpers)

EMBEDDER = str(ROOT / ".venv" / "bin" / "embedder")
LANGUAGE = "english"
TIE_DEPTH = 200  # engine results read per query, so that ties at the 10th place can be broken alike
# u.item's 19 genre flags, in the order MovieLens documents them (u.genre).
ML_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir Horror "
    "Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def movielens_docs(folder: Path) -> list[dict]:
    docs = []
    for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
        fields = line.split("|")
        if len(fields) < 24:
            continue
        genres = [g for g, flag in zip(ML_GENRES, fields[5:24]) if flag == "1"]
        docs.append({"title": fields[1], "text": " ".join(genres)})
    return docs


def lastfm_docs(folder: Path) -> list[dict]:
    lines = (folder / "artists.dat").read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    return [{"title": line.split("\t")[1], "text": ""} for line in lines if "\t" in line]


def tokens(text: str) -> list[str]:
    """Qdrant's tokens of ``text`` (stemmed, stop words out), as strings for bm25s."""
    from embedder.lexical import _WORD, _term

    return [str(t) for t in (_term(w.lower(), LANGUAGE) for w in _WORD.findall(text)) if t is not None]


def draw_queries(docs: list[dict], count: int, seed: int) -> list[str]:
    from embedder.lexical import _WORD, _term

    rng = random.Random(seed)
    out = []
    while len(out) < count:
        doc = rng.choice(docs)
        words = [w for w in _WORD.findall(f"{doc['title']} {doc['text']}") if _term(w.lower(), LANGUAGE)]
        if words:
            out.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 3)))))
    return out


def fill_lexical(store, docs: list[dict], dims: dict[str, int], seed: int = 0, id_offset: int = 0) -> None:
    """Write ``docs`` as media points with random vectors and their words, through embedder.lexical."""
    from embedder.lexical import DEFAULT_AVG_LEN, lexical_fields
    from embedder.store import PointRecord
    from embedder.store.base import point_id

    rng = np.random.default_rng(seed)
    for start in range(0, len(docs), 2000):
        points = []
        for j, doc in enumerate(docs[start : start + 2000], start + id_offset):
            vectors = {}
            for name, size in dims.items():
                v = rng.standard_normal(size).astype(np.float32)
                vectors[name] = v / np.linalg.norm(v)
            payload = {
                "path": f"/synthetic/{j}.mp4",
                "paths": [f"/synthetic/{j}.mp4"],
                "kind": "video",
                "modalities": ["visual", "audio", "text"],
                "words": {"title": doc["title"], "text": doc["text"], "subtitles": []},
            }
            named, fields = lexical_fields(payload, LANGUAGE, DEFAULT_AVG_LEN)
            vectors.update(named)
            payload.update(fields)
            points.append(PointRecord(point_id(f"synthetic-{j}"), vectors, payload))
        store.upsert(points)


def agreement(name: str, docs: list[dict], queries: int, seed: int) -> dict:
    """Engine BM25 (through embedder) vs bm25s on the same texts and tokens."""
    import bm25s

    from embedder.lexical import query_vector, refresh
    from embedder.store.base import SparseNearest, point_id
    from embedder.store.edge import EdgeStore

    work = Path(tempfile.mkdtemp(prefix=f"lexical-{name}-"))
    try:
        store = EdgeStore(work, "media_v1")
        store.ensure_collection({"content": 8})
        started = time.perf_counter()
        fill_lexical(store, docs, {"content": 8})
        refreshed = refresh(store, LANGUAGE)
        index_s = time.perf_counter() - started
        corpus = [tokens(f"{d['title']}\n{d['text']}") for d in docs]
        independent = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        independent.index(corpus, show_progress=False)
        vocab = independent.vocab_dict
        strict, tied, broken, differences, unscored = [], [], [], [], 0
        by_point = {point_id(f"synthetic-{j}"): j for j in range(len(docs))}
        for q in draw_queries(docs, queries, seed):
            # Deep enough to hold every document tied with the 10th, so both sides can break ties alike.
            hits = store.search(SparseNearest(query_vector(q, LANGUAGE), "lexical"), limit=TIE_DEPTH)
            wanted = [t for t in dict.fromkeys(tokens(q)) if t in vocab]
            scores = independent.get_scores(wanted) * (1.2 + 1)  # Lucene leaves out Okapi's factor (k1 + 1)
            order = np.argsort(-scores, kind="stable")[:10]
            expected = [int(i) for i in order if scores[i] > 0]
            got = [by_point[h.id] for h in hits]
            if not expected:
                continue
            tenth = scores[expected[-1]]
            strict.append(len(set(expected) & set(got[:10])) / len(expected))
            tied.append(float(sum(scores[g] >= tenth * (1 - 1e-4) for g in got[:10])) / len(expected))
            # Ties broken the same way on both sides (score rounded to 4 digits, then document order).
            engine = sorted(zip(got, (h.score for h in hits)), key=lambda x: (-round(x[1], 4), x[0]))[:10]
            mine = sorted(((i, scores[i]) for i in np.flatnonzero(scores > 0)), key=lambda x: (-round(x[1], 4), x[0]))
            broken.append(len({i for i, _ in engine} & {i for i, _ in mine[:10]}) / min(10, len(mine)))
            for h, g in zip(hits[:10], got[:10]):
                if scores[g] <= 0:
                    unscored += 1  # the two tokenizations differ on this document (see the README)
                    continue
                differences.append(float(abs(h.score - scores[g]) / scores[g]))
        store.close()
        return {
            "documents": len(docs),
            "queries": len(strict),
            "avg_len": refreshed["avg_len"],
            "index_s": round(index_s, 2),
            "overlap_at_10": round(float(np.mean(strict)), 4),
            "overlap_at_10_ties_agree": round(float(np.mean(tied)), 4),
            "overlap_at_10_same_tie_break": round(float(np.mean(broken)), 4),
            "relative_score_difference_p50": round(float(np.median(differences)), 6),
            "relative_score_difference_p99": round(float(np.percentile(differences, 99)), 6),
            "scores_compared": len(differences),
            "engine_hits_bm25s_scores_zero": unscored,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def latency(size: int, models: str, docs: list[dict], requests: int, seed: int) -> dict:
    """p50/p95 of GET /search per mode through `embedder serve`, over ``size`` items."""
    import httpx

    from embedder.encoders.bundle import schema_for
    from embedder.lexical import refresh
    from embedder.settings import load_settings
    from embedder.store import open_store

    work = Path(tempfile.mkdtemp(prefix=f"hybrid-{size}-"))
    env = {
        **os.environ,
        "EMBEDDER_STORE": str(work / "store"),
        "EMBEDDER_MODELS": models,
        "EMBEDDER_DEVICE": "cpu",
        "EMBEDDER_THUMBNAILS": "false",
        "EMBEDDER_SPEECH_MODEL": "none",
    }
    try:
        settings = load_settings(store=env["EMBEDDER_STORE"], models=models, device="cpu")
        dims = {k: v for k, v in schema_for(settings).items() if k != "segments"}
        started = time.perf_counter()
        with open_store(settings) as store:
            store.ensure_collection(schema_for(settings))
            many = [
                {"title": f"{d['title']} {i // len(docs)}", "text": d["text"]}
                for i, d in zip(range(size), _cycle(docs))
            ]
            fill_lexical(store, many, dims, seed)
            refresh(store, LANGUAGE)
        fill_s = time.perf_counter() - started
        # Every request a query not seen before: serve keeps the encodings of recent queries, so a
        # repeated one would skip the encoder in whichever mode came second.
        queries = list(dict.fromkeys(draw_queries(docs, 8 * requests, seed)))[: 3 * requests + 30]
        server, url = start_server(EMBEDDER, env)
        try:
            client = httpx.Client(base_url=url, timeout=60)
            modes = ("dense", "lexical", "hybrid")
            for i, q in enumerate(queries[:30]):  # warm-up: models, caches, the engine's files
                client.get("/search", params={"q": q, "mode": modes[i % 3]}).raise_for_status()
            samples: dict[str, list[float]] = {m: [] for m in modes}
            fresh = iter(queries[30:])
            for i in range(requests):
                for mode in modes[i % 3 :] + modes[: i % 3]:  # interleaved, rotating: drift hits all alike
                    t = time.perf_counter()
                    client.get("/search", params={"q": next(fresh), "mode": mode, "limit": 10}).raise_for_status()
                    samples[mode].append(time.perf_counter() - t)
        finally:
            stop_server(server)
        out = {m: {"p50_ms": pct(s, 0.5), "p95_ms": pct(s, 0.95)} for m, s in samples.items()}
        out["hybrid_over_dense_p50"] = round(
            statistics.median(samples["hybrid"]) / statistics.median(samples["dense"]), 3
        )
        out["items"] = size
        out["fill_s"] = round(fill_s, 1)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cycle(items):
    while True:
        yield from items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movielens", type=Path, required=True, help="the ml-100k folder (u.item)")
    parser.add_argument("--lastfm", type=Path, required=True, help="the lastfm-2k folder (artists.dat)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--models", default="tiny", help="the preset whose query encoder serve runs")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ml, lastfm = movielens_docs(args.movielens), lastfm_docs(args.lastfm)
    results = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "lexical_agreement": {
            "movielens-100k": agreement("ml", ml, args.queries, args.seed),
            "lastfm-2k": agreement("lastfm", lastfm, args.queries, args.seed),
        },
        "asr": asr_speed(["pocketsphinx"]),  # asr.py measures Whisper too
        "latency": {
            f"{args.models}-{size}": latency(int(size), args.models, ml + lastfm, args.requests, args.seed)
            for size in args.sizes.split(",")
        },
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
