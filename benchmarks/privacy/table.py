"""Print the Markdown table of benchmarks/privacy from the eval reports that run.sh writes.

Usage: python benchmarks/privacy/table.py benchmarks/privacy
"""

import json
import sys
from pathlib import Path

import numpy as np


def row(name: str, report: dict, method: str) -> str:
    spread = report["spread"][method]
    metrics = report["methods"][method]
    privacy = [s["details"].get(method, {}).get("privacy") for s in report["per_seed"]]
    spent = f"{np.mean([p['epsilon'] for p in privacy]):.2f}" if all(privacy) else "-"
    delta = f"{privacy[0]['delta']:.0e}" if all(privacy) else "-"
    sigma = f"{np.mean([p['noise_multiplier'] for p in privacy]):.2f}" if all(privacy) else "-"
    return (
        f"| {name} | {spent} | {delta} | {sigma} | {metrics['ndcg@10']:.4f} ± {spread['ndcg@10']:.4f} "
        f"| {metrics['recall@10']:.4f} ± {spread['recall@10']:.4f} "
        f"| {metrics['recall@50']:.4f} ± {spread['recall@50']:.4f} |"
    )


def main(root: Path) -> None:
    no_dp = json.loads((root / "no-dp" / "results.json").read_text())
    print("| method | epsilon spent | delta | noise multiplier | NDCG@10 | recall@10 | recall@50 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    popular = "popular" if "popular" in no_dp["methods"] else "popularity"  # the name before the strategy registry
    print(row("popularity", no_dp, popular))
    print(row("head, no DP (ALS start, early stopping, refit)", no_dp, "trained"))
    for eps in (8, 4, 1):
        report = json.loads((root / f"dp-eps{eps}" / "results.json").read_text())
        print(row(f"head, DP-SGD, target epsilon {eps}", report, "trained"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
