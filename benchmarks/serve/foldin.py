"""Time of a real-time update (Library.record_events: log, popularity, cf fold-in) on Last.fm.

Imports Last.fm 2k into a fresh store, fits ALS (interactions train, 64 factors), then times:
the first update (it loads the 17.6k stored item factors once), and the next 20 updates of one
or two events each, for existing and new users.

Usage: .venv/bin/python benchmarks/serve/foldin.py [path/to/lastfm-2k]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embedder import Library

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "lastfm-2k")
    with tempfile.TemporaryDirectory(prefix="embedder-foldin-") as tmp:
        store = Path(tmp) / "store"
        cli = [str(ROOT / ".venv" / "bin" / "embedder"), "--store", str(store)]
        subprocess.run(
            [
                *cli,
                "interactions",
                "import",
                str(data / "user_artists.dat"),
                "--format",
                "tsv",
                "--columns",
                "user,item,weight",
                "--weight-col",
                "weight",
                "--json",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run([*cli, "interactions", "train", "--json"], check=True, capture_output=True)
        with Library.open(store=str(store)) as lib:
            started = time.perf_counter()
            first = lib.record_events([("new-0", "289", 3.0)])
            first_s = time.perf_counter() - started
            times = []
            for n in range(20):
                user = f"new-{n + 1}" if n % 2 else str(2 + n)  # alternate new and existing users
                started = time.perf_counter()
                report = lib.record_events([(user, str(72 + n), 2.0), (user, str(300 + n), 1.0)])
                times.append(time.perf_counter() - started)
                assert report["cf_users_updated"] == 1, report
            print(
                json.dumps(
                    {
                        "machine": {"cpus": os.cpu_count()},
                        "items_with_factors": len(lib.item_factors().ids),
                        "first_update_s": round(first_s, 3),
                        "first": first,
                        "next_20_updates_ms": {
                            "median": round(1000 * statistics.median(times), 1),
                            "max": round(1000 * max(times), 1),
                        },
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
