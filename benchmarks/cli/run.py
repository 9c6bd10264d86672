"""How long a query command takes in a terminal, cold and with the warm query process.

One run, this machine: a store of a few generated clips (``embedder.samples``) ingested with
``--models``, a few interactions, then each command timed as a user runs it (a new ``embedder``
process each time, wall clock):

- ``cold``: ``warm_queries=off``, every command imports torch and loads the encoders itself;
- ``first``: the first command with ``warm_queries=on`` (it starts the warm process and waits
  for it: the cold cost once);
- ``warm``: the same command again, answered by the warm process (median of ``--repeats``).

Usage:
    .venv/bin/python benchmarks/cli/run.py [--models bench] [--repeats 5] [--out benchmarks/cli/results-bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMBEDDER = str(ROOT / ".venv" / "bin" / "embedder")
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([EMBEDDER, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"embedder {' '.join(args)} failed: {done.stderr[-500:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bench")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="embedder-cli-bench-"))
    env = {
        **os.environ,
        "EMBEDDER_STORE": str(work / "store"),
        "EMBEDDER_MODELS": args.models,
        "EMBEDDER_DEVICE": "cpu",
    }
    subprocess.run([PYTHON, "-m", "embedder.samples", str(work / "media")], env=env, check=True, capture_output=True)
    subprocess.run(
        [EMBEDDER, "ingest", str(work / "media"), "-q"], env={**env, "EMBEDDER_WARM_QUERIES": "off"}, check=True
    )
    items = json.loads(
        subprocess.run(
            [EMBEDDER, "items", "list", "--json"], env=env, check=True, capture_output=True, text=True
        ).stdout
    )["items"]
    log = work / "log.tsv"
    log.write_text("".join(f"u{n % 3}\t{item['id']}\t1\n" for n, item in enumerate(items)))
    subprocess.run(
        [EMBEDDER, "interactions", "import", str(log), "--format", "tsv", "--columns", "user,item,weight"],
        env=env,
        check=True,
        capture_output=True,
    )
    commands = {
        "search": ["search", "a red circle", "--mode", "dense", "--json"],
        "recommend": ["recommend", "--user", "u1", "--strategy", "content", "--json"],
        "similar": ["similar", items[0]["id"], "--json"],
        "status": ["status", "--json"],
    }
    cold_env = {**env, "EMBEDDER_WARM_QUERIES": "off"}
    warm_env = {**env, "EMBEDDER_WARM_QUERIES": "on", "EMBEDDER_WARM_IDLE_S": "600"}
    rows = {}
    for name, command in commands.items():
        rows[name] = {"cold_s": round(timed(command, cold_env), 2)}
    rows["search"]["first_warm_s"] = round(timed(commands["search"], warm_env), 2)  # starts the warm process
    for name, command in commands.items():
        times = [timed(command, warm_env) for _ in range(args.repeats)]
        rows[name]["warm_p50_s"] = round(statistics.median(times), 3)
        rows[name]["warm_max_s"] = round(max(times), 3)
    help_s = statistics.median(timed(["--help"], cold_env) for _ in range(args.repeats))
    subprocess.run(
        [EMBEDDER, "ingest", str(work / "media"), "-q"], env=warm_env, check=True
    )  # a writer: it steps aside
    results = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "models": args.models,
        "items": len(items),
        "cli_start_s": round(help_s, 3),
        "commands": rows,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
