"""The ``embedder`` command line: a thin typer layer over library functions.

Every command accepts ``--json`` for scripts. Errors print one line on stderr: ``error: ...``
with exit 2 when the run could not proceed, ``usage: ...`` with exit 64 (EX_USAGE) for a command
line that does not parse; set ``EMBEDDER_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import sys

# Importing the command modules registers their commands, in this order in --help.
from embedder.cli import media  # noqa: F401  isort: skip
from embedder.cli import items  # noqa: F401  isort: skip
from embedder.cli import recommend  # noqa: F401  isort: skip
from embedder.cli import collections  # noqa: F401  isort: skip
from embedder.cli import jobs  # noqa: F401  isort: skip
from embedder.cli import trash  # noqa: F401  isort: skip
from embedder.cli import privacy  # noqa: F401  isort: skip
from embedder.cli import serve  # noqa: F401  isort: skip
from embedder.cli.common import app

EX_USAGE = 64  # sysexits.h: the command was used incorrectly (2 stays "could not proceed")


def _walk(command):
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub)


def _plain_flags(root) -> None:
    """Show flags as flags in --help: typer labels every option with its type, '--json <bool>'
    read as if it took a value."""
    for command in _walk(root):
        for param in command.params:
            if getattr(param, "is_flag", False):
                param.metavar = ""

        def help_option(ctx, _make=command.get_help_option):  # built per call by click: patch the result
            option = _make(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = help_option


def hoist_global_options(args: list[str], root) -> list[str]:
    """Move global options given after the subcommand (``embedder status --store X``) in front of
    it, where click expects them; an option the subcommand defines itself (``train --config``) stays."""
    takes_value = {}
    for param in root.params:
        for opt in param.opts + param.secondary_opts:
            takes_value[opt] = not getattr(param, "is_flag", False)
    head, rest, command, i = [], [], root, 0
    while i < len(args):  # global options before the subcommand, then the subcommand path
        arg = args[i]
        name = arg.split("=", 1)[0]
        if name in takes_value and command is root:
            head.append(arg)
            if takes_value[name] and "=" not in arg and i + 1 < len(args):
                head.append(args[i + 1])
                i += 1
        elif hasattr(command, "commands") and arg in command.commands:
            command = command.commands[arg]
            rest.append(arg)
        else:
            break
        i += 1
    own = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    tail = args[i:]
    j = 0
    while j < len(tail):
        arg = tail[j]
        if arg == "--":
            rest.extend(tail[j:])
            break
        name = arg.split("=", 1)[0]
        if name in takes_value and name not in own:
            head.append(arg)
            if takes_value[name] and "=" not in arg and j + 1 < len(tail):
                head.append(tail[j + 1])
                j += 1
        else:
            rest.append(arg)
        j += 1
    return head + rest


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import typer

    # typer 0.29 (pinned) vendors click; its exceptions live here, not in the click package.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    command = typer.main.get_command(app)
    _plain_flags(command)
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv), command)
    try:
        code = command.main(args, prog_name="embedder", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # 'embedder' or 'embedder trash' alone: the help, as asked
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        code = 0
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "embedder"
        message = " ".join(exc.format_message().split())
        typer.echo(f"usage: {message} (see '{where} --help')", err=True)
        code = EX_USAGE
    except typer.Abort:
        typer.echo("interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "hoist_global_options", "main"]
