"""The command line behaves as typer users expect: global options anywhere, one-line usage errors
with their own exit code, flags shown as flags."""

import typer

from embedder.cli import EX_USAGE, app, hoist_global_options
from tests.cli_runner import run_cli


def run(*args, env=None):
    return run_cli(*args, env=env, code=None, timeout=120)


def test_global_options_are_moved_in_front_unless_the_command_owns_them():
    root = typer.main.get_command(app)
    assert hoist_global_options(["status", "--store", "/s", "--json"], root) == ["--store", "/s", "status", "--json"]
    assert hoist_global_options(["trash", "list", "--store=/s", "--collection", "c"], root) == [
        "--store=/s",
        "--collection",
        "c",
        "trash",
        "list",
    ]
    # 'train' has its own --config (the training config): it stays with train.
    assert hoist_global_options(["train", "--config", "t.toml", "--models", "tiny"], root) == [
        "--models",
        "tiny",
        "train",
        "--config",
        "t.toml",
    ]
    assert hoist_global_options(["--store", "/s", "search", "x", "--", "--store"], root) == [
        "--store",
        "/s",
        "search",
        "x",
        "--",
        "--store",
    ]


def test_status_takes_the_store_after_the_subcommand(tmp_path):
    proc = run("status", "--store", tmp_path / "s", "--json")
    assert proc.returncode == 2 and f"no store at {tmp_path / 's'}" in proc.stderr  # the flag was read, nothing made
    assert not (tmp_path / "s").exists()


def test_usage_errors_are_one_line_with_exit_64():
    proc = run("serch", "x")
    assert proc.returncode == EX_USAGE == 64
    assert proc.stderr.splitlines() == [
        "usage: No such command 'serch'. Did you mean 'search', 'serve'? (see 'embedder --help')"
    ]
    proc = run("search", "x", "--limit", "0")
    assert proc.returncode == 64 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("usage: Invalid value for '--limit' / '-n'")
    assert "╭" not in proc.stderr and "Traceback" not in proc.stderr


def test_help_shows_flags_without_a_type_and_no_args_shows_help():
    out = run("search", "--help").stdout
    json_line = next(line for line in out.splitlines() if "--json" in line)
    assert "<bool>" not in json_line and "<bool>" not in out
    assert "<int" in next(line for line in out.splitlines() if "--limit" in line)  # options with values keep theirs
    bare = run()
    assert bare.returncode == 0 and "Usage: embedder" in bare.stdout


def test_the_samples_script_has_a_help_and_makes_no_folder_named_help(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "embedder.samples", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 0 and "usage: python -m embedder.samples" in proc.stdout and not proc.stderr
    assert list(tmp_path.iterdir()) == []
