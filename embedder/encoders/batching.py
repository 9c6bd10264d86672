"""Concurrent text queries share encoder batches; repeated ones are answered from a cache.

A server answers many small queries at once. Encoding each alone leaves the encoder's batch
dimension unused, so :class:`QueryBatcher` lets the first caller encode whatever queries have
arrived (a leader), while the others wait for their row. Nothing waits for a timer: at
concurrency 1 a query is encoded at once, under load the batches grow by themselves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class _Pending:
    __slots__ = ("text", "done", "result", "error", "lead")

    def __init__(self, text: str):
        self.text = text
        self.done = threading.Event()  # set when the result is there, or when this caller is to lead
        self.result = None
        self.error: BaseException | None = None
        self.lead = False


class QueryBatcher:
    """``encode_query`` with batching and an LRU cache, over an :class:`~embedder.encoders.bundle.Encoders`.

    Args:
        encoders: what encodes (its ``encode_queries`` takes a list of texts).
        max_batch: the most queries one encoder call takes.
        cache_size: distinct query texts remembered (0: no cache).
        on_batch: called with each batch's size (a metrics hook).
    """

    def __init__(
        self, encoders, max_batch: int = 32, cache_size: int = 1024, on_batch: Callable[[int], None] | None = None
    ):
        self.encoders = encoders
        self.max_batch = max_batch
        self.cache_size = cache_size
        self.on_batch = on_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        self._cache: OrderedDict[str, dict] = OrderedDict()

    def __getattr__(self, name: str):
        # model_ids, dims, ...: the wrapped encoders' (search checks the vector space with them)
        return getattr(self.encoders, name)

    def encode_query(self, text: str) -> dict:
        """``text`` in every block's space: modality -> unit vector (as ``Encoders.encode_query``)."""
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
            mine = _Pending(text)
            self._queue.append(mine)
            if not self._leading:  # nobody is encoding: this caller does
                self._leading = mine.lead = True
        while True:
            if mine.lead:
                mine.lead = False
                mine.done.clear()
                self._encode_one_batch()  # mine is the oldest queued query, so it is in this batch
            mine.done.wait()
            if not mine.lead:
                break
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _encode_one_batch(self) -> None:
        """Encode the oldest queued queries, then hand the lead to the oldest still waiting (so
        no caller keeps encoding other callers' queries after its own answer is ready)."""
        with self._lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        texts = list(dict.fromkeys(p.text for p in batch))
        rows, error = {}, None
        try:
            rows = dict(zip(texts, self.encoders.encode_queries(texts)))
        except BaseException as exc:  # every waiter gets the error, none hangs
            error = exc
        if self.on_batch is not None and error is None:
            self.on_batch(len(texts))
        with self._lock:
            for text, row in rows.items():
                if self.cache_size:
                    self._cache[text] = row
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].done.set()
            else:
                self._leading = False
        for p in batch:
            p.result, p.error = rows.get(p.text), error
            p.done.set()
