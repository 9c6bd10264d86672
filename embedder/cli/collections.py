"""reembed and the collection versions behind the alias."""

from __future__ import annotations


import typer

from embedder.cli.common import app, guarded, out, print_json, TerminalProgress
from embedder.errors import EmbedderError


@app.command()
@guarded
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
                         progress=TerminalProgress(quiet or as_json))
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
@guarded
def collections_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection version, its size, and where the aliases point."""
    from embedder.store.catalog import open_catalog

    catalog = open_catalog(ctx.obj.settings())
    aliases = catalog.aliases()
    rows = [{"name": n, "aliases": sorted(a for a, t in aliases.items() if t == n)} for n in catalog.collections()]
    if as_json:
        print_json({"aliases": aliases, "collections": rows})
        return
    for r in rows:
        mark = f"  <- {', '.join(r['aliases'])}" if r["aliases"] else ""
        out.print(f"{r['name']}{mark}", highlight=False)


@collections_app.command("rollback")
@guarded
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
        print_json({"alias": settings.collection, "from": current, "to": older[-1]})
    else:
        out.print(f"'{settings.collection}' now points at {older[-1]} (was {current})", highlight=False)


@collections_app.command("drop")
@guarded
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
