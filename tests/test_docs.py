"""The documentation navigates: the README stays short, the index lists every page, every relative
link (and its #heading) resolves, and the settings reference is what the code says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _outside_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", _outside_code(page.read_text()), re.M)}


def test_the_readme_is_short_and_keeps_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "bash scripts/demo.sh" in text and "bash scripts/test.sh" in text


def test_the_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    listed = set(LINK.findall(index))
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in listed]
    assert missing == []


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(_outside_code(page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_settings_reference_matches_the_code():
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr + " (run scripts/settings_reference.py)"
    from embedder.settings import Settings

    text = (DOCS / "settings.md").read_text()
    assert all(f"| `{name}` |" in text for name in Settings.model_fields)
