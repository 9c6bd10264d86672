"""The trained head against its start and the strongest baselines, on warm users and on cold items.

Issue 26, item 5: with the items' metadata as content features and the best collaborative model
as its start, does the two-tower head (``embedder train``, BCE, early stopping) beat its start on
warm users, and do content, metadata and the head beat popularity on items nobody has played?

Per data set (MovieLens 100K with titles and genres, Last.fm 2k with artist names; the same
catalogue rows as ``run.py``), in one run:

- **warm**: ``embedder eval --split random-holdout --methods cf,ease,trained --tune --seeds S``.
  The head's config is ``pipelines/configs/train.toml`` with ``init = "cf"`` (the towers start at
  the ALS factors, with the settings tuning chose) and ``dim`` = the factors tuning chose on seed 0
  in ``results.json``, so the start is the tuned ALS; its item tower reads the catalogue rows'
  text vectors. The head is kept only where an epoch beats the start on validation (epoch 0: warm
  items as ALS, cold items through the content fitted to the ALS factors).
- **cold items**: ``embedder eval --split cold-items --methods popular,words,content,trained``:
  20% of the items are held out with all their events, and every method ranks only those items
  for each user who has one of them in test (``cf`` and the item-to-item models cannot score an
  item with no events, so they are not in this table).

Usage (about 75 minutes on the project's 2-core machine):
    .venv/bin/python benchmarks/baselines/head.py --ml100k ../shared/data/ml-100k \
        --lastfm ../shared/data/lastfm-2k --seeds 0,1,2 --out benchmarks/baselines/head.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from reporting import cli, run_record, save  # noqa: E402
from run import DATA, ROOT, catalogue_file  # noqa: E402  (the table's own import and catalogue)

WARM = ("cf", "ease", "trained")
COLD = ("popular", "words", "content", "trained")


def head_config(work: Path, dim: int) -> Path:
    """The shipped training config, starting from ALS (``init = "cf"``) at ``dim`` factors."""
    text = (ROOT / "pipelines" / "configs" / "train.toml").read_text()
    config = tomllib.loads(text)
    assert config["model"]["init"] == "auto" and config["model"]["dim"] == 64  # what is replaced below
    text = text.replace('init = "auto"', 'init = "cf"').replace("dim = 64 ", f"dim = {dim} ", 1)
    path = work / "train-cf-start.toml"
    path.write_text(text)
    model = tomllib.loads(path.read_text())["model"]
    assert model["init"] == "cf" and model["dim"] == dim
    return path


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return round(mean, 5), round((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5, 5)


def table(report: dict) -> dict:
    """method -> NDCG@10 and Recall@10 (mean, std over seeds)."""
    rows = {}
    for method in report["per_seed"][0]["methods"]:
        ndcg = [r["methods"][method]["ndcg@10"] for r in report["per_seed"]]
        recall = [r["methods"][method]["recall@10"] for r in report["per_seed"]]
        rows[method] = {"ndcg@10": mean_std(ndcg), "recall@10": mean_std(recall), "per_seed": ndcg}
    return rows


def head_details(report: dict) -> list[dict]:
    """Per seed: where the head started, the epoch kept (0 = the start), validation by epoch."""
    out = []
    for r in report["per_seed"]:
        d = r["details"].get("trained", {})
        out.append(
            {
                "seed": r["seed"],
                "init": d.get("init"),
                "best_epoch": d.get("best_epoch"),
                "epochs": d.get("epochs"),
                "val_ndcg@10": [h.get("val_ndcg@10") for h in d.get("history", [])],
            }
        )
    return out


def run_dataset(name: str, folder: Path, seeds: str, dim: int, ease_items: int | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"embedder-head-{name}-"))
    env = {**os.environ, "EMBEDDER_STORE": str(work / "store"), "EMBEDDER_MODELS": "tiny", "EMBEDDER_DEVICE": "cpu"}
    env["EMBEDDER_WARM_QUERIES"] = "off"
    if ease_items:
        env["EMBEDDER_I2I_MAX_ITEMS"] = str(ease_items)
    spec = DATA[name]
    cli(env, "interactions", "import", str(folder / spec["file"]), *spec["import"], "--json")
    cli(env, "items", "import", str(catalogue_file(name, folder, work)), "--json")
    config = head_config(work, dim)
    print(f"[{name}] warm users", file=sys.stderr)
    started = time.perf_counter()
    warm = json.loads(
        cli(env, "eval", "--split", "random-holdout", "--methods", ",".join(WARM), "--tune", "--seeds", seeds,
            "--train-config", str(config), "--json")
    )  # fmt: skip
    warm_minutes = round((time.perf_counter() - started) / 60, 1)
    print(f"[{name}] cold items", file=sys.stderr)
    started = time.perf_counter()
    cold = json.loads(
        cli(env, "eval", "--split", "cold-items", "--methods", ",".join(COLD), "--seeds", seeds,
            "--train-config", str(config), "--json")
    )  # fmt: skip
    cold_minutes = round((time.perf_counter() - started) / 60, 1)
    warm_rows, cold_rows = table(warm), table(cold)
    best = max(warm_rows["cf"]["ndcg@10"][0], warm_rows["ease"]["ndcg@10"][0])
    return {
        "data": name,
        "head_dim": dim,
        "warm": {"rows": warm_rows, "head": head_details(warm), "minutes": warm_minutes},
        "cold": {"rows": cold_rows, "head": head_details(cold), "minutes": cold_minutes},
        "trained_vs_best_warm": round(warm_rows["trained"]["ndcg@10"][0] / best, 4),
        "trained_vs_start_warm": round(warm_rows["trained"]["ndcg@10"][0] / warm_rows["cf"]["ndcg@10"][0], 4),
        "cold_vs_popular": {
            m: round(cold_rows[m]["ndcg@10"][0] / max(cold_rows["popular"]["ndcg@10"][0], 1e-9), 2)
            for m in COLD
            if m != "popular"
        },
    }


def markdown(results: dict) -> str:
    lines = []
    for data in results["datasets"]:
        lines += [f"### {data['data']}: warm users (random holdout, tuned), head dim {data['head_dim']}", ""]
        lines += ["| method | NDCG@10 | Recall@10 |", "| --- | ---: | ---: |"]
        for method, row in data["warm"]["rows"].items():
            (n, ns), (r, rs) = row["ndcg@10"], row["recall@10"]
            lines.append(f"| {method} | {n:.4f} ± {ns:.4f} | {r:.4f} ± {rs:.4f} |")
        lines += [
            "",
            f"trained / best of (tuned ALS, EASE): {data['trained_vs_best_warm']}; trained / its start (tuned ALS): "
            f"{data['trained_vs_start_warm']}",
        ]
        for h in data["warm"]["head"]:
            kept = "the start (epoch 0)" if h["best_epoch"] == 0 else f"epoch {h['best_epoch']}"
            lines.append(f"- seed {h['seed']}: init {h['init']}, kept {kept} of {h['epochs']}")
        lines += ["", f"### {data['data']}: cold items (held out with all their events)", ""]
        lines += ["| method | NDCG@10 | Recall@10 | vs popularity |", "| --- | ---: | ---: | ---: |"]
        for method, row in data["cold"]["rows"].items():
            (n, ns), (r, rs) = row["ndcg@10"], row["recall@10"]
            ratio = data["cold_vs_popular"].get(method, 1.0)
            lines.append(f"| {method} | {n:.4f} ± {ns:.4f} | {r:.4f} ± {rs:.4f} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lastfm", type=Path, help="folder with user_artists.dat and artists.dat")
    parser.add_argument("--ml100k", type=Path, help="folder with u.data and u.item")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lastfm-ease-items", type=int, default=6000, help="as in run.py")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # the head's size: the ALS factors tuning chose on seed 0 in the baselines table
    tuned = {d["data"]: d["tuning_seed0"]["cf"]["factors"] for d in json.loads(
        (Path(__file__).parent / "results.json").read_text())["datasets"]}  # fmt: skip
    started = time.perf_counter()
    datasets = []
    if args.ml100k:
        datasets.append(run_dataset("ml100k", args.ml100k, args.seeds, tuned["ml100k"], None))
    if args.lastfm:
        datasets.append(run_dataset("lastfm", args.lastfm, args.seeds, tuned["lastfm"], args.lastfm_ease_items))
    save(run_record(started, seeds=args.seeds, datasets=datasets), args.out, markdown)


if __name__ == "__main__":
    main()
