"""items: list, page through and delete what a collection holds."""

from __future__ import annotations

import typer

from embedder.cli.common import app, guarded, out, print_json, short_path

items_app = typer.Typer(
    help="What the collection holds: list and page through items, delete them.", no_args_is_help=True
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
    from embedder.items import list_items
    from embedder.payload import parse_filters
    from embedder.store import open_store

    settings = ctx.obj.settings(reading=True)
    with open_store(settings) as store:
        page = list_items(store, offset=offset, limit=limit, filter=parse_filters(filters) or None)
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
    from embedder.items import delete_items
    from embedder.jobs_lock import job_lock
    from embedder.store import open_store

    settings = ctx.obj.settings()
    with job_lock(settings, "items delete"), open_store(settings) as store:
        deleted = delete_items(settings, store, refs)
    if as_json:
        print_json({"deleted": deleted})
        return
    for item in deleted:
        out.print(f"deleted {item['path'] or item['id']} (in the trash)", highlight=False, soft_wrap=True)


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
    from embedder.backfill import make_missing_thumbnails
    from embedder.cli.common import TerminalProgress
    from embedder.store import open_store

    settings = ctx.obj.settings(reading=True)
    with open_store(settings) as store:
        report = make_missing_thumbnails(settings, store, TerminalProgress(quiet or as_json), redo=redo)
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
