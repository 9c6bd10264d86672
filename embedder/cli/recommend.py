"""Interactions, collaborative filtering, recommendations, training and evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from embedder.cli.common import TerminalProgress, app, err, guarded, out, plain, print_json, short_path
from embedder.errors import EmbedderError
from embedder.recommend.strategies import STRATEGIES, strategies_help

interactions_app = typer.Typer(help="Interaction logs and the collaborative-filtering model.", no_args_is_help=True)
app.add_typer(interactions_app, name="interactions")


@interactions_app.command("import")
@guarded
def interactions_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet event log."),
    fmt: str | None = typer.Option(None, "--format", help="csv, tsv, jsonl or parquet (default: from the extension)."),
    columns: str | None = typer.Option(
        None, "--columns", help="Names for the fields of a file without a header line, e.g. user,item,weight."
    ),
    user_col: str = typer.Option("user", "--user-col", help="Column with the user id."),
    item_col: str = typer.Option(
        "item", "--item-col", help="Column with the item: an ingested path or id, or any item key."
    ),
    weight_col: str | None = typer.Option(
        None, "--weight-col", help="Column with a weight or count (negative = negative feedback)."
    ),
    rating_col: str | None = typer.Option(
        None, "--rating-col", help="Column with a rating; above --rating-threshold is positive."
    ),
    rating_threshold: float = typer.Option(
        3.0,
        "--rating-threshold",
        help="Ratings above it are positive, below negative, equal neutral (seen, no signal).",
    ),
    event_col: str | None = typer.Option(
        None, "--event-col", help="Column with an event type (play, like, skip, ...)."
    ),
    event_weight: list[str] | None = typer.Option(
        None, "--event-weight", help="Override an event's weight, e.g. like=5; repeatable."
    ),
    time_col: str | None = typer.Option(None, "--time-col", help="Column with epoch seconds/ms or ISO 8601 time."),
    item_map: Path | None = typer.Option(
        None, "--item-map", help="CSV of catalogue id,item: maps the log's item ids to ingested paths or ids."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Append an event log to the interaction store: bad rows are reported with line numbers, duplicates dropped.

    Items join the store whatever form their path takes (relative, ./, absolute, through a link)
    or by point id; the report counts the items that matched and warns when many did not.
    """
    from embedder.recommend.interactions import DEFAULT_EVENT_WEIGHTS, ColumnMap

    if sum(c is not None for c in (weight_col, rating_col, event_col)) > 1:
        raise EmbedderError("give at most one of --weight-col, --rating-col and --event-col")
    weights = dict(DEFAULT_EVENT_WEIGHTS)
    for pair in event_weight or []:
        name, sep, value = pair.partition("=")
        try:
            weights[name.strip().lower()] = float(value)
        except ValueError:
            raise EmbedderError(f"--event-weight expects name=number, got '{pair}'") from None
    cols = ColumnMap(
        user=user_col,
        item=item_col,
        weight=weight_col,
        rating=rating_col,
        event=event_col,
        timestamp=time_col,
        rating_threshold=rating_threshold,
        event_weights=weights,
    )
    names = [c.strip() for c in columns.split(",")] if columns else None
    with ctx.obj.library() as library:
        data = library.import_events(
            file, cols, fmt=fmt, names=names, item_map=item_map, progress=TerminalProgress(as_json)
        )
    if as_json:
        print_json(data)
        return
    stats = data["log"]
    neutral = f" ({data['neutral']} neutral: rating equal to the threshold)" if data["neutral"] else ""
    neutral += f", {data['expired']} older than retention_days not imported" if data["expired"] else ""
    out.print(
        f"{data['rows']} rows: {data['added']} added{neutral}, {data['duplicates']} duplicates, {data['bad']} bad "
        f"-> log has {stats['events']} events, {stats['users']} users, {stats['items']} items ({stats['path']})",
        highlight=False,
    )
    for bad in data["bad_rows"]:
        out.print(f"  line {bad['line']}: {bad['reason']}", highlight=False)
    if data["bad"] > len(data["bad_rows"]):
        out.print(f"  ... and {data['bad'] - len(data['bad_rows'])} more bad rows", highlight=False)
    for warning in data["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)


@interactions_app.command("prune")
@guarded
def interactions_prune(
    ctx: typer.Context,
    older_than: float | None = typer.Option(
        None, "--older-than", min=0, help="Days; default: the retention_days setting."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete events older than the retention period, for good (a step for scheduled jobs).

    Events without a timestamp are kept and counted. The collaborative model keeps what it learned
    until the next 'interactions train'.
    """
    with ctx.obj.library() as library:
        result = library.prune_events(older_than)
    days = result["older_than_days"]
    if as_json:
        print_json(result)
        return
    out.print(
        f"dropped {result['dropped']} events older than {days:g} days (before {result['cutoff']}); "
        f"{result['undated_kept']} events without a time kept",
        highlight=False,
    )


@interactions_app.command("stats")
@guarded
def interactions_stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Events, users and items in the interaction store."""
    with ctx.obj.library(reading=True) as library:
        stats = library.interaction_stats()
    if as_json:
        print_json(stats)
    else:
        out.print(
            f"{stats['events']} events ({stats['negative_events']} negative), {stats['users']} users, "
            f"{stats['items']} items in {stats['path']}",
            highlight=False,
        )


@interactions_app.command("suspicious")
@guarded
def interactions_suspicious(
    ctx: typer.Context,
    threshold: float | None = typer.Option(
        None, "--threshold", help="Outlier score above which a user is flagged (setting suspicious_threshold, 20)."
    ),
    limit: int = typer.Option(
        50, "--limit", "-n", min=1, help="How many flagged users to print, most suspicious first."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (every flagged user)."),
) -> None:
    """List users whose profiles look fake: unusually short or long, unusually obscure or mainstream,
    or near copies of other profiles (the signs of shilling attacks), with the reasons.

    Set quarantine_suspicious = true to leave them out of 'interactions train'.
    """
    with ctx.obj.library(reading=True) as library:
        found = library.suspicious_users(threshold)
    users, flagged = found["users"], found["flagged"]
    if as_json:
        print_json({"users": users, "flagged": [s.to_dict() for s in flagged]})
        return
    out.print(f"{len(flagged)} of {users} users flagged", highlight=False)
    if not flagged:
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("user", "score", "items", "why"):
        table.add_column(col, justify="right" if col in ("score", "items") else "left")
    for s in flagged[:limit]:
        table.add_row(plain(s.user), f"{s.score:.1f}", str(s.features["items"]), plain("; ".join(s.reasons)))
    out.print(table)
    if len(flagged) > limit:
        out.print(f"... and {len(flagged) - limit} more (--limit, or --json for all)", highlight=False)


def _cf_options():
    """The collaborative model's flags, shared by 'interactions train' and 'eval' (None = the setting)."""
    return dict(
        weighting=typer.Option(
            None, "--weighting", help="Confidence from weights: log1p, bm25, raw or binary (setting cf_weighting)."
        ),
        alpha=typer.Option(
            None,
            "--alpha",
            help="Confidence scale (setting cf_alpha); with --model rp3beta, its exponent (i2i_rp3_alpha).",
        ),
        regularization=typer.Option(
            None, "--regularization", help="ALS L2 regularisation (setting cf_regularization)."
        ),
        factors=typer.Option(None, "--factors", help="Latent factors = size of the cf vectors (setting cf_factors)."),
        iterations=typer.Option(None, "--iterations", help="ALS iterations (setting cf_iterations)."),
    )


_CF = _cf_options()


def _i2i_options():
    """The item-to-item models' flags of 'interactions train' (None = the setting)."""
    return dict(
        neighbours=typer.Option(
            None, "--neighbours", help="Item-to-item: weights kept per item (setting i2i_neighbours)."
        ),
        l2=typer.Option(None, "--l2", help="EASE's lambda (setting i2i_ease_l2)."),
        max_items=typer.Option(
            None,
            "--max-items",
            help="EASE's largest catalogue; the most popular items beyond it (setting i2i_max_items, 0: from memory).",
        ),
    )


_I2I = _i2i_options()


@interactions_app.command("train")
@guarded
def interactions_train(
    ctx: typer.Context,
    model: str = typer.Option(
        "als",
        "--model",
        help="als or bpr (implicit: the cf vectors), or an item-to-item model: ease, rp3beta or itemknn "
        "(sparse vectors that 'recommend --strategy' of the same name queries).",
    ),
    weighting: str | None = _CF["weighting"],
    alpha: float | None = _CF["alpha"],
    regularization: float | None = _CF["regularization"],
    factors: int | None = _CF["factors"],
    iterations: int | None = _CF["iterations"],
    neighbours: int | None = _I2I["neighbours"],
    l2: float | None = _I2I["l2"],
    max_items: int | None = _I2I["max_items"],
    auto: bool = typer.Option(
        False,
        "--auto",
        help="Tune ALS, EASE, RP3beta and item-kNN on a validation split of the log, store the best (and ALS) and "
        "make it what 'recommend' serves by default (strategy auto); status says which and why.",
    ),
    candidates: str = typer.Option(
        "cf,ease,rp3beta,itemknn", "--candidates", help="With --auto: the models to compare (comma-separated)."
    ),
    split: str = typer.Option(
        "random-holdout",
        "--split",
        help="With --auto: how validation is carved (random-holdout, leave-last-out, time).",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fit a recommendation model on the log and store it in the collection.

    --auto: choose among the models by validation NDCG@10 (every one tuned), store the winner and
    serve it by default. Several minutes on a large log; a scheduled job runs it weekly.

    als / bpr: item 'cf' vectors and the users collection. ease / rp3beta / itemknn: each item's
    top item-to-item weights as a sparse vector; a user's query is built from their events at
    request time, so new events count at once. Settings come from cf_* / i2i_* in the config file
    (which 'embedder eval --tune --save-config FILE' writes) unless a flag overrides them.
    """
    with ctx.obj.library(cf_factors=factors) as library:
        summary = library.train_recommender(
            model,
            auto=auto,
            candidates=[c.strip() for c in candidates.split(",") if c.strip()],
            split=split,
            seed=seed,
            weighting=weighting,
            alpha=alpha,
            regularization=regularization,
            iterations=iterations,
            neighbours=neighbours,
            l2=l2,
            max_items=max_items,
            progress=TerminalProgress(quiet=as_json),
        )
    if as_json:
        print_json(summary)
    elif auto:
        _print_chosen(summary["record"])
    else:
        _print_trained(summary)


def _print_chosen(record: dict) -> None:
    from embedder.recommend.auto import why_served

    table = Table(show_header=True, header_style="bold", title="validation NDCG@10, every model tuned")
    for col in ("strategy", "ndcg@10", "settings"):
        table.add_column(col, justify="right" if col == "ndcg@10" else "left")
    for row in record["candidates"]:
        chosen = row["strategy"] == record["strategy"]
        settings_text = ", ".join(f"{k}={v}" for k, v in row["settings"].items() if k != "kind")
        if row["at_edge"]:
            settings_text += f" (still at the grid's edge: {', '.join(row['at_edge'])})"
        table.add_row(
            plain(row["strategy"] + (" (chosen)" if chosen else "")),
            f"{row['validation_ndcg@10']:.4f}",
            plain(settings_text),
        )
    out.print(table)
    out.print(f"recommend serves: {why_served(record)}", highlight=False, markup=False)


def _print_trained(summary: dict) -> None:
    who = f"{summary['users']} users, " if "users" in summary else ""
    out.print(
        f"trained {summary['model']}: {who}{summary['items']} items "
        f"({summary['items_with_media']} with media, {summary['items_without_media']} without)",
        highlight=False,
    )
    if summary.get("weights") is not None:
        out.print(
            f"stored {summary['weights']} item-to-item weights in {summary['fit_seconds']:.1f} s of fitting",
            highlight=False,
        )
    if summary.get("left_out_items"):
        out.print(
            f"[yellow]{summary['left_out_items']} least popular items are beyond EASE's catalogue limit "
            "(i2i_max_items) and cannot be recommended by it; rp3beta and itemknn have no such limit[/yellow]",
            highlight=False,
        )
    out.print("settings: " + ", ".join(f"{k}={v}" for k, v in summary["settings"].items()), highlight=False)


@app.command()
@guarded
def recommend(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="User id as in the interaction log."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many items."),
    strategy: str = typer.Option(
        "auto",
        "--strategy",
        help="auto: the strategy 'interactions train --auto' chose by validation (hybrid before it has run); "
        + strategies_help(),
    ),
    exclude_seen: bool = typer.Option(
        True, "--exclude-seen/--include-seen", help="Leave out items the user already had."
    ),
    query: str | None = typer.Option(
        None, "--query", "-q", help="For a user with no history: narrow popular items by this text."
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Say why each item is there: the liked items nearest to it in the branch that found it, or how "
        "many users it is popular with (always in --json).",
    ),
    collapse_duplicates: bool = typer.Option(
        False,
        "--collapse-duplicates",
        help="Show each cluster of near-duplicates ('embedder duplicates --mark') once, and no copy of an item "
        "the user has already had.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON, explanations included."),
) -> None:
    """Recommend items for a user; each hit says which branch (cf, content, popular) found it."""
    with ctx.obj.library(remote=True, reading=True) as library:
        result = library.recommend(
            user,
            strategy=strategy,
            limit=limit,
            exclude_seen=exclude_seen,
            query=query,
            collapse_duplicates=collapse_duplicates,
        )
    if as_json:
        print_json(result.to_dict())
        return
    if explain and result.chosen_by:
        out.print(f"strategy {result.strategy}: {result.chosen_by}", highlight=False, markup=False)
    if result.note:
        out.print(f"[yellow]{result.note}[/yellow]", highlight=False)
    _print_recs(result.items, explain)


def _print_recs(items, explain: bool = False) -> None:
    if not items:
        out.print("no items")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "score", "found by"):
        table.add_column(col, justify="right" if col != "found by" else "left")
    table.add_column("item", overflow="fold")
    if explain:
        table.add_column("why", overflow="fold")
    for rank, r in enumerate(items, 1):
        why = [_why(r)] if explain else []
        table.add_row(
            str(rank), f"{r.score:.4f}", "+".join(r.branches), plain(short_path(r.path) or r.item or r.id), *why
        )
    out.print(table)


def _why(rec) -> str:
    """One recommendation's explanation in words, with the similarities."""
    if rec.contributions:
        return "= " + " + ".join(f"{m} {v:.3f}" for m, v in rec.contributions.items())
    parts = []
    for b in rec.because:
        if "popular_with" in b:
            parts.append(f"popular with {b['popular_with']} users")
        elif b.get("because_you_liked"):
            # File names, not paths: the item column has the path, and this column should stay short.
            # A cosine in the branch's space, or an item-to-item model's exact part of the score (+).
            liked = ", ".join(
                f"{os.path.basename(x['path'] or '') or x['item'] or x['id']} "
                + (f"({x['similarity']:.2f})" if "similarity" in x else f"(+{x['contribution']:.3f})")
                for x in b["because_you_liked"]
            )
            parts.append(f"{b['branch']}: you liked {liked}")
    return rec.reason if not parts and rec.reason else "; ".join(parts) or "-"


@app.command()
@guarded
def similar(
    ctx: typer.Context,
    item: str = typer.Argument(..., help="An ingested path or id, or an item key from the interaction log."),
    by: str = typer.Option("content", "--by", help="content, cf or both."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many items."),
    explain: bool = typer.Option(
        False, "--explain", help="With --by content: what each modality added to the score (always in --json)."
    ),
    collapse_duplicates: bool = typer.Option(
        False,
        "--collapse-duplicates",
        help="Show each cluster of near-duplicates ('embedder duplicates --mark') once, and leave out the "
        "item's own copies (otherwise they are the most similar of all).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Item-to-item similarity by content vectors, CF factors, or both fused."""
    with ctx.obj.library(remote=True, reading=True) as library:
        items = library.similar(item, by=by, limit=limit, collapse_duplicates=collapse_duplicates)
    if as_json:
        print_json({"item": item, "by": by, "items": [r.to_dict() for r in items]})
    else:
        _print_recs(items, explain)


@app.command("similar-users")
@guarded
def similar_users_cmd(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="User id as in the interaction log."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many users."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Users with the closest taste (cosine of CF user vectors)."""
    with ctx.obj.library(remote=True, reading=True) as library:
        found = library.similar_users(user, limit=limit)
    if as_json:
        print_json({"user": user, "users": found})
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "cosine"):
        table.add_column(col, justify="right")
    table.add_column("user", overflow="fold")
    for rank, u in enumerate(found, 1):
        table.add_row(str(rank), f"{u['score']:.4f}", plain(u["user"]))
    out.print(table)


@app.command("train")
@guarded
def train_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="Training config (TOML), e.g. pipelines/configs/train.toml."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue a run directory from its last checkpoint."),
    adversarial: bool | None = typer.Option(None, "--adversarial/--no-adversarial", help="APR adversarial training."),
    max_epochs: int | None = typer.Option(None, "--max-epochs", help="Override optim.max_epochs."),
    seed: int | None = typer.Option(None, "--seed", help="Override run.seed."),
    dp_epsilon: float | None = typer.Option(
        None,
        "--dp-epsilon",
        min=0.0,
        help="Train with differential privacy (DP-SGD, one user = one unit) "
        "spending this epsilon over the whole run; overrides privacy.epsilon.",
    ),
    dp_delta: float | None = typer.Option(None, "--dp-delta", help="The DP delta (default min(1e-5, 0.1 / users))."),
    write: bool = typer.Option(
        True, "--write/--no-write", help="Store rec vectors for 'recommend --strategy trained'."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fine-tune the two-tower head (BCE, frozen encoders, early stopping) on the interaction log.

    With --dp-epsilon the head is trained with DP-SGD (Opacus) instead: a fixed number of epochs,
    each user's gradient clipped and noised, and the epsilon and delta spent are reported.
    """
    from embedder.train.config import load_train_config

    cfg = load_train_config(
        config,
        **{
            "adversarial.enabled": adversarial,
            "optim.max_epochs": max_epochs,
            "run.seed": seed,
            "privacy.epsilon": dp_epsilon,
            "privacy.delta": dp_delta,
        },
    )
    with ctx.obj.library() as library:
        summary = library.train_head(
            cfg, resume=resume, write=write, progress=TerminalProgress(as_json, per_item=False)
        )
    if as_json:
        print_json(summary)
        return
    m = summary["metrics"]
    k = cfg.optim.eval_k
    out.print(
        f"run {summary['run_dir']} ({summary['device']}): best epoch {m['best_epoch']} of {m['epochs']}, "
        f"val NDCG@{k} {m[f'best_val_ndcg@{k}']:.4f}" + (", stopped early" if m["stopped_early"] else ""),
        highlight=False,
    )
    if m.get("privacy"):
        p = m["privacy"]
        out.print(
            f"differential privacy (per user): epsilon {p['epsilon']} spent of {p['target_epsilon']}, "
            f"delta {p['delta']:.2g}, noise multiplier {p['noise_multiplier']}, {p['steps']} steps; "
            "the model is the last epoch (no early stopping under DP)",
            highlight=False,
        )
    r = m["robustness"]
    out.print(
        f"robustness at epsilon {r['epsilon']}: NDCG@{k} {r['ndcg_clean']:.4f} clean, "
        f"{r['ndcg_random_noise']:.4f} with random noise, {r['ndcg_adversarial']:.4f} under adversarial "
        "perturbation of the item vectors",
        highlight=False,
    )
    if summary["written"]:
        w = summary["written"]
        out.print(
            f"stored rec vectors for {w['users']} users and {w['items']} items ({summary['version']})", highlight=False
        )


@app.command("eval")
@guarded
def eval_cmd(
    ctx: typer.Context,
    split: str = typer.Option("leave-last-out", "--split", help="leave-last-out, random-holdout, time or cold-items."),
    methods: str = typer.Option(
        "popular,cf,content,hybrid",
        "--methods",
        help="Comma-separated strategies (as 'recommend --strategy'): "
        + ", ".join(STRATEGIES)
        + " ('als' and 'popularity' are accepted for cf and popular).",
    ),
    train_config: Path | None = typer.Option(
        None, "--train-config", help="Config of the 'trained' method (two-tower head)."
    ),
    weighting: str | None = _CF["weighting"],
    alpha: float | None = _CF["alpha"],
    regularization: float | None = _CF["regularization"],
    factors: int | None = _CF["factors"],
    iterations: int | None = _CF["iterations"],
    tune: bool = typer.Option(
        False,
        "--tune",
        help="First tune each method's settings on a validation split carved from the training part (ALS: "
        "weighting, alpha, regularisation; EASE: lambda, neighbours; RP3beta: alpha, beta, neighbours; item-kNN: "
        "neighbours, shrink).",
    ),
    save_config: Path | None = typer.Option(
        None, "--save-config", help="With --tune: write the chosen cf_* settings into this TOML file."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for splits, sampling and training."),
    seeds: str | None = typer.Option(
        None, "--seeds", help="Comma-separated seeds, e.g. 0,1,2: report the mean and spread."
    ),
    max_users: int | None = typer.Option(None, "--max-users", help="Evaluate a seeded sample of test users."),
    out_dir: Path | None = typer.Option(None, "--out", help="Write results.json and results.png here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Offline evaluation of the interaction log: Recall@K, HR-recall@K, NDCG@K (K = 10, 20, 50) and
    coverage per method.

    recall@K = hits / relevant items; hr_recall@K = hits / min(K, relevant items). The report
    names the exact settings each method ran with.
    """
    from embedder.train.config import load_train_config

    if save_config is not None and not tune:
        raise EmbedderError("--save-config saves what --tune chose; give --tune too")
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] if seeds else [seed]
    except ValueError:
        raise EmbedderError(f"--seeds must be comma-separated integers, not '{seeds}'") from None
    with ctx.obj.library(cf_factors=factors) as library:
        result = library.evaluate(
            split=split,
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            seeds=seed_list,
            tune=tune,
            max_users=max_users,
            train_config=load_train_config(train_config),
            weighting=weighting,
            alpha=alpha,
            regularization=regularization,
            iterations=iterations,
        )
    if save_config is not None:
        from embedder.recommend.cf import CFParams
        from embedder.recommend.tune import save_cf_settings

        result["saved_config"] = {
            "path": str(save_config),
            "lines": save_cf_settings(CFParams(**result["tuning"]["chosen"]), save_config),
        }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        from embedder.evaluate import plot

        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(result, out_dir / "results.png")
    if as_json:
        print_json(result)
        return
    _print_eval(result)


def _print_eval(result: dict) -> None:
    seeds = result.get("seeds") or [result["seed"]]
    spread = result.get("spread") if len(seeds) > 1 else None
    title = (
        f"{result['split']} split, {result['users_evaluated']} users, seed{'s' if len(seeds) > 1 else ''} "
        + ",".join(map(str, seeds))
    )
    table = Table(show_header=True, header_style="bold", title=title + (" (mean ± std)" if spread else ""))
    table.add_column("metric")
    for method in result["methods"]:
        table.add_column(method, justify="right")
    for key in [f"{m}@{k}" for m in ("recall", "hr_recall", "ndcg", "coverage") for k in result["ks"]]:
        cells = []
        for method, scores in result["methods"].items():
            cells.append(f"{scores[key]:.4f}" + (f" ± {spread[method][key]:.4f}" if spread else ""))
        table.add_row(key, *cells)
    out.print(table)
    tuning = result.get("tuning")
    if tuning:
        chosen = ", ".join(f"{k}={v}" for k, v in tuning["chosen"].items())
        out.print(
            f"tuned on a validation split of the training part ({tuning['validation']['validation_events']} events): "
            f"{chosen}",
            highlight=False,
        )
    for kind, tuned in (result.get("tuning_item_item") or {}).items():
        chosen = ", ".join(f"{k}={v}" for k, v in tuned["chosen"].items() if k != "kind")
        edge = f" (still at the grid's edge: {', '.join(tuned['at_edge'])})" if tuned.get("at_edge") else ""
        out.print(f"tuned {kind} on the same validation split: {chosen}{edge}", highlight=False)
    hybrid = result.get("tuning_hybrid")
    if hybrid:
        chosen = hybrid["chosen"]
        adds = "adds to" if hybrid["adds_on_validation"] else "does not add to"
        out.print(
            f"tuned hybrid on validation: {chosen['base']} (the best collaborative model there) with "
            f"{chosen['content']}, {chosen['fusion']}, content weight {chosen['content_weight']}: the content side "
            f"{adds} {chosen['base']} alone ({hybrid['trials'][0]['val_ndcg@10']:.4f} vs "
            f"{hybrid['base_alone_val_ndcg@10']:.4f})",
            highlight=False,
        )
    for method, cfg in result.get("settings", {}).items():
        if method in ("cf", "hybrid"):
            out.print(f"{method} settings: {json.dumps(cfg)}", highlight=False)
    if result.get("saved_config"):
        out.print(
            f"saved to {result['saved_config']['path']}: {'; '.join(result['saved_config']['lines'])}", highlight=False
        )
    for method, why in result["skipped"].items():
        out.print(f"skipped {method}: {why}", highlight=False)
