"""The ingest stages behind one interface, and the local executor that runs them.

Like clip-retrieval's reader -> mapper -> writer, a run is:

1. discover and plan (``embedder.engine.ingest.plan_ingest``): which files need work;
2. decode (:attr:`IngestStages.decode` applied to :meth:`IngestStages.decode_args`): a top-level
   function and picklable arguments, so any executor can run it in another process or machine;
3. encode and fuse (:meth:`IngestStages.encode`): decoded items -> points with vectors and payload;
4. write (:meth:`IngestStages.write`): points into the store.

An :class:`Executor` decides where and how concurrently each stage runs. :class:`LocalExecutor`
decodes in isolated worker processes on this machine while this process encodes one group and a
writer thread stores the previous one; :class:`~embedder.engine.ray_executor.RayExecutor` calls the
same stage methods on a Ray cluster without copying them.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from embedder.encoders.runtime import batch_size_for
from embedder.errors import Failure, one_line
from embedder.fusion import FUSION_VERSION, MODALITIES, item_weights
from embedder.lexical import DEFAULT_AVG_LEN, LEXICAL, average_length, lexical_fields, words_payload
from embedder.media.decode import DecodedItem, decode_item
from embedder.media.discover import DiscoveredFile
from embedder.media.text import name_text
from embedder.payload import MediaPayload, location_fields
from embedder.progress import Progress
from embedder.store import PointRecord, VectorStore, point_id

GROUP_MAX_ITEMS = 16  # decoded items encoded together; bounds memory while filling batches


def build_payload(
    f: DiscoveredFile, item: DecodedItem, encoders, weights: dict[str, float], segmenting: dict | None = None
) -> MediaPayload:
    """What a point records about its file, and what produced its vectors (provenance).

    ``segmenting``: the cutting rule's stamp, stored with the segments when the item has them.
    """
    present = [m for m in MODALITIES if m in item.modalities]
    moments = (
        {} if not item.segments else {"segments": [s.to_payload() for s in item.segments], "segmenting": segmenting}
    )
    return {
        # where: path, paths, dirs, mtimes (which let the next run skip re-hashing unchanged files) and
        # identities (which serving checks before it reads a file again)
        **location_fields([str(f.path)], {str(f.path): f.identity().to_dict()}),
        "sha256": f.sha256,
        "size": f.size,
        "duration": round(item.info.duration, 3),
        "kind": item.info.kind,
        "modalities": present,
        "models": {m: encoders.model_ids[m] for m in present},
        "fusion": {"version": FUSION_VERSION, "weights": item_weights(present, weights)},
        "text": item.text.text[:500],
        "text_source": item.text.source,
        "frames": [] if item.frames is None else item.frames.timestamps,
        "audio_windows": 0 if item.audio is None else len(item.audio.windows),
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **said_and_written(str(f.path), item),
        **moments,
    }


def said_and_written(path: str, item: DecodedItem) -> MediaPayload:
    """The payload keys of an item's words: ``words`` (title, text, subtitle lines), the speech
    model that listened (``none`` when none did) and its ``transcript`` when there is one."""
    out: MediaPayload = {
        "words": words_payload(name_text(Path(path)), item.text.text, item.text.source, item.subtitle_cues),
        "speech_model": item.transcript.model if item.transcript is not None else "none",
    }
    if item.transcript is not None:
        out["transcript"] = item.transcript.to_payload()
    return out


@dataclass
class IngestStages:
    """The decode, encode and write stages of one run, bound to its settings, encoders and store.

    ``options``: the decode options, when the run has chosen them already (a distributed run's
    driver, which loads no encoders; its encode workers get the driver's, and have no store).
    """

    settings: object
    encoders: object
    store: VectorStore | None
    options: object = None

    def __post_init__(self):
        import dataclasses

        from embedder.embedding import decode_options

        if self.options is None:
            self.options = decode_options(self.settings, self.encoders)
        # Lexical vectors go in only where the collection has the sparse vector (a Qdrant server
        # collection made before lexical search may not), written with the collection's current
        # average length; the end of the run corrects drift (embedder.lexical.refresh).
        self.lexical_avg_len = None
        if self.store is not None and LEXICAL in self.store.sparse_names():
            self.lexical_avg_len = average_length(self.store.scroll()) or DEFAULT_AVG_LEN
        if self.store is not None and self.options.segments.enabled and not self.store.has_vector("segments"):
            # A collection made before moments (or with them off) has nowhere to put segment
            # vectors: cut nothing until 'embedder reembed' rebuilds it.
            self.options = dataclasses.replace(
                self.options, segments=dataclasses.replace(self.options.segments, enabled=False)
            )

    # A plain module-level function, so that it pickles into worker processes.
    decode = staticmethod(decode_item)

    def decode_args(self, f: DiscoveredFile) -> tuple:
        """The (picklable) arguments of :attr:`decode` for ``f``."""
        return (str(f.path), self.options)

    def encode(self, batch: list[tuple[DiscoveredFile, DecodedItem]]) -> list[PointRecord]:
        """Encode and fuse a group of decoded files in shared batches; one point per file."""
        from embedder.embedding import embed_items

        weights = self.settings.fusion_weights
        stamp = self.options.segments.stamp()
        vectors = embed_items([item for _, item in batch], self.encoders, weights, self.settings.batch_size)
        points = [
            PointRecord(point_id(f.sha256), v.named(), build_payload(f, item, self.encoders, weights, stamp))
            for (f, item), v in zip(batch, vectors)
        ]
        if self.lexical_avg_len is not None:
            for point in points:
                named, fields = lexical_fields(point.payload, self.settings.text_language, self.lexical_avg_len)
                point.vectors.update(named)
                point.payload.update(fields)
        return points

    @staticmethod
    def previews(batch: list[tuple[DiscoveredFile, DecodedItem]]) -> dict[str, tuple[bytes | None, list | None]]:
        """The thumbnails the decoders made (the item's, and its segments'), by point id."""
        return {
            point_id(f.sha256): (item.thumbnail, item.segment_thumbnails)
            for f, item in batch
            if item.thumbnail or item.segment_thumbnails
        }

    def write(self, points: list[PointRecord], previews: dict[str, tuple] | None = None) -> None:
        """Store the points and their thumbnails, then let readers of an embedded store in until
        the next write."""
        from embedder.media.thumbnail import ThumbnailStore

        self.store.upsert(points)  # a store error stops the run: nothing can be written anyway
        thumbnails = ThumbnailStore(self.settings.thumbnails_dir)
        for pid, (jpeg, moments) in (previews or {}).items():
            if jpeg:
                thumbnails.put(pid, jpeg)
            if moments:
                thumbnails.put_moments(pid, moments)
        self.store.pause()


@dataclass
class Encoded:
    """One decoded file after the encode stage: its point, or the failure that replaced it."""

    file: DiscoveredFile
    item: DecodedItem
    point: PointRecord | None = None
    failure: Failure | None = None


def encode_or_split(stages: IngestStages, batch: list[tuple[DiscoveredFile, DecodedItem]]) -> list[Encoded]:
    """Encode a group in shared batches; if the group fails, encode its files one by one to find
    the one that breaks it, so the others are still stored (every executor encodes through this)."""
    try:
        points = stages.encode(batch)
    except Exception as exc:
        if len(batch) > 1:
            return [done for one in batch for done in encode_or_split(stages, [one])]
        f, item = batch[0]
        return [Encoded(f, item, failure=Failure(str(f.path), "encode", one_line(exc, 200)))]
    return [Encoded(f, item, point=p) for (f, item), p in zip(batch, points)]


def counted_units(items: list[DecodedItem]) -> tuple[int, int]:
    """(frames, audio windows) the encoders were given for these items."""
    return (
        sum(0 if i.frames is None else len(i.frames.timestamps) for i in items),
        sum(0 if i.audio is None else len(i.audio.windows) for i in items),
    )


def throughput(counted: dict, started: float) -> dict:
    """The run's wall time and units per second since ``started`` (``time.perf_counter``), for
    every executor's report: which side bounds a run is read from these."""
    wall = max(round(time.perf_counter() - started, 3), 0.001)
    return {
        "run_s": wall,
        **counted,
        "frames_per_s": round(counted["frames"] / wall, 2),
        "audio_windows_per_s": round(counted["audio_windows"] / wall, 2),
    }


@dataclass
class StageReport:
    """What an executor reports: failed files (stage and reason), decode warnings, where time went."""

    failed: list[Failure] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


class BackgroundWriter:
    """Runs write jobs in order on one thread, so the next group encodes while this one is stored.

    At most one job waits behind the one being written: a slow store holds back the encoder
    instead of letting encoded groups pile up in memory. The first job that raises stops the
    writing; :meth:`close` (and the next :meth:`submit`) raise it in the caller's thread. Jobs
    submitted before an error in the caller are still written by :meth:`close`: nothing encoded
    is dropped.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self.write_s = 0.0  # time spent writing (on the writer thread)
        self.wait_s = 0.0  # time the caller waited for the writer (high: writing bounds the run)
        self._thread = threading.Thread(target=self._loop, name="embedder-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is not None:
                continue  # a store that failed once is not written to again in this run
            started = time.perf_counter()
            try:
                job()
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc
            self.write_s += time.perf_counter() - started

    def _raise(self) -> None:
        # Kept, not cleared: the writer thread reads it to skip every later job.
        if self._error is not None:
            raise self._error

    def submit(self, job) -> None:
        """Queue ``job`` (a callable); waits while the writer is a job behind."""
        self._raise()
        started = time.perf_counter()
        self._jobs.put(job)
        self.wait_s += time.perf_counter() - started

    def close(self, raise_error: bool = True) -> None:
        """Wait until every queued job is written, then raise the first error, if any (not when
        the caller is already handling an error of its own: ``raise_error=False``)."""
        self._jobs.put(None)
        self._thread.join()
        if raise_error:
            self._raise()


@runtime_checkable
class Executor(Protocol):
    """Runs a run's stages over its files: what :func:`embedder.engine.ingest.run_ingest` hands the
    work to. Both executors implement it; a new one (another cluster framework) only needs this."""

    def run(self, stages: IngestStages, files: list[DiscoveredFile], progress: Progress) -> StageReport:
        """Decode, encode and write ``files`` through ``stages``, reporting each file to
        ``progress``. A file that fails is reported in :attr:`StageReport.failed`, never raised;
        what was written before an error stays written."""
        ...


class LocalExecutor:
    """Decodes in isolated worker processes, encodes here, and writes on a writer thread: the
    three overlap.

    At most ``2 * workers`` decoded files wait for the encoder (the isolation layer's bound), and
    one encoded group waits for the writer, so memory stays flat whichever side is slowest. A
    group that fails to encode is split to find the one file that breaks it; the others are
    still stored.
    """

    def __init__(self, workers: int, decode_timeout_s: float):
        self.workers = workers
        self.decode_timeout_s = decode_timeout_s

    def run(self, stages: IngestStages, files: list[DiscoveredFile], progress: Progress) -> StageReport:
        from embedder.media.isolation import map_isolated

        by_path = {str(f.path): f for f in files}
        report = StageReport()
        # Where the time goes (clip-retrieval reports the same split): waiting for decoders means the
        # encoder is starved; encode time dominating means decoding keeps up.
        timings = {"wait_for_decode_s": 0.0, "encode_s": 0.0}
        counted = {"frames": 0, "audio_windows": 0}  # what the encoders were given
        run_started = time.perf_counter()
        writer = BackgroundWriter()
        reporting = threading.Lock()  # the writer thread and this one both report progress

        def stored(results: list[Encoded]) -> None:  # runs on the writer thread
            done = [(r.file, r.item) for r in results if r.point is not None]
            if done:
                stages.write([r.point for r in results if r.point is not None], stages.previews(done))
            with reporting:
                for r in results:
                    if r.failure is not None:
                        report.failed.append(r.failure)
                        progress.advance(str(r.file.path), "failed")
                        continue
                    if r.item.warnings:
                        report.warnings.append({"path": str(r.file.path), "warnings": r.item.warnings})
                    progress.advance(str(r.file.path), "ok")

        def encode_and_write(batch):
            started = time.perf_counter()
            results = encode_or_split(stages, batch)
            timings["encode_s"] += time.perf_counter() - started
            frames, windows = counted_units([r.item for r in results if r.point is not None])
            counted["frames"] += frames
            counted["audio_windows"] += windows
            writer.submit(lambda: stored(results))

        stages.store.pause()
        progress.start(len(files), "ingest")
        tasks = [(str(f.path), stages.decode_args(f)) for f in files]
        results = map_isolated(stages.decode, tasks, workers=self.workers, timeout_s=self.decode_timeout_s)
        group: list[tuple[DiscoveredFile, DecodedItem]] = []
        batch_size = batch_size_for(stages.settings.batch_size, stages.encoders.device)
        try:
            while True:
                waited = time.perf_counter()
                result = next(results, None)
                timings["wait_for_decode_s"] += time.perf_counter() - waited
                if result is None:
                    break
                if result.error is not None:
                    with reporting:
                        report.failed.append(Failure.from_error(result.error))
                        progress.advance(result.key, "failed")
                    continue
                group.append((by_path[result.key], result.value))
                frames = sum(0 if i.frames is None else len(i.frames.timestamps) for _, i in group)
                if len(group) >= GROUP_MAX_ITEMS or frames >= 4 * batch_size:
                    encode_and_write(group)
                    group = []
            if group:
                encode_and_write(group)
        except BaseException:
            writer.close(raise_error=False)  # what was encoded is stored, even when the run stops early
            raise
        writer.close()
        progress.finish()
        report.failed.sort(key=lambda f: f.path)
        timings["write_s"] = writer.write_s
        timings["wait_for_write_s"] = writer.wait_s
        report.timings = {k: round(v, 3) for k, v in timings.items()}
        # Which side bounds the run: frames and windows per second of the whole run, and the share
        # of it the encoder spent waiting for decoded files (high: decoding is the bound).
        report.timings.update(throughput(counted, run_started))
        report.timings["encoder_wait_share"] = round(timings["wait_for_decode_s"] / report.timings["run_s"], 3)
        return report
