"""reembed and the collection versions behind the alias."""

from __future__ import annotations

import typer
from rich.markup import escape

from embedder.cli.common import TerminalProgress, app, guarded, out, print_json


@app.command()
@guarded
def reembed(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report stale items and their causes."),
    allow_failures: bool = typer.Option(
        False, "--allow-failures", help="Switch to the new version even if some items failed."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Find stale vectors (model, fusion, content, file gone, head) and rebuild them.

    Model and fusion changes are rebuilt blue-green into the next collection version, then the
    alias switches atomically; searches keep using the old version until then.
    """
    with ctx.obj.library() as library:
        report = library.reembed(
            dry_run=dry_run, allow_failures=allow_failures, progress=TerminalProgress(quiet or as_json)
        )
    if as_json:
        print_json(report)
        return
    causes = ", ".join(f"{k} {v}" for k, v in report["causes"].items()) or "none"
    out.print(f"{report['items']} items in {report['source']}: {report['stale']} stale ({causes})", highlight=False)
    if report["dry_run"]:
        for item in report["stale_items"][:50]:
            out.print(f"  {item['path'] or item['id']}: {', '.join(item['causes'])}", highlight=False)
        return
    if "ingest" in report:
        c = report["ingest"]["counts"]
        out.print(
            f"re-ingested folders: {c['updated']} updated, {c['removed']} removed, {c['failed']} failed",
            highlight=False,
        )
    rebuild = report.get("rebuild")
    if rebuild:
        if rebuild["switched"]:
            out.print(
                f"built {rebuild['target']} ({rebuild['rebuilt']} rebuilt, {rebuild['copied']} copied); "
                f"'{report['collection']}' now points at it; previous: {rebuild['previous']}",
                highlight=False,
            )
        else:
            out.print(f"[yellow]{rebuild['note']}[/yellow]", highlight=False)
        for f in rebuild["failed"]:
            out.print(f"  [red]failed[/red] {f['path']}: {f['stage']}: {f['reason']}", highlight=False)


collections_app = typer.Typer(help="Collection versions behind the alias: list, rollback, drop.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")


@collections_app.command("list")
@guarded
def collections_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection version, its size, and where the aliases point."""
    with ctx.obj.library(reading=True) as library:
        listing = library.collections()
    if as_json:
        print_json(listing)
        return
    for r in listing["collections"]:
        mark = f"  <- {', '.join(r['aliases'])}" if r["aliases"] else ""
        out.print(f"{r['name']}{mark}", highlight=False)


@collections_app.command("rollback")
@guarded
def collections_rollback(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Point the alias back at the previous version (which re-embedding keeps)."""
    with ctx.obj.library() as library:
        moved = library.roll_back()
    if as_json:
        print_json(moved)
    else:
        out.print(f"'{moved['alias']}' now points at {moved['to']} (was {moved['from']})", highlight=False)


@collections_app.command("drop")
@guarded
def collections_drop(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A collection version, e.g. media_v1."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a collection version that no alias points at."""
    ask = None if yes else (lambda: typer.confirm(f"delete collection {name}?"))
    with ctx.obj.library() as library:
        dropped = library.drop_collection(name, confirm=ask)  # refuses a name that is unknown or in use
    if not dropped:
        raise typer.Exit(1)
    for dropped_name in dropped:  # its trash (its removed items) goes with it
        out.print(f"dropped {dropped_name}", highlight=False)


@app.command()
@guarded
def check(
    ctx: typer.Context,
    repair_damage: bool = typer.Option(False, "--repair", help="Delete damaged points and encode their files again."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Verify every point of every collection (each version, trash, users): vectors readable and
    sound, payload complete, aliases and counts; and the interaction log (SQLite integrity check).

    Only the collection searches use is repaired. Exit codes: 0 healthy (or everything found was
    repaired), 3 problems remain, 2 the store
    cannot be opened at all.
    """
    with ctx.obj.library(reading=True) as library:
        result = library.check(repair=repair_damage, progress=TerminalProgress(as_json))
    report = result.main
    data = result.to_dict()
    if as_json:
        print_json(data)
    else:
        for part in (report, *result.others):
            _print_check(part, repaired=part is report)
        log = data["interaction_log"]
        if log["path"]:
            out.print(
                f"interaction log {log['path']}: " + ("healthy" if log["healthy"] else f"[red]{log['problem']}[/red]"),
                highlight=False,
                soft_wrap=True,
            )
        if not result.healthy and not repair_damage:
            out.print(
                "'embedder check --repair' encodes damaged items again; 'embedder snapshot restore' "
                "goes back to a snapshot",
                highlight=False,
            )
    if not result.settled:
        raise typer.Exit(3)


def _print_check(report, repaired: bool) -> None:
    data = report.to_dict()
    out.print(
        f"{data['points']} points read in '{data['collection']}': "
        + (
            "healthy" if report.healthy else f"{len(report.problems)} problems, {data['damaged_points']} damaged points"
        ),
        highlight=False,
    )
    for p in report.problems[:100]:
        out.print(
            f"  [red]{escape(p.path or p.id or 'collection')}[/red]: {escape(p.problem)}",
            highlight=False,
            soft_wrap=True,
        )
    if len(report.problems) > 100:
        out.print(f"  ... and {len(report.problems) - 100} more (--json lists all)", highlight=False)
    if repaired:
        for path in report.repaired:
            out.print(f"  repaired {escape(path)} (encoded again)", highlight=False, soft_wrap=True)
        for u in report.unrepaired:
            out.print(
                f"  [yellow]not repaired[/yellow] {escape(str(u.get('path') or u.get('id')))}: {escape(u['reason'])}",
                highlight=False,
                soft_wrap=True,
            )


snapshot_app = typer.Typer(
    help="Consistent copies of the store to go back to: create, list, restore.", no_args_is_help=True
)
app.add_typer(snapshot_app, name="snapshot")


@snapshot_app.command("create")
@guarded
def snapshot_create(
    ctx: typer.Context,
    label: str = typer.Option("", "--label", help="A word to add to the snapshot's name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy the whole store (all collection versions, trash, aliases, interaction log) while no job writes."""
    with ctx.obj.library() as library:
        made = library.snapshot(label)
    if as_json:
        print_json(made)
        return
    size = f", {made['size_bytes'] / 1e6:.1f} MB" if made.get("size_bytes") is not None else ""
    out.print(
        f"snapshot {made['name']}{size}" + (f" at {made['path']}" if made.get("path") else ""),
        highlight=False,
        soft_wrap=True,
    )


@snapshot_app.command("list")
@guarded
def snapshot_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Snapshots, newest first."""
    with ctx.obj.library() as library:
        found = library.snapshots()
    if as_json:
        print_json({"snapshots": found})
        return
    if not found:
        out.print("no snapshots yet ('embedder snapshot create')")
    for s in found:
        size = f"{s['size_bytes'] / 1e6:.1f} MB" if s.get("size_bytes") is not None else ""
        out.print(
            f"{s['name']}  {size}  {', '.join(s.get('collections') or [s.get('collection', '')])}", highlight=False
        )


@snapshot_app.command("restore")
@guarded
def snapshot_restore(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name from 'embedder snapshot list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Put the store back as it was in a snapshot; its current state is kept as a snapshot first."""
    with ctx.obj.library() as library:
        done = library.restore_snapshot(name)
    if as_json:
        print_json(done)
        return
    out.print(
        f"restored {done['restored']}"
        + (f"; the state before is snapshot {done['previous_state']}" if done.get("previous_state") else ""),
        highlight=False,
    )
