"""Fake feedback through the front door: shilling profiles sent to ``POST /events`` of a running
``embedder serve``, and what genuine users are recommended right after and after the next training.

``run.py`` injects fake profiles into the training log and fits every model offline. This script
attacks the real-time path as an attacker would reach it: one HTTP request per fake account,
through the write limits (:mod:`embedder.limits`, default settings), while the server answers.

Per attack (the profiles of ``run.py``: ``average`` and ``pair``, the two that moved popularity
most there, and ``trio``, the pair attack adapted to ``popularity_min_items = 3``) and size (fake
accounts as a share of the genuine users), on a fresh store holding MovieLens 100K (ratings 4-5
positive) with ALS trained on it:

1. ``before``: the popular-band target's hit ratio at 10 among 200 genuine users who have not
   rated it, for the ``popular`` and ``cf`` strategies, through ``GET /users/{u}/recommendations``;
2. the fake accounts post their profiles (``accepted`` / ``refused`` by the limits, by reason);
3. ``live``: the same users, right after, with the default ``realtime_popularity =
   "known_users"`` (accounts the last training did not see move popularity from the next
   training on), and ``live_everyone`` on a copy of the store where every account counts at once
   (``realtime_popularity = "everyone"``, what embedder did before). Genuine users' ``cf`` vectors
   are unchanged until the item factors are refitted in both;
4. ``retrained``: ``interactions train`` with the quarantine off, then on (``quarantine_suspicious``:
   flagged users are left out of training and their later events change nothing at once), then
   with the quarantine and ``popularity_min_items = 3`` (accounts with fewer liked items count in
   no item's popularity).

Usage (about 20 minutes on the project's 2-core machine):
    .venv/bin/python benchmarks/robustness/live.py --ml100k ../shared/data/ml-100k \
        --out benchmarks/robustness/live.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from run import draw_targets, fake_profiles, load  # noqa: E402  (this folder's offline benchmark)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "serve"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from load import start_server, stop_server  # noqa: E402
from reporting import EMBEDDER, cli, run_record, save  # noqa: E402

STRATEGIES = ("popular", "cf")
MIN_ITEMS = 3  # popularity_min_items in the last column
IMPORT = ["--format", "tsv", "--columns", "user,item,rating,ts", "--rating-col", "rating", "--rating-threshold", "3"]


def hit_ratio(base: str, users: list[str], target: str, strategy: str) -> float:
    """Share of ``users`` whose served top 10 holds ``target`` (the item as the store names it)."""
    hits = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for user in users:
            answer = client.get(f"/users/{user}/recommendations", params={"strategy": strategy, "limit": 10})
            answer.raise_for_status()
            hits += any(r["item"] == target for r in answer.json()["items"])
    return round(hits / len(users), 4)


def post_profiles(base: str, events) -> dict:
    """One request per fake account, as fast as the server takes them; statuses counted."""
    by_user = defaultdict(list)
    for e in events:
        by_user[e.user].append({"user": e.user, "item": e.item, "weight": e.weight})
    statuses = defaultdict(int)
    reasons = defaultdict(int)
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=60) as client:
        for rows in by_user.values():
            answer = client.post("/events", json=rows)
            statuses[answer.status_code] += 1
            if answer.status_code != 200:
                reasons[answer.json().get("error", answer.text)[:80]] += 1
    return {
        "accounts": len(by_user),
        "events": len(events),
        "statuses": dict(statuses),
        "refusals": dict(reasons),
        "seconds": round(time.perf_counter() - started, 2),
    }


def measure(env: dict, users: list[str], target: str) -> dict:
    server, base = start_server(EMBEDDER, env)
    try:
        return {s: hit_ratio(base, users, target, s) for s in STRATEGIES}
    finally:
        stop_server(server)


def run_attack(folder: Path, attack: str, size: float, seed: int, sample: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="embedder-live-attack-"))
    env = {**os.environ, "EMBEDDER_STORE": str(work / "store"), "EMBEDDER_MODELS": "tiny", "EMBEDDER_DEVICE": "cpu"}
    env["EMBEDDER_WARM_QUERIES"] = "off"
    events = load("ml100k", folder)
    positives = [e for e in events if e.weight > 0]
    cli(env, "interactions", "import", str(folder / "u.data"), *IMPORT, "--json")
    cli(env, "interactions", "train", "--json")
    rng = random.Random(seed)
    target = draw_targets(positives, rng)["popular"]
    rated = {e.user for e in events if e.item == target}
    genuine = sorted({e.user for e in events})
    users = rng.sample([u for u in genuine if u not in rated], sample)
    count = max(1, round(size * len(genuine)))
    fakes = fake_profiles(attack, target, count, positives, rng)
    row = {"attack": attack, "size": size, "fake_accounts": count, "target": target, "target_raters": len(rated)}
    row["before"] = measure(env, users, target)
    # The same attack on a copy of the store where every account moves popularity at once.
    everyone = {**env, "EMBEDDER_STORE": str(work / "store-everyone"), "EMBEDDER_REALTIME_POPULARITY": "everyone"}
    shutil.copytree(work / "store", work / "store-everyone")
    for name, environment in (("live_everyone", everyone), ("live", env)):
        server, base = start_server(EMBEDDER, environment)
        try:
            row[f"posted_{name}"] = post_profiles(base, fakes)
            row[name] = {s: hit_ratio(base, users, target, s) for s in STRATEGIES}
        finally:
            stop_server(server)
    cli(env, "interactions", "train", "--json")
    row["retrained"] = measure(env, users, target)
    quarantine = {**env, "EMBEDDER_QUARANTINE_SUSPICIOUS": "true"}
    trained = json.loads(cli(quarantine, "interactions", "train", "--json"))
    row["quarantined_users"] = trained.get("quarantined_users")
    flagged = json.loads(cli(env, "interactions", "suspicious", "--json"))["flagged"]
    fake_ids = {e.user for e in fakes}
    found = {u["user"] for u in flagged}
    row["detection"] = {
        "recall": round(len(found & fake_ids) / len(fake_ids), 3),
        "precision": round(len(found & fake_ids) / max(1, len(found)), 3),
    }
    row["retrained_quarantine"] = measure(quarantine, users, target)
    # Both defences: the quarantine, and popularity counted only from accounts with 3 liked items.
    defended = {**quarantine, "EMBEDDER_POPULARITY_MIN_ITEMS": str(MIN_ITEMS)}
    cli(defended, "interactions", "train", "--json")
    row["retrained_defended"] = measure(defended, users, target)
    print(json.dumps(row), file=sys.stderr)
    return row


def markdown(results: dict) -> str:
    lines = [
        "| attack | fake accounts | accepted | strategy | before | right after, everyone counts | "
        f"right after (default: known users) | retrained | retrained, quarantine on | "
        f"retrained, quarantine on, popularity_min_items {MIN_ITEMS} |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["rows"]:
        accepted = r["posted_live"]["statuses"].get("200", r["posted_live"]["statuses"].get(200, 0))
        for s in STRATEGIES:
            lines.append(
                f"| {r['attack']} | {r['fake_accounts']} ({r['size']:.0%}) | {accepted} | {s} | {r['before'][s]:.3f} | "
                f"{r['live_everyone'][s]:.3f} | {r['live'][s]:.3f} | {r['retrained'][s]:.3f} | "
                f"{r['retrained_quarantine'][s]:.3f} | {r['retrained_defended'][s]:.3f} |"
            )
    lines.append("")
    for r in results["rows"]:
        d = r["detection"]
        lines.append(
            f"- {r['attack']} at {r['size']:.0%}: target {r['target']} ({r['target_raters']} raters); "
            f"posted in {r['posted_live']['seconds']} s, statuses {r['posted_live']['statuses']}; "
            f"detection precision {d['precision']}, recall {d['recall']}; quarantined {r['quarantined_users']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", type=Path, required=True, help="folder with u.data")
    parser.add_argument("--attacks", default="average,pair,trio")
    parser.add_argument("--sizes", default="0.01,0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=200, help="genuine users whose lists are read")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [
        run_attack(args.ml100k, attack, float(size), args.seed, args.users)
        for attack in args.attacks.split(",")
        for size in args.sizes.split(",")
    ]
    save(run_record(started, rows=rows), args.out, markdown)


if __name__ == "__main__":
    main()
