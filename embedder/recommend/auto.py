"""Choose what ``recommend`` serves by default: every collaborative model, tuned on validation.

``interactions train --auto`` carves a validation split from the whole log, tunes ALS and each
item-to-item model on it (:mod:`embedder.recommend.tune`), picks the one with the best
validation NDCG@10, fits it on the whole log with those settings, stores it, and records the
choice with every candidate's score in the interaction log. ``recommend`` (strategy ``auto``,
the default) then serves that strategy, and says so. No single model wins everywhere (EASE on
MovieLens, tuned ALS on Last.fm), which is why the log decides.
"""

from __future__ import annotations

import time

from embedder.errors import EmbedderError
from embedder.recommend.cf import CFParams
from embedder.recommend.interactions import Interaction
from embedder.recommend.itemitem import KINDS, ItemItemParams
from embedder.recommend.tune import tune_cf, tune_item_item

AUTO = "auto"  # the strategy name that means "what was chosen", or hybrid before any choice
FALLBACK = "hybrid"
CANDIDATES = ("cf", *KINDS)
METRIC = "ndcg@10"


def choose_model(
    events: list[Interaction],
    *,
    cf: CFParams,
    item_item: dict[str, ItemItemParams],
    candidates: tuple[str, ...] = CANDIDATES,
    split: str = "random-holdout",
    seed: int = 0,
    progress=None,
) -> dict:
    """Tune every candidate on one validation split of ``events``; the best first.

    Returns:
        ``{"chosen": name, "params": CFParams | ItemItemParams, "candidates": [{"strategy",
        "settings", "validation_ndcg@10", "at_edge"}...] best first, "validation": {...}}``.
    """
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        raise EmbedderError(f"--candidates may name {', '.join(CANDIDATES)}, not {', '.join(unknown)}")
    rows, params, validation = [], {}, None
    for name in candidates:
        if name == "cf":
            tuned = tune_cf(events, base=cf, split=split, seed=seed, progress=progress)
            score = tuned["trials"][0][f"val_{METRIC}"]
            params[name] = tuned["chosen"]
            settings, at_edge = tuned["chosen"].to_dict(), []
        else:
            tuned = tune_item_item(events, base=item_item[name], split=split, seed=seed, progress=progress)
            score = tuned["validation"][f"best_{METRIC}"]
            params[name] = tuned["chosen"]
            settings, at_edge = tuned["chosen"].relevant(), tuned["at_edge"]
        validation = validation or {k: v for k, v in tuned["validation"].items() if not k.startswith("best_")}
        rows.append({"strategy": name, "settings": settings, f"validation_{METRIC}": score, "at_edge": at_edge})
    rows.sort(key=lambda r: -r[f"validation_{METRIC}"])
    chosen = rows[0]["strategy"]
    return {"chosen": chosen, "params": params[chosen], "candidates": rows, "validation": validation}


def served_record(choice: dict, fitted_version: str) -> dict:
    """What the interaction log keeps about the choice (JSON), for ``status`` and ``--explain``."""
    best, *others = choice["candidates"]
    return {
        "strategy": choice["chosen"],
        "model": fitted_version,
        "settings": best["settings"],
        f"validation_{METRIC}": best[f"validation_{METRIC}"],
        "runner_up": others[0] if others else None,
        "candidates": choice["candidates"],
        "validation": choice["validation"],
        "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def why_served(record: dict | None) -> str:
    """One line: which strategy answers by default, and why."""
    if record is None:
        return f"{FALLBACK} (the default until 'embedder interactions train --auto' chooses by validation)"
    line = (
        f"{record['strategy']} ({record['model']}): best validation {METRIC} "
        f"{record[f'validation_{METRIC}']:.4f} of {len(record['candidates'])} tuned models"
    )
    runner = record.get("runner_up")
    if runner:
        line += f"; next {runner['strategy']} {runner[f'validation_{METRIC}']:.4f}"
    return line + f"; chosen {record['chosen_at']}"


def resolve_strategy(strategy: str, record: dict | None) -> str:
    """``auto`` as the recorded choice (or :data:`FALLBACK`); any other name as given."""
    if strategy != AUTO:
        return strategy
    return record["strategy"] if record else FALLBACK


def fit_and_store(name: str, params, events: list[Interaction], media, users, seed: int = 0) -> dict:
    """Fit ``name`` (``cf`` or an item-to-item kind) on ``events`` with ``params`` and store it."""
    if name == "cf":
        from embedder.recommend.cf import fit_cf, write_cf

        summary = write_cf(fit_cf(events, params, seed=seed), media, users)
        return {**summary, "settings": params.to_dict()}
    from embedder.recommend.itemitem import fit_item_item
    from embedder.recommend.sparse import write_item_item

    return write_item_item(fit_item_item(events, params), media)


def train_auto(events: list[Interaction], media, users, *, seed: int = 0, **choose) -> dict:
    """Choose (:func:`choose_model`), fit the winner on the whole log, store it, and return the
    record to keep (:func:`served_record`) with the stored models' summaries.

    ALS is stored too when another model wins, tuned as well: the hybrid strategy, the fold-in of
    new users and the trained head's start all read its ``cf`` vectors.
    """
    choice = choose_model(events, seed=seed, **choose)
    stored = {choice["chosen"]: fit_and_store(choice["chosen"], choice["params"], events, media, users, seed)}
    als = next((c for c in choice["candidates"] if c["strategy"] == "cf"), None)
    if choice["chosen"] != "cf" and als is not None:
        stored["cf"] = fit_and_store("cf", CFParams(**als["settings"]), events, media, users, seed)
    record = served_record(choice, stored[choice["chosen"]]["model"])
    return {"record": record, "stored": stored}
