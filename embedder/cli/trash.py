"""The trash: items ingest removed, kept for trash_days so that a removal can be undone."""

from __future__ import annotations

import typer

from embedder.cli.common import app, guarded, out, print_json, short_path
from embedder.errors import EmbedderError

trash_app = typer.Typer(
    help="Items removed by ingest, kept for trash_days: list, restore, empty.", no_args_is_help=True
)
app.add_typer(trash_app, name="trash")


@trash_app.command("list")
@guarded
def trash_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Items in the trash, newest first, with why and when they were removed."""
    with ctx.obj.library(reading=True) as library:
        entries = [e.to_dict() for e in library.trash_entries()]
    if as_json:
        print_json({"items": entries})
        return
    if not entries:
        out.print("the trash is empty")
        return
    for e in entries:
        out.print(
            f"{e['trashed_at']}  {e['id']}  {short_path(e['paths'][0]) if e['paths'] else '-'}  ({e['reason']})",
            highlight=False,
        )
    out.print(f"{len(entries)} items; 'embedder trash restore ID_OR_PATH' puts one back", highlight=False)


@trash_app.command("restore")
@guarded
def trash_restore(
    ctx: typer.Context,
    items: list[str] | None = typer.Argument(None, help="Ids or paths of trashed items."),
    restore_all: bool = typer.Option(False, "--all", help="Restore everything in the trash."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Put removed items back into the collection, with all their vectors.

    A restored item whose file is still missing is removed again by the next ingest of its
    folder (into the trash again), so restore after the files are back, or ingest with --no-delete.
    """
    if bool(items) == restore_all:
        raise EmbedderError("name the items to restore (ids or paths), or give --all")
    with ctx.obj.library() as library:
        restored = library.restore_from_trash(None if restore_all else items)
    if as_json:
        print_json({"restored": [e.to_dict() for e in restored]})
        return
    for e in restored:
        out.print(f"restored {e.paths[0] if e.paths else e.id}", highlight=False)
    out.print(f"{len(restored)} items restored", highlight=False)


@trash_app.command("empty")
@guarded
def trash_empty(
    ctx: typer.Context,
    older_than: float | None = typer.Option(
        None, "--older-than", min=0, help="Only entries removed more than this many days ago."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete items from the trash for good (ingest already purges those older than trash_days)."""
    with ctx.obj.library() as library:
        purged = library.empty_trash(older_than)
    if as_json:
        print_json({"purged": purged})
        return
    out.print(f"{purged} items deleted from the trash", highlight=False)
