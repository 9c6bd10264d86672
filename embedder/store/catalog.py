"""Collections and aliases of one store: what blue-green re-embedding switches between.

A logical name (``media``) is an alias for a physical, versioned collection (``media_v1``,
``media_v2``, ...). Searches open the alias; a rebuild fills the next version and then moves the
alias in one atomic step, so a reader sees the old collection or the new one, never a mixture.
Qdrant servers have aliases; for the embedded store the same semantics come from an
``aliases.json`` file replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError, StoreError

if TYPE_CHECKING:
    from embedder.settings import Settings

ALIASES_FILE = "aliases.json"


def version_name(logical: str, version: int) -> str:
    return f"{logical}_v{version}"


def versions_of(logical: str, names: list[str]) -> list[tuple[int, str]]:
    """``[(version, physical name)]`` of a logical collection, oldest first."""
    pattern = re.compile(rf"{re.escape(logical)}_v(\d+)")
    return sorted((int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n)))


class Catalog(ABC):
    """The physical collections and the aliases of one store."""

    @abstractmethod
    def collections(self) -> list[str]:
        """Physical collection names."""

    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """Alias -> physical collection."""

    @abstractmethod
    def switch_alias(self, alias: str, target: str) -> None:
        """Point ``alias`` at ``target`` atomically (readers never see neither or both)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Delete a physical collection."""

    def resolve(self, logical: str) -> tuple[str, bool]:
        """(physical name, whether it exists). A name that is neither alias nor collection maps to
        its first version, to be created (and aliased) on first write."""
        aliases = self.aliases()
        if logical in aliases:
            return aliases[logical], True
        if logical in self.collections():
            return logical, True
        return version_name(logical, 1), False

    def next_version(self, logical: str) -> str:
        found = versions_of(logical, self.collections())
        return version_name(logical, (found[-1][0] if found else 0) + 1)

    def listing(self) -> dict:
        """``aliases`` (alias -> collection) and ``collections``: each physical collection with
        the aliases that point at it (``embedder collections list``)."""
        aliases = self.aliases()
        rows = [{"name": n, "aliases": sorted(a for a, t in aliases.items() if t == n)} for n in self.collections()]
        return {"aliases": aliases, "collections": rows}

    def roll_back(self, logical: str) -> dict:
        """Point ``logical`` at the newest version older than the one it points at now (which
        re-embedding keeps). Returns ``alias``, ``from`` and ``to``.

        Raises:
            EmbedderError: there is no earlier version.
        """
        current = self.aliases().get(logical)
        older = [
            name
            for version, name in versions_of(logical, self.collections())
            if name != current and (current is None or version < int(current.rsplit("_v", 1)[-1]))
        ]
        if not older:
            raise EmbedderError(f"no earlier version of '{logical}' to roll back to (current: {current})")
        self.switch_alias(logical, older[-1])
        return {"alias": logical, "from": current, "to": older[-1]}

    def drop_unused(self, name: str, trash_suffix: str, confirm: Callable[[], bool] | None = None) -> list[str]:
        """Delete the collection version ``name``, which no alias may point at, with its trash
        (``name + trash_suffix``, its removed items). ``confirm``, when given, is asked once the
        checks have passed; a no drops nothing. Returns what was dropped.

        Raises:
            EmbedderError: no such collection, or an alias points at it.
        """
        if name not in self.collections():
            raise EmbedderError(f"no collection named '{name}'")
        users = [alias for alias, target in self.aliases().items() if target == name]
        if users:
            raise EmbedderError(f"'{name}' is in use by alias {', '.join(users)}; roll back or re-embed first")
        if confirm is not None and not confirm():
            return []
        self.drop(name)
        dropped = [name]
        if name + trash_suffix in self.collections():
            self.drop(name + trash_suffix)
            dropped.append(name + trash_suffix)
        return dropped


class EdgeCatalog(Catalog):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def collections(self) -> list[str]:
        from embedder.store.edge import EDGE_VECTOR_DIMS_FILE

        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / EDGE_VECTOR_DIMS_FILE).is_file())

    def aliases(self) -> dict[str, str]:
        path = self.root / ALIASES_FILE
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"cannot read {path}: {exc}; 'embedder snapshot restore' goes back to a snapshot "
                "(or remove the file: the collection's first version answers again)"
            ) from None

    def switch_alias(self, alias: str, target: str) -> None:
        if target not in self.collections():
            raise StoreError(f"cannot point alias '{alias}' at '{target}': no such collection in {self.root}")
        data = {**self.aliases(), alias: target}
        tmp = self.root / f".{ALIASES_FILE}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / ALIASES_FILE)  # atomic on POSIX: readers see old or new file
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def drop(self, name: str) -> None:
        from embedder.store.edge import EdgeStore

        store = EdgeStore(self.root, name)  # takes the collection's lock: refuses while in use
        store.close()
        shutil.rmtree(self.root / name)
        lock = self.root / f".{name}.lock"
        lock.unlink(missing_ok=True)


class ServerCatalog(Catalog):
    def __init__(self, client):
        self.client = client

    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def switch_alias(self, alias: str, target: str) -> None:
        from qdrant_client import models

        ops = []
        if alias in self.aliases():
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=alias))
        )
        self.client.update_collection_aliases(change_aliases_operations=ops)  # one request: atomic on the server

    def drop(self, name: str) -> None:
        self.client.delete_collection(name)


def open_catalog(settings: Settings) -> Catalog:
    """The catalog of ``settings.store``."""
    if settings.is_server:
        from embedder.store.server import ServerStore

        return ServerCatalog(ServerStore.connect(settings, collection="_").client)
    return EdgeCatalog(settings.store)
