"""Every ``embedder`` command the documentation shows is one the command line takes: the command
path exists, every option exists and its value converts, the arguments are the ones it expects,
and every ``EMBEDDER_*`` variable set in front of it is a real setting. The commands are parsed by
the CLI's own click tree (nothing runs); ``test_readme_tour.py`` runs the README's tour itself."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md"]
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"(?<!`)`(embedder [^`]+)`")
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=")


def fenced_commands(text: str) -> list[str]:
    """The ``embedder ...`` command lines of the fenced blocks: continuations joined, comments and
    prompts dropped, pipelines split (``a | b`` is two commands)."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"\s+#.*$", "", line)
            for part in line.split(" | "):
                part = part.strip()
                words = part.split()
                while words and ASSIGNMENT.match(words[0]):
                    words = words[1:]
                if words[:1] == ["embedder"]:
                    found.append(part)
    return found


def _opened(mention: str) -> str:
    """A usage line as a command line: ``[--older-than DAYS]`` -> ``--older-than 1`` (a metavar
    stands for a value the reader picks; 1 converts to a number, a path and a name alike)."""
    mention = re.sub(r"\[([^]]*)\]", r"\1", mention)
    return " ".join("1" if re.fullmatch(r"[A-Z][A-Z_]+", word) else word for word in mention.split())


def doc_commands() -> list[tuple[str, str, bool]]:
    """(page, command, whole) for every command shown: whole command lines in fenced blocks, and
    mentions in inline code spans (``embedder ingest --retry-failed``: the command and the option
    named, the arguments left to the reader; ``[--older-than DAYS]`` usage brackets opened)."""
    shown = []
    for page in PAGES:
        text = page.read_text()
        name = page.relative_to(ROOT).as_posix()
        outside = re.sub(r"```.*?```", "", text, flags=re.S)
        shown += [(name, command, True) for command in fenced_commands(text)]
        shown += [(name, _opened(command), False) for command in INLINE.findall(outside)]
    return shown


def parse(command_line: str) -> list[str]:
    """Parse one command line the way ``embedder`` would, without running it; returns the settings
    it sets in front (``EMBEDDER_X=...``). Raises click's UsageError (or a subclass) where the
    command line would be refused."""
    import typer
    from typer._click.exceptions import UsageError

    from embedder.cli import _plain_flags, app, hoist_global_options

    words = shlex.split(command_line)
    settings = []
    while ASSIGNMENT.match(words[0]):
        settings.append(ASSIGNMENT.match(words[0]).group(1))
        words = words[1:]
    root = typer.main.get_command(app)
    _plain_flags(root)
    args = hoist_global_options(words[1:], root)
    context = root.make_context("embedder", args, resilient_parsing=False)
    command, rest = root, context._protected_args + context.args  # what click's own completion walks
    while hasattr(command, "commands") and rest:
        name, sub, rest = command.resolve_command(context, rest)
        if sub is None:
            raise UsageError(f"no such command {name!r}", context)
        context = sub.make_context(name, list(rest), parent=context)
        command, rest = sub, context._protected_args + context.args if hasattr(sub, "commands") else []
    return settings


SHOWN = doc_commands()


def test_the_docs_show_the_commands_a_user_needs():
    """The harvest works: it finds commands in the README, in fenced blocks and in running text."""
    pages = {page for page, _, _ in SHOWN}
    assert {"README.md", "docs/getting-started.md", "docs/operations.md", "docs/recommendations.md"} <= pages
    commands = {command for _, command, _ in SHOWN}
    assert 'embedder search "a dog on a beach" --limit 5' in commands
    assert "embedder jobs run weekly-retrain" in commands  # one side of 'a | b'
    assert "embedder trash empty --older-than 1" in commands  # '[--older-than DAYS]' opened
    assert len(SHOWN) > 80


@pytest.mark.parametrize(("page", "command", "whole"), SHOWN, ids=[f"{p}:{c[:60]}" for p, c, _ in SHOWN])
def test_every_command_the_docs_show_parses(page, command, whole):
    from typer._click.exceptions import BadOptionUsage, MissingParameter

    from embedder.settings import Settings

    try:
        settings = parse(command)
    except (MissingParameter, BadOptionUsage) as missing:
        # a mention in running text names a command and its options; a command line is whole
        if whole or (isinstance(missing, BadOptionUsage) and "requires an argument" not in missing.message):
            raise
        settings = []
    known = {f"EMBEDDER_{name.upper()}" for name in Settings.model_fields}
    assert [s for s in settings if s.startswith("EMBEDDER_") and s not in known] == []


@pytest.mark.parametrize(
    "command",
    [
        "embedder search dog --limt 5",  # an option that does not exist
        "embedder serch dog",  # a command that does not exist
        "embedder search dog --limit five",  # a value that does not convert
        "embedder interactions train --auto extra",  # an argument it does not take
        "embedder snapshot restore",  # a missing argument
    ],
)
def test_the_check_refuses_what_the_cli_refuses(command):
    from typer._click.exceptions import UsageError

    with pytest.raises(UsageError):
        parse(command)


def test_a_mention_may_leave_out_arguments_but_not_misname_an_option():
    shown = doc_commands()
    assert ("docs/operations.md", "embedder ingest --retry-failed", False) in shown
    with pytest.raises(Exception, match="No such option"):
        parse("embedder ingest --retry-failure")
