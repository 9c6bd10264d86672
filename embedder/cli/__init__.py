"""The ``embedder`` command line: a thin typer layer over library functions.

Every command accepts ``--json`` for scripts. Errors print one line on stderr (``error: ...``)
and exit 2; set ``EMBEDDER_DEBUG=1`` to get the traceback of an unexpected error.
"""

# Importing the command modules registers their commands, in this order in --help.
from embedder.cli import media  # noqa: F401  isort: skip
from embedder.cli import recommend  # noqa: F401  isort: skip
from embedder.cli import collections  # noqa: F401  isort: skip
from embedder.cli import jobs  # noqa: F401  isort: skip
from embedder.cli import trash  # noqa: F401  isort: skip
from embedder.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
