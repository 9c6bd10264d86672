"""One table: every recommendation strategy against the strongest simple baselines, in one run.

For each data set (Last.fm 2k play counts; MovieLens 100K ratings, 4-5 positive):

1. ``embedder interactions import`` into a scratch embedded store.
2. ``embedder eval --split random-holdout --seeds S``: popularity, ALS, item-kNN, RP3beta and EASE
   with their default settings, then ALS, item-kNN, RP3beta and EASE with ``--tune`` (each
   chosen on a validation split carved from the training part; the test part is never seen).
   NDCG@10 and Recall@10 as mean ± std over the seeds; fit seconds per strategy.
3. The independent EASE (``benchmarks/independent/ease.py``, numpy only) on the same splits:
   embedder's tuned EASE must reach at least 0.97x of it.
4. Serving: each strategy trained on the whole log with the settings tuned on seed 0, the store's
   size on disk after each model (what the model added), then ``embedder serve`` and
   ``GET /users/{u}/recommendations?strategy=...`` for --requests users, one at a time after a
   warm-up: p50 / p95 latency, and the server's resident memory at the end.

Usage (about 25 minutes on the 2-core machine):
    .venv/bin/python benchmarks/baselines/run.py --lastfm ../shared/data/lastfm-2k \\
        --ml100k ../shared/data/ml-100k --seeds 0,1,2 --out benchmarks/baselines/results.json

MovieLens 100K may not be redistributed: the script reads it from where it is and commits nothing
of it. Writes one JSON object (and prints the Markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "serve"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from load import pct, start_server, stop_server  # noqa: E402  (the serve benchmark's helpers)
from reporting import EMBEDDER, cli, run_record, save  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
DEFAULT_METHODS = ("popular", "cf", "itemknn", "rp3beta", "ease")
TUNED_METHODS = ("cf", "itemknn", "rp3beta", "ease", "words", "hybrid")
# MovieLens 100K's genre flags, in u.item's column order (the data set's u.genre).
ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
I2I = ("itemknn", "rp3beta", "ease")
DATA = {
    "lastfm": {
        "file": "user_artists.dat",
        "import": ["--format", "tsv", "--columns", "user,item,weight", "--weight-col", "weight"],
    },
    "ml100k": {
        "file": "u.data",
        "import": [
            "--format",
            "tsv",
            "--columns",
            "user,item,rating,ts",
            "--rating-col",
            "rating",
            "--rating-threshold",
            "3",
            "--time-col",
            "ts",
        ],
    },
}


def catalogue_file(name: str, folder: Path, work: Path) -> Path:
    """The data set's item metadata as an 'embedder items import' JSON-lines file: MovieLens
    titles (with the year) and genres, Last.fm artist names. Ids are the log's item ids."""
    rows = []
    if name == "ml100k":
        for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
            fields = line.split("|")
            genres = [g for g, flag in zip(ML_GENRES, fields[5:]) if flag == "1"]
            rows.append({"id": fields[0], "title": fields[1], "genres": genres})
    else:
        for line in (folder / "artists.dat").read_text(encoding="utf-8").splitlines()[1:]:
            fields = line.split("\t")
            rows.append({"id": fields[0], "title": fields[1]})
    path = work / f"{name}-catalogue.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def disk_bytes(path: Path) -> int:
    """Blocks on disk (Qdrant Edge preallocates sparse files: the apparent size says little)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def evaluate(env: dict, methods, seeds: str, tune: bool) -> dict:
    flags = ["--tune"] if tune else []
    out = cli(
        env, "eval", "--split", "random-holdout", "--methods", ",".join(methods), "--seeds", seeds, *flags, "--json"
    )
    return json.loads(out)


def fit_seconds(report: dict, method: str) -> float | None:
    values = [r["details"].get(method, {}).get("fit_seconds") for r in report["per_seed"]]
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


def train_flags(method: str, chosen: dict) -> list[str]:
    """The 'interactions train' flags for a strategy with the settings tuning chose."""
    if method == "cf":
        return [
            "--model",
            "als",
            "--weighting",
            str(chosen["weighting"]),
            "--alpha",
            str(chosen["alpha"]),
            "--regularization",
            str(chosen["regularization"]),
        ]
    flags = ["--model", method, "--neighbours", str(chosen["neighbours"])]
    if method == "ease":
        flags += ["--l2", str(chosen["l2"])]
    if method == "rp3beta":
        flags += ["--alpha", str(chosen["alpha"])]
    return flags


def hybrid_env(env: dict, chosen: dict) -> dict:
    """The environment that makes the served hybrid the one tuning chose."""
    return {
        **env,
        "EMBEDDER_HYBRID_BASE": chosen["base"],
        "EMBEDDER_HYBRID_CONTENT": chosen["content"],
        "EMBEDDER_HYBRID_FUSION": chosen["fusion"],
        "EMBEDDER_HYBRID_CONTENT_WEIGHT": str(chosen["content_weight"]),
        "EMBEDDER_HYBRID_RRF_K": str(chosen["rrf_k"]),
    }


def serving(env: dict, store: Path, tuned: dict, requests: int, seed: int) -> dict:
    """Train each strategy on the whole log, measure what it adds on disk, then serve it (the
    hybrid with the fusion tuning chose on seed 0)."""
    rows = {}
    base = disk_bytes(store)
    for method in ("cf", *I2I):
        chosen = tuned["tuning"]["chosen"] if method == "cf" else tuned["tuning_item_item"][method]["chosen"]
        extra_env = dict(env)
        if method == "rp3beta":
            extra_env["EMBEDDER_I2I_RP3_BETA"] = str(chosen["beta"])
        if method == "itemknn":
            extra_env["EMBEDDER_I2I_KNN_SHRINK"] = str(chosen["shrink"])
        started = time.perf_counter()
        cli(extra_env, "interactions", "train", *train_flags(method, chosen), "--json")
        seconds = time.perf_counter() - started
        now = disk_bytes(store)
        rows[method] = {"train_seconds_cli": round(seconds, 2), "index_bytes": now - base}
        base = now
    server, url = start_server(EMBEDDER, hybrid_env(env, tuned["tuning_hybrid"]["chosen"]))
    try:
        sample = _users(url, requests, seed)
        client = httpx.Client(timeout=60)  # one keep-alive connection, as a service's client would hold
        for method in ("popular", "cf", *I2I, "words", "hybrid"):
            times = []
            for n, user in enumerate(sample):
                t0 = time.perf_counter()
                r = client.get(f"{url}/users/{user}/recommendations", params={"strategy": method, "limit": 10})
                elapsed = time.perf_counter() - t0
                if r.status_code != 200:
                    raise SystemExit(f"{method} for {user}: HTTP {r.status_code} {r.text[:300]}")
                if n >= 5:  # the first requests warm the engine's caches
                    times.append(elapsed)
            rows.setdefault(method, {}).update(p50_ms=pct(times, 0.5), p95_ms=pct(times, 0.95))
        client.close()
        with open(f"/proc/{server.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    finally:
        stop_server(server)
    return {"strategies": rows, "serve_rss_mb": round(rss / 1024, 1), "users_queried": len(sample)}


def _users(url: str, count: int, seed: int) -> list[str]:
    """Users of the log, from the service (most active first), a seeded sample of them."""
    found = httpx.get(f"{url}/users", params={"limit": 10000}, timeout=60).json()
    users = [u["user"] for u in (found.get("users") if isinstance(found, dict) else found)]
    return random.Random(seed).sample(users, min(count, len(users)))


def run_dataset(name: str, folder: Path, seeds: str, requests: int, ease_items: int | None) -> dict:
    spec = DATA[name]
    work = Path(tempfile.mkdtemp(prefix=f"embedder-baselines-{name}-"))
    store = work / "store"
    env = {
        **os.environ,
        "EMBEDDER_STORE": str(store),
        "EMBEDDER_MODELS": "tiny",  # no media here: the content models are never asked for
        "EMBEDDER_DEVICE": "cpu",
    }
    if ease_items:
        env["EMBEDDER_I2I_MAX_ITEMS"] = str(ease_items)
    print(f"[{name}] import", file=sys.stderr)
    cli(env, "interactions", "import", str(folder / spec["file"]), *spec["import"], "--json")
    # The items' metadata as catalogue rows: their words (and a text vector) for words and hybrid.
    imported = json.loads(cli(env, "items", "import", str(catalogue_file(name, folder, work)), "--json"))
    print(f"[{name}] eval, default settings", file=sys.stderr)
    default = evaluate(env, DEFAULT_METHODS, seeds, tune=False)
    print(f"[{name}] eval, tuned", file=sys.stderr)
    tuned = evaluate(env, TUNED_METHODS, seeds, tune=True)
    print(f"[{name}] independent EASE", file=sys.stderr)
    independent_cmd = [PYTHON, str(ROOT / "benchmarks/independent/ease.py"), name, str(folder / spec["file"])]
    independent_cmd += ["--seeds", seeds] + (["--max-items", str(ease_items)] if ease_items else [])
    independent = json.loads(subprocess.run(independent_cmd, capture_output=True, text=True, check=True).stdout)
    print(f"[{name}] serving", file=sys.stderr)
    served = serving(
        env,
        store,
        {
            **tuned,
            "tuning": tuned["per_seed"][0]["tuning"],
            "tuning_item_item": tuned["per_seed"][0]["tuning_item_item"],
            "tuning_hybrid": tuned["per_seed"][0]["tuning_hybrid"],
        },
        requests,
        0,
    )
    table = []
    for label, report, method in [
        ("popularity", default, "popular"),
        ("item-kNN (default)", default, "itemknn"),
        ("item-kNN (tuned)", tuned, "itemknn"),
        ("RP3beta (default)", default, "rp3beta"),
        ("RP3beta (tuned)", tuned, "rp3beta"),
        ("EASE (default)", default, "ease"),
        ("EASE (tuned)", tuned, "ease"),
        ("ALS (default)", default, "cf"),
        ("ALS (tuned)", tuned, "cf"),
        ("words (metadata BM25)", tuned, "words"),
        ("hybrid (tuned)", tuned, "hybrid"),
    ]:
        scores, spread = report["methods"][method], report["spread"][method]
        serve_row = served["strategies"].get(method, {})
        table.append(
            {
                "method": label,
                "strategy": method,
                "ndcg@10": scores["ndcg@10"],
                "ndcg@10_std": spread["ndcg@10"],
                "recall@10": scores["recall@10"],
                "recall@10_std": spread["recall@10"],
                "fit_seconds": fit_seconds(report, method),
                "index_mb": round(serve_row["index_bytes"] / 1e6, 2) if "index_bytes" in serve_row else None,
                "serve_p50_ms": serve_row.get("p50_ms"),
                "serve_p95_ms": serve_row.get("p95_ms"),
            }
        )
    ease_ratio = round(tuned["methods"]["ease"]["ndcg@10"] / independent["ndcg@10_mean"], 4)
    return {
        "data": name,
        "users_evaluated": default["users_evaluated"],
        "catalogue": default["catalogue"],
        "ease_max_items": ease_items,
        "table": table,
        "independent_ease": independent,
        "ease_vs_independent": ease_ratio,
        "tuning_seed0": {
            "cf": tuned["per_seed"][0]["tuning"]["chosen"],
            **{k: v["chosen"] for k, v in tuned["per_seed"][0]["tuning_item_item"].items()},
            "at_edge": {k: v["at_edge"] for k, v in tuned["per_seed"][0]["tuning_item_item"].items()},
        },
        "serving": {"serve_rss_mb": served["serve_rss_mb"], "users_queried": served["users_queried"]},
        "catalogue_import": {k: imported.get(k) for k in ("created", "updated", "problems")},
        "hybrid": {
            "per_seed": [
                {
                    "seed": r["seed"],
                    "chosen": r["tuning_hybrid"]["chosen"],
                    "base_validation_ndcg@10": r["tuning_hybrid"]["base_validation_ndcg@10"],
                    "adds_on_validation": r["tuning_hybrid"]["adds_on_validation"],
                    "vs_base_on_test": r["details"].get("hybrid", {}).get("vs_base_ndcg@10"),
                }
                for r in tuned["per_seed"]
            ],
        },
    }


def markdown(results: dict) -> str:
    lines = []
    for data in results["datasets"]:
        best = max(r["ndcg@10"] for r in data["table"])
        lines += [
            f"### {data['data']} ({data['users_evaluated']} users, {data['catalogue']} items)",
            "",
            "| method | NDCG@10 | Recall@10 | vs best | fit s | index MB | serve p50 ms | p95 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in data["table"]:
            lines.append(
                f"| {r['method']} | {r['ndcg@10']:.4f} ± {r['ndcg@10_std']:.4f} | "
                f"{r['recall@10']:.4f} ± {r['recall@10_std']:.4f} | {r['ndcg@10'] / best:.2f} | "
                f"{r['fit_seconds'] if r['fit_seconds'] is not None else '-'} | "
                f"{r['index_mb'] if r['index_mb'] is not None else '-'} | "
                f"{r['serve_p50_ms'] if r['serve_p50_ms'] is not None else '-'} | "
                f"{r['serve_p95_ms'] if r['serve_p95_ms'] is not None else '-'} |"
            )
        ind = data["independent_ease"]
        lines += [
            "",
            f"Independent EASE (numpy, dense, unpruned): {ind['ndcg@10_mean']:.4f} ± {ind['ndcg@10_std']:.4f}; "
            f"embedder's tuned EASE / independent = {data['ease_vs_independent']:.3f}. "
            f"serve RSS {data['serving']['serve_rss_mb']} MB.",
            "",
        ]
        for seed in data["hybrid"]["per_seed"]:
            c = seed["chosen"]
            fused = (
                f"{c['base']} alone (content weight 0)"
                if not c["content_weight"]
                else f"{c['base']} + {c['content']}, {c['fusion']}"
                + (f" k={c['rrf_k']} weight {c['content_weight']}" if c["fusion"] == "rrf" else "")
            )
            adds = "yes" if seed["adds_on_validation"] else "no"
            lines.append(
                f"- hybrid, seed {seed['seed']}: {fused}; the content side adds on validation: {adds}; "
                f"hybrid / {c['base']} on test: {seed['vs_base_on_test']}"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lastfm", type=Path, help="folder with user_artists.dat")
    parser.add_argument("--ml100k", type=Path, help="folder with u.data")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--requests", type=int, default=200, help="users queried per strategy when serving")
    parser.add_argument(
        "--lastfm-ease-items",
        type=int,
        default=6000,
        help="EASE's catalogue on Last.fm (i2i_max_items): its 15k-item inverse takes about 40 s a fit here",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    datasets = []
    if args.ml100k:
        datasets.append(run_dataset("ml100k", args.ml100k, args.seeds, args.requests, None))
    if args.lastfm:
        datasets.append(run_dataset("lastfm", args.lastfm, args.seeds, args.requests, args.lastfm_ease_items))
    save(run_record(started, seeds=args.seeds, datasets=datasets), args.out, markdown)


if __name__ == "__main__":
    main()
