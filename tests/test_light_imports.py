"""`import embedder` and `embedder --help` must stay fast: no torch."""

import subprocess
import sys

CHECK = (
    "import sys; {body}; "
    "heavy = [m for m in ('torch', 'torchaudio', 'decord', 'open_clip', 'transformers') if m in sys.modules]; "
    "print(heavy)"
)


def run(body):
    return subprocess.run([sys.executable, "-c", CHECK.format(body=body)], capture_output=True, text=True, timeout=60)


def test_import_embedder_does_not_import_torch():
    proc = run("import embedder, embedder.settings, embedder.cli, embedder.encoders.registry")
    assert proc.stdout.strip() == "[]", proc.stderr


def test_help_does_not_import_torch():
    body = (
        "from embedder.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; assert 'inspect' in r.output"
    )
    proc = run(body)
    assert proc.stdout.strip() == "[]", proc.stderr
