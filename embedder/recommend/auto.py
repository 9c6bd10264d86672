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
from embedder.recommend.fitting import fit_and_store
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
    fused = record.get("hybrid") or {}
    if record["strategy"] == "hybrid" and fused:
        return (
            f"hybrid of {fused['base']} ({record['model']}) and {fused['content']} ({fused['fusion']}, content weight "
            f"{fused['content_weight']}): validation {METRIC} {fused[f'validation_{METRIC}']:.4f} against "
            f"{fused[f'base_alone_validation_{METRIC}']:.4f} for {fused['base']} alone on the same users, "
            f"the best of {len(record['candidates'])} tuned models; chosen {record['chosen_at']}"
        )
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


def train_auto(
    events: list[Interaction],
    media,
    users,
    *,
    seed: int = 0,
    hybrid: bool = True,
    popularity_min_items: int = 1,
    **choose,
) -> dict:
    """Choose (:func:`choose_model`), fit the winner on the whole log, store it, and return the
    record to keep (:func:`served_record`) with the stored models' summaries.

    ALS is stored too when another model wins, tuned as well: the hybrid strategy, the fold-in of
    new users and the trained head's start all read its ``cf`` vectors. Stored popularity counts
    the users with at least ``popularity_min_items`` liked items.

    With ``hybrid`` and items that have content (media, or catalogue rows), the hybrid of the
    winner and content is tuned on the same kind of validation split
    (:func:`~embedder.recommend.hybrid_tuning.tune_hybrid_on_validation`); its settings are
    recorded (``hybrid``, what the hybrid strategy then serves), and where the fusion beats the
    winner alone on the same validation users, hybrid becomes what ``auto`` serves.
    """
    choice = choose_model(events, seed=seed, **choose)
    counted = {"seed": seed, "popularity_min_items": popularity_min_items}
    stored = {choice["chosen"]: fit_and_store(choice["chosen"], choice["params"], events, media, users, **counted)}
    als = next((c for c in choice["candidates"] if c["strategy"] == "cf"), None)
    if choice["chosen"] != "cf" and als is not None:
        stored["cf"] = fit_and_store("cf", CFParams(**als["settings"]), events, media, users, **counted)
    record = served_record(choice, stored[choice["chosen"]]["model"])
    record["hybrid"] = (
        _tuned_hybrid(choice, events, media, seed, choose.get("split", "random-holdout")) if hybrid else None
    )
    if record["hybrid"] and record["hybrid"]["adds"]:
        record["strategy"] = "hybrid"
    return {"record": record, "stored": stored}


def _tuned_hybrid(choice: dict, events: list[Interaction], media, seed: int, split: str) -> dict | None:
    """The hybrid of the chosen model and the items' content, tuned on validation; ``None`` when
    no item has content."""
    from embedder.recommend.hybrid_tuning import tune_hybrid_on_validation
    from embedder.recommend.scratch import item_vectors

    vectors = item_vectors(media, sorted({e.item for e in events}))
    if not vectors:
        return None
    tuned = tune_hybrid_on_validation(events, vectors, choice["chosen"], choice["params"], split=split, seed=seed)
    return {
        **tuned["chosen"].to_dict(),
        f"validation_{METRIC}": tuned["trials"][0][f"val_{METRIC}"],
        f"base_alone_validation_{METRIC}": tuned["base_alone"],
        "adds": tuned["adds"],
        "validation_users": tuned["validation_users"],
    }
