"""Distributed ingest: the same stages as :class:`embedder.engine.stages.LocalExecutor`, as a Ray Data pipeline.

    files (the driver's plan) -> decode, one Ray task per file on CPU workers
                              -> encode + fuse, a pool of actors (GPU actors with ``num_gpus``)
                              -> write, in the driver, into the store

Nothing is copied from the local executor: decode is :attr:`IngestStages.decode` run in an
isolated child process (:class:`embedder.media.isolation.IsolatedRunner`, so a decoder that
crashes or hangs costs one failure record, not a Ray task retry loop or a lost job; Ray reuses
its worker processes from task to task, and each keeps its child for the next file, as the local
executor's decoder processes do); encode is
:func:`embedder.engine.stages.encode_or_split` on an :class:`IngestStages` each actor builds once with
its own encoders; write is :meth:`IngestStages.write`. The plan (content-hash skip, idempotent
point ids) is made before, in the driver, so a killed run is resumed by the next one like a local
one: what was written stays, the rest is still to do.

Decoded items cross the cluster as pickled bytes in Ray's object store (Arrow binary columns),
so decoding and encoding can sit on different nodes; the driver only receives the finished
points. Ray is an optional extra (``pip install .[ray]``), imported only here.
"""

from __future__ import annotations

import json
import logging
import pickle
import time

from embedder.engine.stages import (
    GROUP_MAX_ITEMS,
    IngestStages,
    StageReport,
    counted_units,
    encode_or_split,
    throughput,
)
from embedder.errors import EmbedderError, Failure, MediaError, one_line
from embedder.progress import Progress

_decode_runner = None  # per Ray worker process: its isolated decoder child, kept between tasks


def _runner():
    global _decode_runner
    if _decode_runner is None:
        from embedder.media.isolation import IsolatedRunner

        _decode_runner = IsolatedRunner()
    return _decode_runner


