"""The ``embedder`` command line: a thin typer layer over library functions.

Every command accepts ``--json`` for scripts. Errors print one line on stderr (``error: ...``)
and exit 2; set ``EMBEDDER_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from embedder.errors import EmbedderError

app = typer.Typer(
    name="embedder",
    help="Turn a library of video and audio files into searchable, recommendable vectors in Qdrant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


class _Context:
    """Global flags, turned into settings on first use (so --help never builds them)."""

    def __init__(self, config: Optional[Path], overrides: dict[str, Any]):
        self.config = config
        self.overrides = overrides

    def settings(self, **more: Any):
        from embedder.settings import load_settings

        return load_settings(self.config, **{**self.overrides, **more})


def _guarded(fn: Callable) -> Callable:
    """Turn errors into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except EmbedderError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback for debugging
            if os.environ.get("EMBEDDER_DEBUG"):
                raise
            err.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                "(set EMBEDDER_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _short(path: str | None) -> str | None:
    """A path relative to the working directory when it is inside it (tables stay readable)."""
    if not path:
        return path
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _global(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config file (else $EMBEDDER_CONFIG or ./embedder.toml)."),
    store: Optional[str] = typer.Option(None, "--store", help="Store directory, or http(s) URL of a Qdrant server (env EMBEDDER_STORE)."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection name (env EMBEDDER_COLLECTION)."),
    models: Optional[str] = typer.Option(None, "--models", help="Model preset: default or tiny (env EMBEDDER_MODELS)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (env EMBEDDER_DEVICE)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Decoder processes (env EMBEDDER_WORKERS)."),
) -> None:
    """Settings precedence: defaults < config file < EMBEDDER_* environment < these flags."""
    ctx.obj = _Context(
        config, {"store": store, "collection": collection, "models": models, "device": device, "workers": workers}
    )


@app.command()
@_guarded
def inspect(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    sampling: Optional[str] = typer.Option(None, "--sampling", help="uniform or scene."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frames per second in uniform mode."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Cap on frames per item."),
) -> None:
    """Show what ingest would do with each file: probe facts, decoder, frames, audio windows, text."""
    from embedder.inspect import inspect_paths

    settings = ctx.obj.settings(sampling=sampling, video_fps=fps, max_frames=max_frames)
    reports = inspect_paths(paths, settings)
    if as_json:
        _print_json(reports)
        return
    for r in reports:
        _print_inspect(r)
    ok = sum(r["status"] == "ok" for r in reports)
    out.print(f"{ok} ok, {sum(r['status'] == 'failed' for r in reports)} failed, "
              f"{sum(r['status'] == 'skipped' for r in reports)} skipped")


def _print_inspect(r: dict) -> None:
    status = r["status"]
    colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[status]
    out.print(f"[bold]{r['path']}[/bold]  [{colour}]{status}[/{colour}]", highlight=False)
    if status != "ok":
        out.print(f"  {r['stage']}: {r['reason']}", highlight=False)
        return
    p = r["probe"]
    out.print(f"  {r['kind']}, {p['format']}, {p['duration']:.2f}s, {r['size']} bytes", highlight=False)
    for v in p["video"]:
        mark = "*" if v["index"] == p["best_video_index"] else " "
        extra = (" VFR" if v["variable_frame_rate"] else "") + (f" {v['bit_depth']}-bit" if v["bit_depth"] else "")
        out.print(f"  {mark}video #{v['index']}: {v['codec']} {v['width']}x{v['height']} @ {v['fps']:.3f} fps{extra}", highlight=False)
    for a in p["audio"]:
        out.print(f"   audio #{a['index']}: {a['codec']} {a['sample_rate']} Hz, {a['channels']} ch", highlight=False)
    for s in p["subtitles"]:
        out.print(f"   subtitles #{s['index']}: {s['codec']} {s['language'] or ''}", highlight=False)
    v = r["video"]
    if v:
        fb = f" (fallback: {v['fallback_reason']})" if v["fallback_reason"] else ""
        ts = ", ".join(f"{t:.2f}" for t in v["timestamps"])
        out.print(f"  frames: {v['frames']} via {v['decoder']}{fb} at [{ts}] s", highlight=False)
    a = r["audio"]
    out.print(f"  audio windows: {a['windows'] if a else 0}", highlight=False)
    out.print(f"  text ({r['text']['source']}): {r['text']['text'][:100]}", highlight=False)
    for w in r.get("warnings") or []:
        out.print(f"  [yellow]warning:[/yellow] {w}", highlight=False)


class _TerminalProgress:
    """A rich progress bar (files/s, ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, quiet: bool = False, per_item: bool = True):
        self.quiet = quiet
        self.per_item = per_item  # plain mode: a line per file; off for per-batch progress
        self.tty = err.is_terminal
        self.bar = None
        self.task = None
        self.done = 0
        self.total = 0

    def start(self, total: int, label: str) -> None:
        self.total, self.done, self.label = total, 0, label
        if self.quiet or not self.tty:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        class Rate(TextColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                return super().render(task) if speed is None else f"{speed:.2f} files/s"

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(""),
                            TimeRemainingColumn(), console=err, transient=False)
        self.bar.start()
        self.task = self.bar.add_task(label, total=total)

    def advance(self, path: str, status: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            if not self.per_item:  # e.g. the running loss
                self.bar.update(self.task, description=f"{self.label} {path}")
        elif not self.quiet and self.per_item:
            err.print(f"[{self.done}/{self.total}] {status}: {path}", highlight=False, markup=False, soft_wrap=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(message, highlight=False, markup=False)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@app.command()
@_guarded
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; decode and write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Decode, embed and store files; skip unchanged ones by hash; drop files gone from the folders.

    Exits 0 when the run completed, even if some files failed (they are listed with the stage and
    reason); exits 2 when it could not run (store, weights or settings).
    """
    from pipelines.ingest import run_ingest

    settings = ctx.obj.settings()
    summary = run_ingest(paths, settings, dry_run=dry_run, progress=_TerminalProgress(quiet or as_json))
    data = summary.to_dict()
    if as_json:
        _print_json(data)
        return
    c = data["counts"]
    head = "dry run: would ingest" if dry_run else "ingested"
    out.print(f"{head}: {c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged, "
              f"{c['removed']} removed, {c['failed']} failed, {c['skipped']} skipped "
              f"in {data['elapsed_s']:.1f}s" + (f" ({data['files_per_s']:.2f} files/s)" if data["files_per_s"] else ""),
              highlight=False)
    for key in ("new", "updated", "removed"):
        for p in data[key]:
            out.print(f"  {key}: {p}", highlight=False)
    for f in data["failed"]:
        out.print(f"  [red]failed[/red] {f['path']}: {f['stage']}: {f['reason']}", highlight=False)
    for w in data["warnings"]:
        out.print(f"  [yellow]warning[/yellow] {w['path']}: {'; '.join(w['warnings'])}", highlight=False)
    out.print(f"store: {data['store']['backend']} {data['store']['location']} "
              f"collection {data['store']['collection']}, {data['store']['points']} items", highlight=False)


@app.command()
@_guarded
def search(
    ctx: typer.Context,
    query: Optional[str] = typer.Argument(None, help="What to look for, in words."),
    like: Optional[str] = typer.Option(None, "--like", help="Find items similar to an ingested item (id or path) or a new file."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many hits."),
    modality: str = typer.Option("all", "--modality", "-m", help="all (fused content vector), visual, audio or text."),
    filters: Optional[list[str]] = typer.Option(None, "--filter", "-f", help="Payload filter key=value, e.g. kind=video; repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Similarity search by text, or by example with --like. Hits show path, score and per-modality scores."""
    from embedder.search import parse_filters, search_like, search_text
    from embedder.store import open_store

    if (query is None) == (like is None):
        raise EmbedderError("give either a search text or --like FILE_OR_ID")
    settings = ctx.obj.settings()
    parsed = parse_filters(filters)
    with open_store(settings) as store:
        if like is not None:
            hits = search_like(store, like, settings, limit=limit, modality=modality, filters=parsed)
        else:
            from embedder.encoders.bundle import load_encoders

            if store.collection_dims() is None:
                raise EmbedderError(f"collection '{settings.collection}' is empty or missing; run 'embedder ingest' first")
            hits = search_text(store, load_encoders(settings), query, weights=settings.fusion_weights,
                               limit=limit, modality=modality, filters=parsed)
    if as_json:
        _print_json({"query": query, "like": like, "modality": modality, "hits": [h.to_dict() for h in hits]})
        return
    if not hits:
        out.print("no hits")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "score", "visual", "audio", "text"):
        table.add_column(col, justify="right")
    table.add_column("path", overflow="fold")
    for rank, h in enumerate(hits, 1):
        cell = lambda m: "-" if m not in h.scores else f"{h.scores[m]:.3f}"  # noqa: E731
        table.add_row(str(rank), f"{h.score:.3f}", cell("visual"), cell("audio"), cell("text"), _short(h.path) or h.id)
    out.print(table)


@app.command()
@_guarded
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Back-end, collection, item count, modalities, models and store size."""
    from embedder.search import collection_status
    from embedder.store import open_store

    settings = ctx.obj.settings()
    with open_store(settings) as store:
        info = collection_status(store)
    if as_json:
        _print_json(info)
        return
    out.print(f"back-end: {info['backend']} ({info['location']})", highlight=False)
    out.print(f"collection: {info['collection']}" + ("" if info["exists"] else " (not created yet)"), highlight=False)
    out.print(f"items: {info['points']}", highlight=False)
    if info["exists"]:
        out.print("modalities: " + ", ".join(f"{m} {n}" for m, n in info["modalities"].items()), highlight=False)
        out.print("kinds: " + ", ".join(f"{k} {n}" for k, n in info["kinds"].items()), highlight=False)
        for modality, models in info["models"].items():
            out.print(f"model for {modality}: {', '.join(models)}", highlight=False)
        out.print("vectors: " + ", ".join(f"{k} {v}-d" for k, v in info["vectors"].items()), highlight=False)
    if info.get("size_bytes") is not None:
        out.print(f"size on disk: {info['size_bytes'] / 1e6:.1f} MB", highlight=False)


@app.command()
@_guarded
def reembed(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report stale items and their causes."),
    allow_failures: bool = typer.Option(False, "--allow-failures", help="Switch to the new version even if some items failed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Find stale vectors (model, fusion, content, file gone, head) and rebuild them.

    Model and fusion changes are rebuilt blue-green into the next collection version, then the
    alias switches atomically; searches keep using the old version until then.
    """
    from pipelines.reembed import run_reembed

    settings = ctx.obj.settings()
    report = run_reembed(settings, dry_run=dry_run, allow_failures=allow_failures,
                         progress=_TerminalProgress(quiet or as_json))
    if as_json:
        _print_json(report)
        return
    causes = ", ".join(f"{k} {v}" for k, v in report["causes"].items()) or "none"
    out.print(f"{report['items']} items in {report['source']}: {report['stale']} stale ({causes})", highlight=False)
    if report["dry_run"]:
        for item in report["stale_items"][:50]:
            out.print(f"  {item['path'] or item['id']}: {', '.join(item['causes'])}", highlight=False)
        return
    if "ingest" in report:
        c = report["ingest"]["counts"]
        out.print(f"re-ingested folders: {c['updated']} updated, {c['removed']} removed, {c['failed']} failed", highlight=False)
    rebuild = report.get("rebuild")
    if rebuild:
        if rebuild["switched"]:
            out.print(f"built {rebuild['target']} ({rebuild['rebuilt']} rebuilt, {rebuild['copied']} copied); "
                      f"'{report['collection']}' now points at it; previous: {rebuild['previous']}", highlight=False)
        else:
            out.print(f"[yellow]{rebuild['note']}[/yellow]", highlight=False)
        for f in rebuild["failed"]:
            out.print(f"  [red]failed[/red] {f['path']}: {f['stage']}: {f['reason']}", highlight=False)


collections_app = typer.Typer(help="Collection versions behind the alias: list, rollback, drop.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")


@collections_app.command("list")
@_guarded
def collections_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection version, its size, and where the aliases point."""
    from embedder.store.catalog import open_catalog

    catalog = open_catalog(ctx.obj.settings())
    aliases = catalog.aliases()
    rows = [{"name": n, "aliases": sorted(a for a, t in aliases.items() if t == n)} for n in catalog.collections()]
    if as_json:
        _print_json({"aliases": aliases, "collections": rows})
        return
    for r in rows:
        mark = f"  <- {', '.join(r['aliases'])}" if r["aliases"] else ""
        out.print(f"{r['name']}{mark}", highlight=False)


@collections_app.command("rollback")
@_guarded
def collections_rollback(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Point the alias back at the previous version (which re-embedding keeps)."""
    from embedder.store.catalog import open_catalog, versions_of

    settings = ctx.obj.settings()
    catalog = open_catalog(settings)
    current = catalog.aliases().get(settings.collection)
    older = [n for v, n in versions_of(settings.collection, catalog.collections()) if n != current
             and (current is None or v < int(current.rsplit("_v", 1)[-1]))]
    if not older:
        raise EmbedderError(f"no earlier version of '{settings.collection}' to roll back to (current: {current})")
    catalog.switch_alias(settings.collection, older[-1])
    if as_json:
        _print_json({"alias": settings.collection, "from": current, "to": older[-1]})
    else:
        out.print(f"'{settings.collection}' now points at {older[-1]} (was {current})", highlight=False)


@collections_app.command("drop")
@_guarded
def collections_drop(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A collection version, e.g. media_v1."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a collection version that no alias points at."""
    from embedder.store.catalog import open_catalog

    catalog = open_catalog(ctx.obj.settings())
    if name not in catalog.collections():
        raise EmbedderError(f"no collection named '{name}'")
    users = [a for a, t in catalog.aliases().items() if t == name]
    if users:
        raise EmbedderError(f"'{name}' is in use by alias {', '.join(users)}; roll back or re-embed first")
    if not yes and not typer.confirm(f"delete collection {name}?"):
        raise typer.Exit(1)
    catalog.drop(name)
    out.print(f"dropped {name}", highlight=False)


jobs_app = typer.Typer(help="Scheduled jobs from pipelines/jobs.toml: list, run one, or serve them all.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def _jobs(ctx, jobs_file):
    from embedder.scheduler import load_jobs

    settings = ctx.obj.settings()
    return load_jobs(jobs_file or settings.jobs_file)


def _forwarded_flags(ctx) -> list[str]:
    """Global flags given to 'jobs', passed on to each job step."""
    args = []
    if ctx.obj.config:
        args += ["--config", str(ctx.obj.config)]
    for key, value in ctx.obj.overrides.items():
        if value is not None:
            args += [f"--{key}", str(value)]
    return args


@jobs_app.command("list")
@_guarded
def jobs_list(
    ctx: typer.Context,
    jobs_file: Optional[Path] = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each job, its cron expression, its next run (UTC) and its steps."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    rows = [{"name": j.name, "cron": j.cron, "next_run": j.next_after(now).isoformat(timespec="minutes"),
             "steps": [" ".join(s) for s in j.steps]} for j in _jobs(ctx, jobs_file).values()]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        out.print(f"{r['name']}  [{r['cron']}]  next {r['next_run']}", highlight=False)
        for step in r["steps"]:
            out.print(f"    embedder {step}", highlight=False)


@jobs_app.command("run")
@_guarded
def jobs_run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Job name from the jobs file."),
    jobs_file: Optional[Path] = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
) -> None:
    """Run one job now (its steps in order, stopping at the first failure)."""
    from embedder.scheduler import run_steps

    jobs = _jobs(ctx, jobs_file)
    if name not in jobs:
        raise EmbedderError(f"no job named '{name}'; jobs: {', '.join(jobs) or 'none'}")
    ok, message = run_steps(jobs[name], _forwarded_flags(ctx))
    out.print(f"job {name}: {'ok' if ok else 'failed'}: {message}", highlight=False)
    if not ok:
        raise typer.Exit(1)


@jobs_app.command("serve")
@_guarded
def jobs_serve(
    ctx: typer.Context,
    jobs_file: Optional[Path] = typer.Option(None, "--jobs", help="Jobs file (default: setting jobs_file)."),
    poll_s: float = typer.Option(20.0, "--poll", help="Seconds between checks for due jobs."),
) -> None:
    """Run due jobs until stopped (SIGINT/SIGTERM); a job never overlaps itself; outcomes are logged."""
    import logging
    import signal
    import threading

    from embedder.scheduler import Scheduler, run_steps

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    jobs = _jobs(ctx, jobs_file)
    flags = _forwarded_flags(ctx)
    scheduler = Scheduler(jobs, runner=lambda job: run_steps(job, flags))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for name, when in scheduler.next_run.items():
        err.print(f"job {name}: next run {when.isoformat(timespec='minutes')}", highlight=False)
    scheduler.serve(stop, poll_s)


interactions_app = typer.Typer(help="Interaction logs and the collaborative-filtering model.", no_args_is_help=True)
app.add_typer(interactions_app, name="interactions")


def _open_log(settings):
    from embedder.recommend.interactions import InteractionLog, default_log_path

    return InteractionLog(default_log_path(settings))


@interactions_app.command("import")
@_guarded
def interactions_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet event log."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, tsv, jsonl or parquet (default: from the extension)."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Names for the fields of a file without a header line, e.g. user,item,weight."),
    user_col: str = typer.Option("user", "--user-col", help="Column with the user id."),
    item_col: str = typer.Option("item", "--item-col", help="Column with the item: an ingested path or id, or any item key."),
    weight_col: Optional[str] = typer.Option(None, "--weight-col", help="Column with a weight or count (negative = negative feedback)."),
    rating_col: Optional[str] = typer.Option(None, "--rating-col", help="Column with a rating; above --rating-threshold is positive."),
    rating_threshold: float = typer.Option(3.0, "--rating-threshold", help="Ratings above it are positive, below negative."),
    event_col: Optional[str] = typer.Option(None, "--event-col", help="Column with an event type (play, like, skip, ...)."),
    event_weight: Optional[list[str]] = typer.Option(None, "--event-weight", help="Override an event's weight, e.g. like=5; repeatable."),
    time_col: Optional[str] = typer.Option(None, "--time-col", help="Column with epoch seconds/ms or ISO 8601 time."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Append an event log to the interaction store: bad rows are reported with line numbers, duplicates dropped."""
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
    cols = ColumnMap(user=user_col, item=item_col, weight=weight_col, rating=rating_col, event=event_col,
                     timestamp=time_col, rating_threshold=rating_threshold, event_weights=weights)
    names = [c.strip() for c in columns.split(",")] if columns else None
    with _open_log(ctx.obj.settings()) as log:
        report = log.import_file(file, cols, fmt=fmt, columns=names)
        stats = log.stats()
    data = {**report.to_dict(), "log": stats}
    if as_json:
        _print_json(data)
        return
    out.print(f"{report.rows} rows: {report.added} added, {report.duplicates} duplicates, {report.bad} bad "
              f"-> log has {stats['events']} events, {stats['users']} users, {stats['items']} items ({stats['path']})",
              highlight=False)
    for bad in report.bad_rows:
        out.print(f"  line {bad['line']}: {bad['reason']}", highlight=False)
    if report.bad > len(report.bad_rows):
        out.print(f"  ... and {report.bad - len(report.bad_rows)} more bad rows", highlight=False)


@interactions_app.command("stats")
@_guarded
def interactions_stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Events, users and items in the interaction store."""
    with _open_log(ctx.obj.settings()) as log:
        stats = log.stats()
    if as_json:
        _print_json(stats)
    else:
        out.print(f"{stats['events']} events ({stats['negative_events']} negative), {stats['users']} users, "
                  f"{stats['items']} items in {stats['path']}", highlight=False)


@interactions_app.command("train")
@_guarded
def interactions_train(
    ctx: typer.Context,
    model: str = typer.Option("als", "--model", help="als or bpr (implicit)."),
    iterations: int = typer.Option(15, "--iterations", min=1, help="Training iterations."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fit collaborative filtering on the log; store item 'cf' vectors and the users collection."""
    from embedder.recommend.cf import fit_cf, write_cf
    from embedder.recommend.stores import open_collections

    settings = ctx.obj.settings()
    with _open_log(settings) as log:
        events = log.all()
    fitted = fit_cf(events, factors=settings.cf_factors, model=model, iterations=iterations, seed=seed)
    media, users = open_collections(settings)
    with media, users:
        summary = write_cf(fitted, media, users)
    if as_json:
        _print_json(summary)
    else:
        out.print(f"trained {summary['model']}: {summary['users']} users, {summary['items']} items "
                  f"({summary['items_with_media']} with media, {summary['items_without_media']} without)", highlight=False)


@app.command()
@_guarded
def recommend(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="User id as in the interaction log."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many items."),
    strategy: str = typer.Option("hybrid", "--strategy", help="hybrid (cf + content, RRF), cf, content, or trained (the fine-tuned head)."),
    exclude_seen: bool = typer.Option(True, "--exclude-seen/--include-seen", help="Leave out items the user already had."),
    query: Optional[str] = typer.Option(None, "--query", "-q", help="For a user with no history: narrow popular items by this text."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recommend items for a user; each hit says which branch (cf, content, popular) found it."""
    from embedder.recommend.queries import RecommendResult, popular_items, recommend_for_user

    settings = ctx.obj.settings()
    with _open_log(settings) as log:
        history = log.for_user(user)
    from embedder.recommend.stores import open_collections

    media, users = open_collections(settings, create=False)
    with media, users:
        if not history and query:
            from embedder.encoders.bundle import load_encoders
            from embedder.search import search_text

            hits = search_text(media, load_encoders(settings), query, weights=settings.fusion_weights, limit=limit * 5)
            result = RecommendResult(user=user, strategy=strategy, used=["popular", "text"],
                                     items=popular_items(media, limit=limit, text_hits=hits),
                                     note="no interactions for this user: popular items matching the text")
        else:
            result = recommend_for_user(user, history, media, users, limit=limit, strategy=strategy, exclude_seen=exclude_seen)
    if as_json:
        _print_json(result.to_dict())
        return
    if result.note:
        out.print(f"[yellow]{result.note}[/yellow]", highlight=False)
    _print_recs(result.items)


def _print_recs(items) -> None:
    if not items:
        out.print("no items")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "score", "found by"):
        table.add_column(col, justify="right" if col != "found by" else "left")
    table.add_column("item", overflow="fold")
    for rank, r in enumerate(items, 1):
        table.add_row(str(rank), f"{r.score:.4f}", "+".join(r.branches), _short(r.path) or r.item or r.id)
    out.print(table)


@app.command()
@_guarded
def similar(
    ctx: typer.Context,
    item: str = typer.Argument(..., help="An ingested path or id, or an item key from the interaction log."),
    by: str = typer.Option("content", "--by", help="content, cf or both."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many items."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Item-to-item similarity by content vectors, CF factors, or both fused."""
    from embedder.recommend.queries import resolve_item_ref, similar_items
    from embedder.store import open_store

    settings = ctx.obj.settings()
    with open_store(settings) as media:
        items = similar_items(media, resolve_item_ref(media, item), by=by, limit=limit)
    if as_json:
        _print_json({"item": item, "by": by, "items": [r.to_dict() for r in items]})
    else:
        _print_recs(items)


@app.command("similar-users")
@_guarded
def similar_users_cmd(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="User id as in the interaction log."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many users."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Users with the closest taste (cosine of CF user vectors)."""
    from embedder.recommend.queries import similar_users
    from embedder.store import open_store, users_collection

    settings = ctx.obj.settings()
    with open_store(settings, collection=users_collection(settings)) as users:
        found = similar_users(users, user, limit=limit)
    if as_json:
        _print_json({"user": user, "users": found})
        return
    for rank, u in enumerate(found, 1):
        out.print(f"{rank:>3}  {u['score']:.4f}  {u['user']}", highlight=False)


@app.command("train")
@_guarded
def train_cmd(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="Training config (TOML), e.g. pipelines/configs/train.toml."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a run directory from its last checkpoint."),
    adversarial: Optional[bool] = typer.Option(None, "--adversarial/--no-adversarial", help="APR adversarial training."),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", help="Override optim.max_epochs."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override run.seed."),
    write: bool = typer.Option(True, "--write/--no-write", help="Store rec vectors for 'recommend --strategy trained'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fine-tune the two-tower head (BCE, frozen encoders, early stopping) on the interaction log."""
    from embedder.train.config import load_train_config
    from pipelines.train import run_training

    settings = ctx.obj.settings()
    cfg = load_train_config(config, **{"adversarial.enabled": adversarial, "optim.max_epochs": max_epochs, "run.seed": seed})
    summary = run_training(settings, cfg, resume=resume, write=write, progress=_TerminalProgress(as_json, per_item=False))
    if as_json:
        _print_json(summary)
        return
    m = summary["metrics"]
    k = cfg.optim.eval_k
    out.print(f"run {summary['run_dir']} ({summary['device']}): best epoch {m['best_epoch']} of {m['epochs']}, "
              f"val NDCG@{k} {m[f'best_val_ndcg@{k}']:.4f}" + (", stopped early" if m["stopped_early"] else ""), highlight=False)
    r = m["robustness"]
    out.print(f"robustness: NDCG@{k} {r['ndcg_clean']:.4f} clean, {r['ndcg_perturbed']:.4f} with item vectors "
              f"perturbed by epsilon {r['epsilon']}", highlight=False)
    if summary["written"]:
        w = summary["written"]
        out.print(f"stored rec vectors for {w['users']} users and {w['items']} items ({summary['version']})", highlight=False)


@app.command("eval")
@_guarded
def eval_cmd(
    ctx: typer.Context,
    split: str = typer.Option("leave-last-out", "--split", help="leave-last-out, random-holdout, time or cold-items."),
    methods: str = typer.Option("popularity,als,content,hybrid", "--methods", help="Comma-separated: popularity, als, content, hybrid, trained."),
    train_config: Optional[Path] = typer.Option(None, "--train-config", help="Config of the 'trained' method (two-tower head)."),
    seed: int = typer.Option(0, "--seed", help="Seed for splits, sampling and training."),
    max_users: Optional[int] = typer.Option(None, "--max-users", help="Evaluate a seeded sample of test users."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write results.json and results.png here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Offline evaluation of the interaction log: Recall@K, NDCG@K (K = 10, 20, 50) and coverage per method."""
    from embedder.recommend.evaluate import evaluate, plot
    from embedder.store import open_store

    settings = ctx.obj.settings()
    with _open_log(settings) as log:
        events = log.all()
    if not events:
        raise EmbedderError("the interaction log is empty; run 'embedder interactions import FILE' first")
    media = open_store(settings)
    with media:
        has_media = media.collection_dims() is not None and "content" in (media.collection_dims() or {})
        from embedder.train.config import load_train_config

        result = evaluate(events, split=split, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
                          seed=seed, factors=settings.cf_factors, media=media if has_media else None, max_users=max_users,
                          train_config=load_train_config(train_config))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(result, out_dir / "results.png")
    if as_json:
        _print_json(result)
        return
    table = Table(show_header=True, header_style="bold", title=f"{result['split']} split, {result['users_evaluated']} users")
    table.add_column("metric")
    for method in result["methods"]:
        table.add_column(method, justify="right")
    for key in [f"{m}@{k}" for m in ("recall", "ndcg", "coverage") for k in result["ks"]]:
        table.add_row(key, *[f"{scores[key]:.4f}" for scores in result["methods"].values()])
    out.print(table)
    for method, why in result["skipped"].items():
        out.print(f"skipped {method}: {why}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
