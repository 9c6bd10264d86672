"""inspect, ingest, search and status."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from embedder.cli.common import TerminalProgress, app, err, guarded, out, plain, print_json, short_path
from embedder.errors import EmbedderError


@app.command()
@guarded
def inspect(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    sampling: str | None = typer.Option(None, "--sampling", help="uniform or scene."),
    fps: float | None = typer.Option(None, "--fps", help="Frames per second in uniform mode."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Cap on frames per item."),
) -> None:
    """Show what ingest would do with each file: probe facts, decoder, frames, audio windows, text."""
    from embedder.media.discover import MISSING

    # The report prints at the end; meanwhile a bar on a terminal, a line per file in a log.
    with ctx.obj.library(sampling=sampling, video_fps=fps, max_frames=max_frames) as library:
        reports = library.inspect(paths, progress=TerminalProgress(quiet=as_json))
    if as_json:
        print_json(reports)
        if any(r.get("reason") == MISSING for r in reports):
            raise typer.Exit(2)
        return
    for r in reports:
        _print_inspect(r)
    ok = sum(r["status"] == "ok" for r in reports)
    out.print(
        f"{ok} ok, {sum(r['status'] == 'failed' for r in reports)} failed, "
        f"{sum(r['status'] == 'skipped' for r in reports)} skipped"
    )
    missing = [r["path"] for r in reports if r.get("reason") == MISSING]
    if missing:
        err.print("[red]error:[/red] not found: " + escape(", ".join(missing)), highlight=False, soft_wrap=True)
        raise typer.Exit(2)


def _print_inspect(r: dict) -> None:
    status = r["status"]
    colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[status]
    out.print(f"[bold]{escape(r['path'])}[/bold]  [{colour}]{status}[/{colour}]", highlight=False)
    if status != "ok":
        out.print(f"  {r['stage']}: {r['reason']}", highlight=False)
        return
    p = r["probe"]
    out.print(f"  {r['kind']}, {p['format']}, {p['duration']:.2f}s, {r['size']} bytes", highlight=False)
    for v in p["video"]:
        mark = "*" if v["index"] == p["best_video_index"] else " "
        extra = (" VFR" if v["variable_frame_rate"] else "") + (f" {v['bit_depth']}-bit" if v["bit_depth"] else "")
        out.print(
            f"  {mark}video #{v['index']}: {v['codec']} {v['width']}x{v['height']} @ {v['fps']:.3f} fps{extra}",
            highlight=False,
        )
    for a in p["audio"]:
        out.print(f"   audio #{a['index']}: {a['codec']} {a['sample_rate']} Hz, {a['channels']} ch", highlight=False)
    for s in p["subtitles"]:
        out.print(f"   subtitles #{s['index']}: {s['codec']} {s['language'] or ''}", highlight=False)
    v = r["video"]
    if v:
        fb = f" (fallback: {v['fallback_reason']})" if v["fallback_reason"] else ""
        ts = ", ".join(f"{t:.2f}" for t in v["timestamps"])
        more = v["frames"] - v["item_frames"]
        added = f" (+{more} added for segments)" if more else ""
        out.print(f"  frames: {v['item_frames']}{added} via {v['decoder']}{fb} at [{ts}] s", highlight=False)
    a = r["audio"]
    more = a["windows"] - a["item_windows"] if a else 0
    out.print(
        f"  audio windows: {a['item_windows'] if a else 0}" + (f" (+{more} added for segments)" if more else ""),
        highlight=False,
    )
    out.print(f"  text ({r['text']['source']}): {r['text']['text'][:100]}", highlight=False)
    if r.get("segments"):
        from embedder.media.segments import seconds

        spans = ", ".join(f"{seconds(s['start'])}-{seconds(s['end'])}" for s in r["segments"][:8])
        more = f" and {len(r['segments']) - 8} more" if len(r["segments"]) > 8 else ""
        out.print(f"  segments: {len(r['segments'])} ({spans}{more})", highlight=False)
    t = r.get("transcript")
    if t is not None:
        from embedder.media.segments import seconds

        out.print(
            f"  transcript ({t['model']}): {len(t['lines'])} lines, {t['speech_s']:.1f} s of speech in "
            f"{t['heard_s']:.1f} s heard",
            highlight=False,
        )
        for line in t["lines"][:5]:
            out.print(f"    {seconds(line['start'])}-{seconds(line['end'])} {escape(line['text'])}", highlight=False)
        if len(t["lines"]) > 5:
            out.print(f"    ... and {len(t['lines']) - 5} more ('embedder items transcript' after ingest)")
    for w in r.get("warnings") or []:
        out.print(f"  [yellow]warning:[/yellow] {w}", highlight=False)


@app.command()
@guarded
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; decode and write nothing."),
    prune: bool = typer.Option(
        False, "--prune", help="Remove items whose files are gone even when a whole folder's worth is missing."
    ),
    no_delete: bool = typer.Option(False, "--no-delete", help="Never remove items, whatever is missing."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Try again files that failed before and have not changed since."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="local (decoder processes here; the default) or ray (decode tasks and encode actors on a Ray "
        "cluster; pip install 'embedder[ray]').",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="With --executor ray: the cluster to join (HOST:6379, or ray://HOST:10001); default: start a local one.",
    ),
    ray_encoders: int | None = typer.Option(
        None, "--ray-encoders", min=1, help="With --executor ray: encode actors (each loads the models once)."
    ),
    ray_gpus: float | None = typer.Option(
        None, "--ray-gpus-per-encoder", min=0, help="With --executor ray: GPUs per encode actor (0: CPU actors)."
    ),
) -> None:
    """Decode, embed and store files; skip unchanged ones by hash; drop files gone from the folders.

    A file that failed is remembered by its content hash and reported, not decoded, on later runs
    until it changes or --retry-failed is given. Removed items go to the trash (see 'embedder
    trash') for trash_days, and come back without re-encoding when their files reappear. A run
    never removes a folder's worth of items on its own: when a folder has no media left (an
    unmounted share, also one nested below the folder named) or more than max_remove_fraction of
    its items are missing, those removals are held back and the run exits 3; --prune applies them.

    Exit codes: 0 the run completed, even if some files failed (they are listed with the stage
    and reason); 2 it could not run (store, weights or settings); 3 it completed but held back
    removals.
    """
    if prune and no_delete:
        raise EmbedderError("--prune and --no-delete contradict each other; give one")
    removals = "prune" if prune else "never" if no_delete else "guarded"
    chosen = {
        k: v
        for k, v in (
            ("executor", executor),
            ("ray_address", ray_address),
            ("ray_encoders", ray_encoders),
            ("ray_gpus_per_encoder", ray_gpus),
        )
        if v is not None
    }
    # A Ray run is driven from here (its cluster does the work); a local one may go through 'serve'.
    with ctx.obj.library(remote=chosen.get("executor", "local") == "local", **chosen) as library:
        summary = library.ingest(
            paths,
            dry_run=dry_run,
            removals=removals,
            retry_failed=retry_failed,
            progress=TerminalProgress(quiet or as_json),
        )
    data = summary.to_dict()
    if as_json:
        print_json(data)
    else:
        _print_ingest(data, dry_run)
    if summary.missing:
        err.print(
            "[red]error:[/red] not found: " + escape(", ".join(summary.missing)) + " (the other paths were ingested)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if summary.removals_held_back:
        raise typer.Exit(3)


def _print_ingest(data: dict, dry_run: bool) -> None:
    c = data["counts"]
    head = "dry run: would ingest" if dry_run else "ingested"
    restored = f"{c['restored']} restored from the trash, " if c["restored"] else ""
    held = f", {c['held_back']} kept though missing" if c["held_back"] else ""
    out.print(
        f"{head}: {c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged, {restored}"
        f"{c['removed']} removed{held}, {c['failed']} failed, {c['skipped']} skipped "
        f"in {data['elapsed_s']:.1f}s" + (f" ({data['files_per_s']:.2f} files/s)" if data["files_per_s"] else ""),
        highlight=False,
    )
    if data["timings"]:
        t = data["timings"]
        writing = f"writing {t['write_s']:.1f}s"
        if "wait_for_write_s" in t:  # the local executor writes on its own thread, alongside encoding
            writing += f" alongside, {t['wait_for_write_s']:.1f}s of it waited for"
        out.print(
            f"time: waiting for decoders {t['wait_for_decode_s']:.1f}s, encoding {t['encode_s']:.1f}s, {writing}",
            highlight=False,
        )
        if t.get("executor") == "ray":
            out.print(
                f"throughput on Ray ({t['nodes']} node{'s' if t['nodes'] != 1 else ''}): {t['frames']} frames "
                f"({t['frames_per_s']:.1f}/s), {t['audio_windows']} audio windows ({t['audio_windows_per_s']:.1f}/s)",
                highlight=False,
            )
        elif "frames_per_s" in t:  # which side bounds the run
            write_share = t.get("wait_for_write_s", 0.0) / max(t["run_s"], 1e-9)
            bound = (
                "decoding bounds this run"
                if t["encoder_wait_share"] >= 0.5
                else "writing bounds this run"
                if write_share >= 0.5
                else "encoding bounds this run"
            )
            out.print(
                f"throughput: {t['frames']} frames ({t['frames_per_s']:.1f}/s), {t['audio_windows']} audio windows "
                f"({t['audio_windows_per_s']:.1f}/s); the encoder waited {100 * t['encoder_wait_share']:.0f}% "
                f"of the run ({bound})",
                highlight=False,
            )
    for key in ("new", "updated", "restored", "removed"):
        for p in data[key]:
            out.print(f"  {key}: {escape(p)}", highlight=False)
    if data["trash"].get("moved"):
        out.print(
            f"  {data['trash']['moved']} removed items kept in the trash ('embedder trash list')", highlight=False
        )
    for f in data["failed"]:
        out.print(
            f"  [red]failed[/red] {escape(f['path'])}: {escape(f['stage'])}: {escape(f['reason'])}", highlight=False
        )
    for w in data["warnings"]:
        out.print(
            f"  [yellow]warning[/yellow] {escape(w['path'])}: {escape('; '.join(w['warnings']))}", highlight=False
        )
    _print_skipped(data["skipped"])
    for h in data["held_back"]:
        if h["guard"]:
            err.print(
                f"[bold yellow]kept {h['items']} of {h['stored']} items under {escape(h['root'])}[/bold yellow]: "
                f"{escape(h['reason'])}. Their files are missing; if that is intended, run again with --prune.",
                highlight=False,
                soft_wrap=True,
            )
        else:
            out.print(
                f"  kept {h['items']} items under {escape(h['root'])} whose files are missing ({escape(h['reason'])})",
                highlight=False,
                soft_wrap=True,
            )
    out.print(
        f"store: {data['store']['backend']} {data['store']['location']} "
        f"collection {_collection_name(data['store'])}, {data['store']['points']} items",
        highlight=False,
    )


@app.command()
@guarded
def search(
    ctx: typer.Context,
    query: str | None = typer.Argument(None, help="What to look for, in words."),
    like: str | None = typer.Option(
        None, "--like", help="Find items similar to an ingested item (id or path) or a new file."
    ),
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=1000, help="How many hits."),
    modality: str = typer.Option("all", "--modality", "-m", help="all (fused content vector), visual, audio or text."),
    filters: list[str] | None = typer.Option(
        None,
        "--filter",
        "-f",
        help="Payload filter: kind=video, kind=video,audio (any), size=16033, duration>10, size<1e6; "
        "repeat to combine (AND). Unknown keys list the known ones.",
    ),
    min_score: float | None = typer.Option(
        None,
        "--min-score",
        help="Only hits at least this similar: the cosine in dense and hybrid search (1 is identical), "
        "the BM25 score in lexical search.",
    ),
    include_self: bool = typer.Option(
        False, "--include-self", help="With --like an ingested item: list the item itself too."
    ),
    moments: bool = typer.Option(
        False,
        "--moments",
        help="Rank items by their best-matching segment and show when it is (start-end), its subtitle line "
        "and a preview. With --like a short clip: where it occurs inside longer videos.",
    ),
    user: str | None = typer.Option(
        None,
        "--user",
        "-u",
        help="Personalise for this user: the most relevant hits, re-ranked by their taste (cf vector and "
        "recent likes; setting personal_weight). A user with no history gets plain search.",
    ),
    seen: str = typer.Option(
        "demote", "--seen", help="With --user, items the user has seen: demote (after the unseen), exclude, or keep."
    ),
    mode: str = typer.Option(
        "auto",
        "--mode",
        help="hybrid: the encoders' (dense) and the words' (lexical, BM25 over titles, descriptions, subtitles "
        "and transcripts) rankings fused; dense or lexical: one of them; auto: hybrid where the collection has "
        'a lexical index. Lexical needs no models. "Quoted phrases" must occur as phrases in every mode.',
    ),
    fusion: str = typer.Option(
        "rrf", "--fusion", help="How hybrid fuses: rrf (reciprocal rank) or dbsf (normalised scores added)."
    ),
    collapse_duplicates: bool = typer.Option(
        False,
        "--collapse-duplicates",
        help="Show each cluster of near-duplicates (marked by 'embedder duplicates --mark') once.",
    ),
    diversity: float | None = typer.Option(
        None,
        "--diversity",
        min=0.0,
        max=1.0,
        help="0-1: re-rank the dense side by maximal marginal relevance, so the top hits are not all alike "
        "(0.3 is a gentle start; implies --mode dense). Scores stay the cosine.",
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Say why each hit ranks where it does: what the dense and lexical sides and each modality added, "
        "which words matched where (with times), the best moment, the taste terms (always in --json).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON, explanations included."),
) -> None:
    """Search by text (hybrid: meaning and words), or by example with --like.

    Hits show path, score and per-modality scores; in lexical and hybrid search, the words that
    matched and where (a subtitle or transcript line, with its time).
    --like leaves the item itself out, as 'embedder similar' does (--include-self keeps it).
    Without --moments, --user or --explain the output is the plain ranking of whole items.
    """
    from embedder.payload import parse_filters

    if (query is None) == (like is None):
        raise EmbedderError("give either a search text or --like FILE_OR_ID")
    parse_filters(filters)  # a bad filter is an error before anything opens
    with ctx.obj.library(remote=True, reading=True) as library:
        hits = library.search(
            query,
            like=like,
            limit=limit,
            modality=modality,
            filters=list(filters or []),
            min_score=min_score,
            include_self=include_self,
            moments=moments,
            user=user,
            seen=seen,
            collapse_duplicates=collapse_duplicates,
            **({"mode": mode, "fusion": fusion, "diversity": diversity} if query is not None else {}),
        )
    if as_json:
        print_json(
            {
                "query": query,
                "like": like,
                "mode": hits[0].mode if hits else None,
                "fusion": fusion if hits and hits[0].mode == "hybrid" else None,
                "modality": modality,
                "min_score": min_score,
                "moments": moments,
                "user": user,
                "hits": [h.to_dict() for h in hits],
            }
        )
        return
    if not hits:
        out.print("no hits")
        return
    personal = any(h.personal for h in hits)
    table = Table(show_header=True, header_style="bold")
    for col in (
        "#",
        "score",
        *(["for you"] if personal else []),
        "visual",
        "audio",
        "text",
        *(["moment"] if moments else []),
    ):
        table.add_column(col, justify="right")
    worded = any(h.matches for h in hits)
    if worded:
        table.add_column("words matched", overflow="fold")
    table.add_column("path", overflow="fold")
    if moments:  # the score is the best segment's: so are the columns, which add up to it
        table.caption = "visual, audio, text: what each added to the moment's score"

    def cells(h) -> list[str]:
        values = (h.moment.contributions if h.moment else {}) if moments else h.scores
        return ["-" if m not in values else f"{values[m]:.3f}" for m in ("visual", "audio", "text")]

    for rank, h in enumerate(hits, 1):
        extra = [f"{h.personal['score']:.3f}" + (" seen" if h.personal["seen"] else "")] if personal else []
        when = [_moment_span(h.moment)] if moments else []
        table.add_row(
            str(rank),
            f"{h.score:.4f}" if h.mode == "hybrid" else f"{h.score:.3f}",
            *extra,
            *cells(h),
            *when,
            *([_words_cell(h)] if worded else []),
            plain(short_path(h.path) if h.path else _label(h)),
        )
    if hits[0].mode == "hybrid":
        table.caption = (table.caption + "; " if table.caption else "") + f"hybrid search, {fusion} fusion"
    out.print(table)
    if explain:
        for rank, h in enumerate(hits, 1):
            _print_explanation(rank, h)


def _label(hit) -> str:
    from embedder.search import hit_label  # not at the top: the CLI starts without numpy

    return hit_label(hit)


def _words_cell(hit) -> str:
    """The query's words an item matched, and where: ``goddard space (transcript 0:08)``."""
    from embedder.media.segments import seconds

    if not hit.matches:
        return "-"
    m = hit.matches[0]
    where = m["where"] + (f" {seconds(m['start'])}" if m.get("start") is not None else "")
    return plain(f"{' '.join(m['words'])} ({where})")


