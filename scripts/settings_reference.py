"""Write docs/settings.md, the settings reference, from the ``Settings`` class itself.

Each field's name, environment variable, type and default come from the class; its description
is the comment written above it (or beside it) in ``embedder/settings.py``, so the reference says
what the code says. ``tests/test_docs.py`` fails when the committed page is out of date.

Usage: .venv/bin/python scripts/settings_reference.py [--check]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "embedder" / "settings.py"
PAGE = ROOT / "docs" / "settings.md"


def fields_with_comments() -> list[dict]:
    """Every annotated field of ``Settings`` in source order, with its comment and annotation."""
    text = SOURCE.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    out, last_end, group = [], cls.body[0].end_lineno, None
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = []
            for number in range(node.lineno - 1, last_end, -1):  # the comment block right above
                line = lines[number - 1].strip()
                if not line.startswith("#"):
                    break
                above.insert(0, line.lstrip("#").strip())
            source_line = lines[node.end_lineno - 1]
            beside = source_line.split("  # ", 1)[1].strip() if "  # " in source_line else ""
            follows = not above and lines[node.lineno - 2].strip() != "" and out and last_end == node.lineno - 1
            if above:
                group = node.target.id
            elif not follows:
                group = None
            out.append(
                {
                    "name": node.target.id,
                    "type": ast.get_source_segment(text, node.annotation),
                    "comment": " ".join(above) or (f"(with `{group}`, above)" if group and follows else ""),
                    "beside": beside,
                }
            )
        last_end = node.end_lineno
    return out


def _default(field) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        return "(computed)"
    if field.default is PydanticUndefined:
        return "(required)"
    value = field.default
    return f"`{value!r}`" if not isinstance(value, str) else f'`"{value}"`'


def render() -> str:
    """The page's text."""
    sys.path.insert(0, str(ROOT))
    from embedder.settings import ENV_PREFIX, Settings

    rows = [
        "# Settings reference",
        "",
        "Generated from `embedder/settings.py` by `scripts/settings_reference.py` (do not edit by hand).",
        "Every setting can come from, highest first: a keyword to `Library.open` or a CLI option, the",
        f"environment (`{ENV_PREFIX}` + the name in capitals), a TOML file (`--config`, or",
        "`EMBEDDER_CONFIG`), the default. A comment describes the fields below it, up to the next one.",
        "",
        "| setting | environment | type | default | what it is |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in fields_with_comments():
        field = Settings.model_fields[f["name"]]
        what = " ".join(x for x in (f["comment"], f["beside"]) if x).replace("|", "\\|")
        kind = f["type"].replace("|", "\\|")
        env = f"`{ENV_PREFIX}{f['name'].upper()}`"
        default = _default(field).replace("|", "\\|")
        rows.append(f"| `{f['name']}` | {env} | `{kind}` | {default} | {what} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if PAGE.exists() and PAGE.read_text() == text else "docs/settings.md is out of date")
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)} ({text.count(chr(10)) - 9} settings)")


if __name__ == "__main__":
    main()
