"""The file response that serves what :mod:`embedder.media.access` opened and checked."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi.responses import FileResponse


class OpenedFileResponse(FileResponse):
    """A file response (ranges, ETag, HEAD: Starlette's) that reads a file already opened and
    checked (:mod:`embedder.media.access`), never its path again: a link swapped in after the
    check cannot change what is sent."""

    def __init__(self, file, stat_result: os.stat_result, **kwargs):
        self._file = file
        super().__init__(f"/proc/self/fd/{file.fileno()}", stat_result=stat_result, **kwargs)

    @asynccontextmanager
    async def _open_file(self):
        import anyio

        self._file.seek(0)
        yield anyio.wrap_file(self._file)

    async def __call__(self, scope, receive, send) -> None:
        # "pathsend" would hand the server a path to open again; the descriptor is what was checked.
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._file.close()
