"""Nothing hidden in text output: skipped and missing paths are named, a missing path is an error."""

import json
import shutil

from tests.cli_runner import run_cli


def cli(*args, env, code=0):
    return run_cli(*args, env=env, code=code)


def test_ingest_names_skipped_and_missing_paths_and_exits_2(tmp_path, media):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(media["tone.wav"], lib / "tone.wav")
    (lib / "zero.mp4").write_bytes(b"")
    (lib / "notes.mp4").write_text("not a video\n")
    (lib / "tone.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1"}
    typo = tmp_path / "libb"
    proc = cli("ingest", lib, typo, env=env, code=2)
    assert "1 new" in proc.stdout
    assert f"skipped {lib / 'zero.mp4'}: empty file" in proc.stdout
    assert f"skipped {lib / 'notes.mp4'}: not audio or video (content: text)" in proc.stdout
    assert f"skipped {typo}: does not exist" in proc.stdout
    assert "1 sidecar text files read with their media files" in proc.stdout
    assert proc.stderr.strip().endswith(f"error: not found: {typo} (the other paths were ingested)")
    data = json.loads(cli("ingest", lib, typo, "--json", env=env, code=2).stdout)
    assert data["missing"] == [str(typo)] and data["counts"]["unchanged"] == 1


def test_inspect_of_a_missing_path_exits_2(tmp_path, media):
    proc = cli("--models", "tiny", "inspect", media["tone.wav"], tmp_path / "nope.mp4", env={}, code=2)
    assert "1 ok, 0 failed, 1 skipped" in proc.stdout
    progress, error = proc.stderr.strip().splitlines()  # a line per file while it works, then the one error
    assert progress == f"[1/1] ok: {media['tone.wav']}" and error == f"error: not found: {tmp_path / 'nope.mp4'}"


def test_control_characters_and_brackets_in_names_are_printed_escaped_on_one_line(tmp_path, media):
    """The campaign's case: a file name with a newline was printed raw, splitting a log record."""
    lib = tmp_path / "lib"
    (lib / "d[").mkdir(parents=True)
    (lib / "d[" / "red]").mkdir()
    shutil.copy(media["tone.wav"], lib / "bad\nname[x]\x1b[31m.wav")
    shutil.copy(media["truncated.mp4"], lib / "d[" / "red]" / "e.mp4")  # a path holding '[/red]'
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1"}
    proc = cli("ingest", lib, env=env)
    text = proc.stdout + proc.stderr
    assert "\x1b" not in text
    assert f"new: {lib}/bad\\nname[x]\\x1b[31m.wav" in proc.stdout
    assert f"failed {lib}/d[/red]/e.mp4: probe:" in proc.stdout
    assert all(
        line.startswith(("  ", "[", "ingested", "time", "throughput", "store", "loading", "1 media", "2 media"))
        for line in text.splitlines()
    ), text
    hits = cli("search", "a tone", env=env).stdout
    assert "bad\\nname[x]" in hits and "\x1b" not in hits


def test_read_only_commands_create_nothing_where_no_store_is(tmp_path, media):
    """The campaign's case: a typo in --store made a store; 'status --store ./media' dropped a lock
    file into the media folder. Both are one line and exit 2 now, and nothing is written."""
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(media["tone.wav"], folder / "tone.wav")
    typo = tmp_path / "nonexistent" / "dir" / "x"
    for store in (typo, folder):
        for args in (
            ("search", "dog"),
            ("status",),
            ("recommend", "--user", "u"),
            ("similar", "x"),
            ("similar-users", "u"),
            ("items", "list"),
            ("check",),
            ("collections", "list"),
            ("trash", "list"),
            ("interactions", "stats"),
        ):
            proc = cli("--models", "tiny", *args, "--store", store, env={}, code=2)
            assert proc.stderr.strip() == (
                f"error: no store at {store}; run 'embedder ingest' first, or check --store (or EMBEDDER_STORE)"
            ), (args, proc.stderr)
    assert not (tmp_path / "nonexistent").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["tone.wav"]
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1"}
    cli("ingest", folder, env=env)  # a writer creates the store; readers then answer
    assert json.loads(cli("status", "--json", env=env).stdout)["points"] == 1
