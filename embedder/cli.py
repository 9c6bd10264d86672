"""The ``embedder`` command line: a thin typer layer over library functions.

Every command accepts ``--json`` for scripts. Errors print one line on stderr (``error: ...``)
and exit 2; set ``EMBEDDER_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from embedder.errors import EmbedderError

app = typer.Typer(
    name="embedder",
    help="Turn a library of video and audio files into searchable, recommendable vectors in Qdrant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


class _Context:
    """Global flags, turned into settings on first use (so --help never builds them)."""

    def __init__(self, config: Optional[Path], overrides: dict[str, Any]):
        self.config = config
        self.overrides = overrides

    def settings(self, **more: Any):
        from embedder.settings import load_settings

        return load_settings(self.config, **{**self.overrides, **more})


def _guarded(fn: Callable) -> Callable:
    """Turn errors into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except EmbedderError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback for debugging
            if os.environ.get("EMBEDDER_DEBUG"):
                raise
            err.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                "(set EMBEDDER_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _global(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config file (else $EMBEDDER_CONFIG or ./embedder.toml)."),
    store: Optional[str] = typer.Option(None, "--store", help="Store directory, or http(s) URL of a Qdrant server (env EMBEDDER_STORE)."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection name (env EMBEDDER_COLLECTION)."),
    models: Optional[str] = typer.Option(None, "--models", help="Model preset: default or tiny (env EMBEDDER_MODELS)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (env EMBEDDER_DEVICE)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Decoder processes (env EMBEDDER_WORKERS)."),
) -> None:
    """Settings precedence: defaults < config file < EMBEDDER_* environment < these flags."""
    ctx.obj = _Context(
        config, {"store": store, "collection": collection, "models": models, "device": device, "workers": workers}
    )


@app.command()
@_guarded
def inspect(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    sampling: Optional[str] = typer.Option(None, "--sampling", help="uniform or scene."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frames per second in uniform mode."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Cap on frames per item."),
) -> None:
    """Show what ingest would do with each file: probe facts, decoder, frames, audio windows, text."""
    from embedder.inspect import inspect_paths

    settings = ctx.obj.settings(sampling=sampling, video_fps=fps, max_frames=max_frames)
    reports = inspect_paths(paths, settings)
    if as_json:
        _print_json(reports)
        return
    for r in reports:
        _print_inspect(r)
    ok = sum(r["status"] == "ok" for r in reports)
    out.print(f"{ok} ok, {sum(r['status'] == 'failed' for r in reports)} failed, "
              f"{sum(r['status'] == 'skipped' for r in reports)} skipped")


def _print_inspect(r: dict) -> None:
    status = r["status"]
    colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[status]
    out.print(f"[bold]{r['path']}[/bold]  [{colour}]{status}[/{colour}]", highlight=False)
    if status != "ok":
        out.print(f"  {r['stage']}: {r['reason']}", highlight=False)
        return
    p = r["probe"]
    out.print(f"  {r['kind']}, {p['format']}, {p['duration']:.2f}s, {r['size']} bytes", highlight=False)
    for v in p["video"]:
        mark = "*" if v["index"] == p["best_video_index"] else " "
        extra = (" VFR" if v["variable_frame_rate"] else "") + (f" {v['bit_depth']}-bit" if v["bit_depth"] else "")
        out.print(f"  {mark}video #{v['index']}: {v['codec']} {v['width']}x{v['height']} @ {v['fps']:.3f} fps{extra}", highlight=False)
    for a in p["audio"]:
        out.print(f"   audio #{a['index']}: {a['codec']} {a['sample_rate']} Hz, {a['channels']} ch", highlight=False)
    for s in p["subtitles"]:
        out.print(f"   subtitles #{s['index']}: {s['codec']} {s['language'] or ''}", highlight=False)
    v = r["video"]
    if v:
        fb = f" (fallback: {v['fallback_reason']})" if v["fallback_reason"] else ""
        ts = ", ".join(f"{t:.2f}" for t in v["timestamps"])
        out.print(f"  frames: {v['frames']} via {v['decoder']}{fb} at [{ts}] s", highlight=False)
    a = r["audio"]
    out.print(f"  audio windows: {a['windows'] if a else 0}", highlight=False)
    out.print(f"  text ({r['text']['source']}): {r['text']['text'][:100]}", highlight=False)
    for w in r.get("warnings") or []:
        out.print(f"  [yellow]warning:[/yellow] {w}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
