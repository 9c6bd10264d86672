"""Compare the CLI's --json output of two commits on the same media: a behaviour check for refactors.

Runs the same commands (ingest, status, search by text/audio/example, interactions import, train
(ALS, EASE, --auto) and prune, the head's train, recommend with every strategy, similar,
similar-users, items list, eval) with the tiny
preset against a fresh store, once with the code of REF (a git worktree) and once with the
working tree, and prints the differences, ignoring what changes from run to run (timings,
timestamps, model versions stamped with the time).

Stored vectors can differ in the last bits from run to run (the encoders batch whatever files
have been decoded when they are free): on three files, an exact tie that noise breaks can flip a
choice such as ``train_auto``'s hybrid side. Run it again before reading such a line as a change.

Usage: .venv/bin/python scripts/compare_json.py REF [MEDIA_DIR]   (MEDIA_DIR: ../shared/media)
Exit status: 0 when the outputs match, 1 when they differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = {
    *("elapsed_s", "files_per_s", "wait_for_decode_s", "encode_s", "write_s", "ingested_at", "model", "version"),
    *("fit_seconds", "cutoff", "run_dir", "seconds", "epoch_seconds", "timings", "chosen_at"),
}
STAMP = re.compile(r"\d{8}T\d{6}Z")  # a model version's time, inside a sentence
# Run the CLI of another checkout: drop the venv's editable finder, which would import this one.
RUNNER = """import os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, os.environ["EMBEDDER_REPO"])
from embedder.cli import main
sys.argv[0] = "embedder"
main()
"""


def commands(media: Path, events: Path) -> dict[str, list[str]]:
    video = str(next(p for p in sorted(media.iterdir()) if p.suffix == ".mp4"))
    out = {
        "ingest": ["ingest", str(media), "--json"],
        "status": ["status", "--json"],
        "search_text": ["search", "a rocket launch", "--json"],
        "search_audio": ["search", "engine noise", "--modality", "audio", "--json"],
        "search_like": ["search", "--like", video, "--json"],
        "import": ["interactions", "import", str(events), "--json"],
        "train": ["interactions", "train", "--json"],
        "train_ease": ["interactions", "train", "--model", "ease", "--json"],
        "train_auto": ["interactions", "train", "--auto", "--json"],
        "train_head": ["train", "--max-epochs", "2", "--no-write", "--json"],
        "prune": ["interactions", "prune", "--older-than", "365", "--json"],
    }
    for strategy in ("hybrid", "cf", "content"):
        out[f"recommend_{strategy}"] = ["recommend", "--user", "u1", "--strategy", strategy, "--json"]
    out.update(
        {
            "recommend_new_user": ["recommend", "--user", "nobody", "--json"],
            "similar": ["similar", video, "--json"],
            "similar_both": ["similar", video, "--by", "both", "--json"],
            "similar_users": ["similar-users", "u1", "--json"],
            "items": ["items", "list", "--json"],
            "eval": ["eval", "--split", "random-holdout", "--json"],
        }
    )
    return out


def run_all(repo: Path, media_src: Path, work: Path) -> dict[str, object]:
    media, store = work / "media", work / "store"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(media_src, media, ignore=shutil.ignore_patterns("*.md"))
    files = sorted(str(p) for p in media.iterdir())
    events = work / "events.csv"
    events.write_text(
        "user,item\n" + "".join(f"u{u},{files[(u + k) % len(files)]}\n" for u in range(1, 5) for k in range(2))
    )
    env = {
        **os.environ,
        "EMBEDDER_STORE": str(store),
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_DEVICE": "cpu",
        "EMBEDDER_CF_FACTORS": "4",
        "EMBEDDER_REPO": str(repo),
    }
    out = {}
    for name, args in commands(media, events).items():
        # In the work folder: 'train' writes its run directory under the current one.
        proc = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=env, cwd=work)
        try:
            out[name] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            out[name] = {"exit": proc.returncode, "stderr": proc.stderr.strip()[-300:]}
    return out


def differences(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key in VOLATILE:
                continue
            if key not in a or key not in b:
                found.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
            else:
                found += differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, str) and isinstance(b, str):
        a, b = STAMP.sub("T", a), STAMP.sub("T", b)
    return [] if a == b else [f"{where}: {json.dumps(a)[:120]} -> {json.dumps(b)[:120]}"]


def main() -> int:
    ref = sys.argv[1]
    media = Path(sys.argv[2] if len(sys.argv) > 2 else ROOT.parent / "shared" / "media").resolve()
    with tempfile.TemporaryDirectory(prefix="embedder-compare-") as tmp:
        before_repo = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before_repo), ref], check=True)
        try:
            # The same paths for both runs, so ids and paths in the outputs compare equal.
            before = run_all(before_repo, media, Path(tmp) / "work")
            after = run_all(ROOT, media, Path(tmp) / "work")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_repo)], check=False)
    found = [f"{name}{d}" for name in after for d in differences(before.get(name), after[name])]
    print("\n".join(found) if found else f"the --json output of {len(after)} commands is the same as at {ref}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