def _highlighted(text: str, words: list[str]) -> Text:
    """``text`` with ``words`` in bold, for a terminal."""
    import re

    line = Text(text)
    for word in words:
        line.highlight_regex(rf"\b{re.escape(word)}\b", "bold")
    return line


@app.command()
@guarded
def duplicates(
    ctx: typer.Context,
    threshold: float = typer.Option(
        0.95,
        "--threshold",
        min=0.0,
        max=1.0,
        help="How alike two items must be: the mean best cosine of one's segments against the other's "
        "(1: every moment has an identical twin).",
    ),
    mark: bool = typer.Option(
        False, "--mark", help="Record the clusters (payload duplicate_of), for search --collapse-duplicates."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Near-duplicate items (re-uploaded, re-encoded, scaled, trimmed, watermarked copies), in clusters.

    Each cluster lists the copy to keep first (the longest) and each other member's score against
    it. Nothing is deleted; --mark lets search and the page show each cluster once.
    """
    with ctx.obj.library(reading=not mark) as library:
        found = library.duplicates(threshold, mark=mark, progress=TerminalProgress(quiet or as_json))
    clusters, marked = found["clusters"], found["marked"]
    if as_json:
        print_json({"threshold": threshold, "clusters": [c.to_dict() for c in clusters], "marked": marked})
        return
    if not clusters:
        out.print(f"no near-duplicates at threshold {threshold:g}", highlight=False)
        return
    for number, cluster in enumerate(clusters, 1):
        out.print(f"cluster {number} ({len(cluster.members)} items):", highlight=False)
        for member in cluster.members:
            keep = "keep " if member["id"] == cluster.representative else "     "
            name = short_path(member["path"]) or member["id"]
            out.print(f"  {keep}{member['score']:.3f}  {plain(name)}", highlight=False, soft_wrap=True)
    if marked is not None:
        out.print(f"marked {marked} items as copies (search --collapse-duplicates shows each cluster once)")


def _moment_span(moment) -> str:
    from embedder.media.segments import seconds

    return "-" if moment is None else f"{seconds(moment.start)}-{seconds(moment.end)}"


def _terms(contributions: dict[str, float]) -> str:
    return " + ".join(f"{m} {v:.3f}" for m, v in contributions.items()) or "-"


def _print_explanation(rank: int, hit) -> None:
    """Why one hit ranks where it does, in a few indented lines."""
    from embedder.media.segments import seconds

    name = short_path(hit.path) if hit.path else _label(hit)
    sides = hit.sides or {}
    if "fused" in sides:  # the score is the fusion's; the modalities explain the dense side's cosine
        lexical = "no word matched" if sides["lexical"] is None else f"BM25 {sides['lexical']:.3f}"
        lines = [
            f"{rank}. {name}: score {hit.score:.4f} = dense {sides['fused']['dense']:.4f} + "
            f"lexical {sides['fused']['lexical']:.4f}",
            f"   dense: cosine {sides['dense'] or 0:.3f} = {_terms(hit.contributions)}",
            f"   lexical: {lexical}",
        ]
    elif hit.mode == "lexical":
        lines = [f"{rank}. {name}: score {hit.score:.3f} (BM25 over the item's words)"]
    else:
        lines = [f"{rank}. {name}: score {hit.score:.3f} = {_terms(hit.contributions)}"]
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)

    for m in hit.matches[:3]:
        when = f" {seconds(m['start'])}-{seconds(m['end'])}" if m.get("start") is not None else ""
        line = Text(f"   {m['where']}{when}: ")
        line.append(_highlighted(m["text"][:160], m["words"]))
        out.print(line, soft_wrap=True)
    if hit.moment is not None:
        m = hit.moment
        said = f', subtitle "{m.subtitle}"' if m.subtitle else ""
        out.print(
            f"   best moment {_moment_span(m)}: {m.score:.3f} = {_terms(m.contributions)}{said}",
            highlight=False,
            soft_wrap=True,
        )
    if hit.personal:
        p = hit.personal
        parts = [f"cf {p['cf']:.3f}"] if p["cf"] is not None else []
        if p["nearest_liked"]:
            liked = p["nearest_liked"]
            parts.append(f"close to {short_path(liked['path']) or liked['id']} you liked ({liked['similarity']:.3f})")
        taste = "no taste signal" if p["taste"] is None else f"taste {p['taste']:.3f}, {p['taste_z']:+.2f} spreads"
        out.print(
            f"   for you: {p['score']:.3f} = {hit.score:.3f} + {p['weight']:g} x {p['relevance_spread']:.3f} x "
            f"{p['taste_z']:+.2f} ({taste}"
            + "".join(f", {x}" for x in parts)
            + ")"
            + (", already seen" if p["seen"] else ""),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
@guarded
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Back-end, collection, item count, modalities, models and store size."""
    with ctx.obj.library(remote=True, reading=True) as library:
        info = library.status()
    if as_json:
        print_json(info)
        return
    out.print(f"back-end: {info['backend']} ({info['location']})", highlight=False)
    out.print(
        f"collection: {_collection_name(info)}" + ("" if info["exists"] else " (not created yet)"), highlight=False
    )
    out.print(f"items: {info['points']}", highlight=False)
    if info["exists"]:
        out.print("modalities: " + ", ".join(f"{m} {n}" for m, n in info["modalities"].items()), highlight=False)
        out.print("kinds: " + ", ".join(f"{k} {n}" for k, n in info["kinds"].items()), highlight=False)
        for modality, models in info["models"].items():
            out.print(f"model for {modality}: {', '.join(models)}", highlight=False)
        out.print("vectors: " + ", ".join(f"{k} {v}-d" for k, v in info["vectors"].items()), highlight=False)
        if info.get("sparse_vectors"):
            out.print("item-to-item (sparse): " + ", ".join(info["sparse_vectors"]), highlight=False)
    if info.get("recommend_default"):
        out.print(f"recommend serves: {info['recommend_default']}", highlight=False, markup=False)
    if info.get("size_bytes") is not None:
        out.print(f"size on disk: {info['size_bytes'] / 1e6:.1f} MB", highlight=False)


def _print_skipped(skipped: list[dict]) -> None:
    """Every skipped path with its reason; sidecar files (read with their media) only as a count."""
    from embedder.media.discover import MISSING, SIDECAR

    sidecars = sum(s["reason"] == SIDECAR for s in skipped)
    for s in skipped:
        if s["reason"] != SIDECAR:
            colour = "red" if s["reason"] == MISSING else "yellow"
            out.print(
                f"  [{colour}]skipped[/{colour}] {escape(s['path'])}: {escape(s['reason'])}",
                highlight=False,
                soft_wrap=True,
            )
    if sidecars:
        out.print(f"  {sidecars} sidecar text files read with their media files", highlight=False)


def _collection_name(info: dict) -> str:
    """``media (media_v2)``: the alias users name, and the version it points at."""
    alias = info.get("alias")
    return f"{alias} ({info['collection']})" if alias and alias != info["collection"] else info["collection"]