class _Decode:
    """One file -> a row with its decoded item (pickled) or the failure it became."""

    def __init__(self, decode, timeout_s: float):
        self.decode = decode
        self.timeout_s = timeout_s

    def __call__(self, row: dict) -> dict:
        f = pickle.loads(row["file"])
        try:
            item = _runner().run(
                self.decode, pickle.loads(row["args"]), path=str(f.path), stage="decode", timeout_s=self.timeout_s
            )
        except MediaError as exc:
            return {**row, "item": b"", "error": json.dumps([exc.path, exc.stage, exc.reason])}
        return {**row, "item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL), "error": ""}


class _Encode:
    """An encode actor: loads the encoders once, then encodes groups of decoded files.

    ``settings`` and ``options`` are class attributes of a subclass made per run
    (:func:`_encoder_class`): passed as constructor arguments, Ray keeps them in its object store
    and warns on every run that a restarted actor could lose them.
    """

    settings = None
    options = None

    def __init__(self):
        from embedder.encoders.bundle import load_encoders

        self.stages = IngestStages(self.settings, load_encoders(self.settings), None, self.options)

    def __call__(self, batch: dict) -> dict:
        rows, ready = [], []
        for file_bytes, item_bytes, error in zip(batch["file"], batch["item"], batch["error"]):
            if error:  # a decode failure passes through to the driver
                rows.append(_encoded_row(file_bytes, error=error))
            else:
                ready.append((pickle.loads(file_bytes), pickle.loads(item_bytes)))
        started = time.perf_counter()
        results = encode_or_split(self.stages, ready) if ready else []
        share = (time.perf_counter() - started) / max(1, len(results))
        for r in results:
            if r.failure is not None:
                rows.append(
                    _encoded_row(
                        pickle.dumps(r.file), error=json.dumps([r.failure.path, r.failure.stage, r.failure.reason])
                    )
                )
                continue
            frames, windows = counted_units([r.item])
            rows.append(
                _encoded_row(
                    pickle.dumps(r.file),
                    point=pickle.dumps(r.point, protocol=pickle.HIGHEST_PROTOCOL),
                    previews=pickle.dumps(IngestStages.previews([(r.file, r.item)])),
                    warnings=json.dumps(r.item.warnings),
                    frames=frames,
                    windows=windows,
                    encode_s=share,
                )
            )
        return {key: [row[key] for row in rows] for key in _ENCODED_COLUMNS}


_ENCODED_COLUMNS = ("file", "point", "previews", "warnings", "error", "frames", "windows", "encode_s")


def _encoded_row(
    file: bytes,
    *,
    point: bytes = b"",
    previews: bytes = b"",
    warnings: str = "[]",
    error: str = "",
    frames: int = 0,
    windows: int = 0,
    encode_s: float = 0.0,
) -> dict:
    """One file's row out of the encode stage: its point, or the failure (JSON) that replaced it."""
    return {
        "file": file,
        "point": point,
        "previews": previews,
        "warnings": warnings,
        "error": error,
        "frames": frames,
        "windows": windows,
        "encode_s": encode_s,
    }


def _encoder_class(settings, options) -> type:
    """An :class:`_Encode` bound to this run's settings and decode options (pickled with the class)."""
    return type("EmbedderEncoder", (_Encode,), {"settings": settings, "options": options})


def _quiet_ray() -> None:
    """Ray Data logs every execution and draws its own progress bars; ingest has its own."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.ERROR)


def connect(address: str | None) -> dict:
    """Join the Ray cluster at ``address`` (``None``: start a local one), once per process.

    Returns the cluster's resources and node count.
    """
    try:
        import ray
    except ImportError:
        raise EmbedderError(
            "--executor ray needs Ray: pip install 'embedder[ray]' (or pip install 'ray[data]')"
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                include_dashboard=False if address is None else None,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EmbedderError(
                f"cannot join the Ray cluster at {address or 'a new local cluster'}: {one_line(exc, 300)} (a cluster "
                "with token authentication, Ray's default, needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN "
                "or ~/.ray/auth_token)"
            ) from None
    _quiet_ray()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"resources": ray.cluster_resources(), "nodes": len(nodes)}


class RayExecutor:
    """Runs the ingest stages on a Ray cluster (see the module docstring).

    Args:
        address: a Ray cluster (``ray://host:10001`` or ``host:6379``); ``None`` starts a local one.
        encoders: how many encode actors; each loads the models once.
        gpus_per_encoder: GPUs per encode actor (0: CPU actors); decode tasks take one CPU each.
        decode_timeout_s: per file, as in the local executor.
        embedded_store: the run writes an embedded store, which only a one-node cluster may do.
    """

    def __init__(
        self,
        address: str | None,
        *,
        encoders: int = 1,
        gpus_per_encoder: float = 0.0,
        decode_timeout_s: float = 300.0,
        embedded_store: bool = False,
    ):
        self.address = address
        self.encoders = max(1, encoders)
        self.gpus_per_encoder = gpus_per_encoder
        self.decode_timeout_s = decode_timeout_s
        self.embedded_store = embedded_store

    def run(self, stages: IngestStages, files: list, progress: Progress) -> StageReport:
        import ray

        cluster = connect(self.address)
        if self.embedded_store and cluster["nodes"] > 1:
            raise EmbedderError(
                f"the Ray cluster has {cluster['nodes']} nodes, but the store is embedded (one machine's files): "
                "use a Qdrant server store (--store http://HOST:6333) for a multi-node cluster"
            )
        if self.gpus_per_encoder and cluster["resources"].get("GPU", 0) < self.gpus_per_encoder:
            raise EmbedderError(
                f"the Ray cluster has {cluster['resources'].get('GPU', 0):g} GPUs; each encoder "
                f"asks for {self.gpus_per_encoder:g} (--ray-gpus-per-encoder)"
            )
        report = StageReport()
        timings = {"wait_for_decode_s": 0.0, "encode_s": 0.0, "write_s": 0.0}
        counted = {"frames": 0, "audio_windows": 0}
        run_started = time.perf_counter()
        stages.store.pause()
        progress.start(len(files), "ingest (ray)")
        if not files:
            progress.finish()
            report.timings = {**timings, "run_s": 0.0, **counted}
            return report
        rows = [{"file": pickle.dumps(f), "args": pickle.dumps(stages.decode_args(f))} for f in files]
        # One file per block, so decode tasks spread over the cluster from the start.
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        dataset = dataset.map(_Decode(stages.decode, self.decode_timeout_s), num_cpus=1)
        # Different resources than the decode tasks (a fraction of a CPU, or GPUs): Ray keeps the
        # two stages in separate processes instead of fusing decode into the encode actors.
        encode_resources = {"num_gpus": self.gpus_per_encoder} if self.gpus_per_encoder else {"num_cpus": 0.5}
        dataset = dataset.map_batches(
            _encoder_class(stages.settings, stages.options),
            batch_size=GROUP_MAX_ITEMS,
            compute=ray.data.ActorPoolStrategy(size=self.encoders),
            batch_format="numpy",
            **encode_resources,
        )
        pending_points, pending_previews, pending_files = [], {}, []

        def flush():
            if not pending_points:
                return
            started = time.perf_counter()
            stages.write(list(pending_points), dict(pending_previews))
            timings["write_s"] += time.perf_counter() - started
            for path in pending_files:
                progress.advance(path, "ok")
            pending_points.clear()
            pending_previews.clear()
            pending_files.clear()

        try:
            for row in dataset.iter_rows():
                f = pickle.loads(row["file"])
                if row["error"]:
                    path, stage, reason = json.loads(row["error"])
                    report.failed.append(Failure(path, stage, reason))
                    progress.advance(str(f.path), "failed")
                    continue
                timings["encode_s"] += float(row["encode_s"])
                counted["frames"] += int(row["frames"])
                counted["audio_windows"] += int(row["windows"])
                warnings = json.loads(row["warnings"])
                if warnings:
                    report.warnings.append({"path": str(f.path), "warnings": warnings})
                pending_points.append(pickle.loads(row["point"]))
                pending_previews.update(pickle.loads(row["previews"]))
                pending_files.append(str(f.path))
                if len(pending_points) >= GROUP_MAX_ITEMS:
                    flush()
            flush()
        except EmbedderError:
            raise
        except Exception as exc:  # Ray's own failures (a lost node, an actor that cannot start)
            flush()  # what was encoded is kept: the next run resumes from there
            raise EmbedderError(
                f"the Ray pipeline stopped: {one_line(exc, 300)}; what was written is kept, "
                "run the same ingest again to finish"
            ) from None
        progress.finish()
        report.failed.sort(key=lambda f: f.path)
        report.timings = {k: round(v, 3) for k, v in timings.items()}
        # The pipeline overlaps the stages itself (Ray's dashboard shows where it waits).
        report.timings.update(
            throughput(counted, run_started), encoder_wait_share=None, executor="ray", nodes=cluster["nodes"]
        )
        return report


__all__ = ["RayExecutor", "connect"]
