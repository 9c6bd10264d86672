"""items: list, page through and delete what a collection holds."""

from __future__ import annotations

from pathlib import Path

import typer

from embedder.cli.common import app, guarded, out, print_json, short_path
from embedder.errors import EmbedderError

items_app = typer.Typer(
    help="What the collection holds: list and page through items, read transcripts, delete them.", no_args_is_help=True
)
app.add_typer(items_app, name="items")


@items_app.command("list")
@guarded
def items_list(
    ctx: typer.Context,
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many items (id order)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="How many items."),
    filters: list[str] | None = typer.Option(
        None, "--filter", "-f", help="As in 'search': kind=video, duration>10, ..."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Items in a stable order, a page at a time; the last line says how to get the next page."""
    with ctx.obj.library(reading=True) as library:
        page = library.items(offset=offset, limit=limit, filters=filters)
    if as_json:
        print_json(page.to_dict())
        return
    for item in page.items:
        duration = f"{item['duration']:.1f}s" if item["duration"] is not None else "-"
        out.print(
            f"{item['id']}  {item['kind'] or '-':5}  {duration:>7}  {short_path(item['path']) or '-'}",
            highlight=False,
            soft_wrap=True,
        )
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    out.print(f"items {shown} of {page.total}{more}", highlight=False)


@items_app.command("delete")
@guarded
def items_delete(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="Item ids or paths."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete items (into the trash: 'embedder trash restore' undoes it).

    An item whose file is still in an ingested folder comes back with the next ingest of that
    folder; move or remove the file to keep it out.
    """
    with ctx.obj.library() as library:
        deleted = library.delete_items(refs)
    if as_json:
        print_json({"deleted": deleted})
        return
    for item in deleted:
        out.print(f"deleted {item['path'] or item['id']} (in the trash)", highlight=False, soft_wrap=True)


@items_app.command("import")
@guarded
def items_import(
    ctx: typer.Context,
    catalogue: Path = typer.Argument(..., help="A .csv/.tsv with a header line, or .jsonl: one item per row."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; store nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Add items known by their metadata alone (movies, artists, products, ads).

    Columns: id (the key interaction logs use), title, description, tags or genres, and any
    others as filterable fields (--filter meta.price<10). The text is encoded and indexed for
    search; rows with problems (no id, duplicate id, not UTF-8, a field over 10,000 characters)
    are counted and listed with their line. Importing again updates what changed; an item's
    collaborative and trained vectors are kept.
    """
    from embedder.cli.common import TerminalProgress

    with ctx.obj.library() as library:
        report = library.import_catalogue(catalogue, dry_run=dry_run, progress=TerminalProgress(quiet or as_json))
    if as_json:
        print_json(report)
        return
    verb = "would import" if dry_run else "imported"
    out.print(
        f"{verb} {report['rows']} rows from {catalogue}: {report['created']} new, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['media_matched']} ingested files given metadata; "
        f"{report['problems']} rows with problems",
        highlight=False,
        soft_wrap=True,
    )
    for column in report["ignored_columns"]:
        out.print(f"  ignored column {column!r}: not a field name (letters, digits, _)", highlight=False)
    for problem in report["problem_examples"]:
        out.print(f"  line {problem['line']}: {problem['reason']}", highlight=False, soft_wrap=True)
    if report["problems"] > len(report["problem_examples"]):
        out.print(f"  ... and {report['problems'] - len(report['problem_examples'])} more (--json counts them by kind)")


@items_app.command("transcript")
@guarded
def items_transcript(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Item id or path."),
    fmt: str = typer.Option("text", "--format", help="text, vtt (WebVTT), srt (SubRip) or json (with word times)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of printing."),
) -> None:
    """What is said in an item, as heard by speech recognition at ingest, with times."""
    from embedder.media.speech import TRANSCRIPT_FORMATS, format_transcript

    if fmt not in TRANSCRIPT_FORMATS:
        raise EmbedderError(f"--format must be one of {', '.join(TRANSCRIPT_FORMATS)}, not '{fmt}'")
    with ctx.obj.library(reading=True) as library:
        text = format_transcript(library.transcript(ref), fmt)
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output}", highlight=False)


@items_app.command("thumbnails")
@guarded
def items_thumbnails(
    ctx: typer.Context,
    redo: bool = typer.Option(False, "--all", help="Make every item's thumbnail again, not only the missing ones."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Make the thumbnails items lack (ingested before thumbnails existed, or with them off).

    Files are decoded again, nothing is encoded, and vectors are not touched.
    """
    from embedder.cli.common import TerminalProgress

    with ctx.obj.library(reading=True) as library:
        report = library.make_thumbnails(redo=redo, progress=TerminalProgress(quiet or as_json))
    if as_json:
        print_json(report)
        return
    out.print(
        f"thumbnails: {report['made']} made, {report['already']} already there, "
        f"{len(report['no_file'])} items without a file on disk, {len(report['failed'])} failed",
        highlight=False,
    )
    for failure in report["failed"]:
        out.print(f"  [red]failed[/red] {failure['path']}: {failure['stage']}: {failure['reason']}", highlight=False)
