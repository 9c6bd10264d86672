"""forget: erase a user's traces (GDPR article 17, CCPA), with an audit record that does not name them."""

from __future__ import annotations

import typer

from embedder.cli.common import app, guarded, out, print_json
from embedder.errors import EmbedderError


@app.command()
@guarded
def forget(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="The user id as in the interaction log."),
    item: str | None = typer.Option(None, "--item", help="An item: id, ingested path, or interaction item key."),
    as_json: bool = typer.Option(False, "--json", help="Print the audit record as JSON."),
) -> None:
    """Remove every trace of a user (--user): events, CF influence (retrained), user vectors in
    every version, their row of the trained head; append an audit record with a keyed hash of the
    id. Or remove an item (--item) from every collection version, the trash, and the log.

    Snapshots taken before still hold the user; the record lists them so they can be deleted.
    """
    if (user is None) == (item is None):
        raise EmbedderError("give --user ID or --item ITEM")
    if item is not None:
        with ctx.obj.library() as library:
            record = library.forget_item(item)
        if as_json:
            print_json(record)
            return
        out.print(
            f"forgot item {record['item']}: removed from {', '.join(record['removed_from']) or 'no collection'}, "
            f"{record['events_removed']} events"
            + (f", CF retrained ({record['cf_retrained']})" if record["cf_retrained"] else ""),
            highlight=False,
        )
        for path in record["files_still_on_disk"]:
            out.print(
                f"[yellow]{path} still exists[/yellow]: the next ingest of its folder adds it again; "
                "move or delete the file",
                highlight=False,
                soft_wrap=True,
            )
        return
    with ctx.obj.library() as library:
        record = library.forget_user(user)
    if as_json:
        print_json(record)
        return
    out.print(
        f"forgot the user (audit hash {record['user_hmac'][:16]}...): {record['events_removed']} events, "
        f"user vector {'removed' if record['users_point_removed'] else 'absent'}, "
        f"CF {'retrained (' + record['cf_retrained'] + ')' if record['cf_retrained'] else 'not trained'}, "
        f"{len(record['runs_scrubbed'])} trained heads scrubbed and marked stale",
        highlight=False,
    )
    if record["snapshots_still_holding_the_user"]:
        out.print(
            f"[yellow]{len(record['snapshots_still_holding_the_user'])} snapshots taken before still hold the "
            "user[/yellow]: delete them, or take new ones and delete the old",
            highlight=False,
        )
