"""Limits on what one client may write through ``POST /events``: bounded ids, bounded batches,
per-user and per-item write rates, and (by default) no items the store does not know.

Fake feedback arrives through the cheapest door: a script posting thousands of events a second for
one item, or creating items on the fly. These limits are the ones every public write API has; the
values are settings (see :class:`EventLimits`), and each refusal names the setting that refused it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedder.settings import Settings


class LimitExceeded(Exception):
    """A request over one limit. ``status`` is the HTTP status, ``reason`` the metric label."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class EventLimits:
    """The limits of ``POST /events``; 0 turns a rate limit off."""

    max_id_chars: int = 256
    max_events_per_request: int = 1000
    user_events_per_minute: int = 600
    item_events_per_minute: int = 6000
    unknown_items: str = "refuse"  # or "accept": events for items the store does not hold are logged

    @classmethod
    def from_settings(cls, settings: Settings) -> EventLimits:
        return cls(
            settings.max_id_chars,
            settings.max_events_per_request,
            settings.user_events_per_minute,
            settings.item_events_per_minute,
            settings.events_unknown_items,
        )

    def check_batch(self, rows: list) -> None:
        """Refuse a batch that is too big, or that holds an id that is too long (413, 422)."""
        if len(rows) > self.max_events_per_request:
            raise LimitExceeded(
                413,
                "batch",
                f"{len(rows)} events in one request; at most {self.max_events_per_request} (max_events_per_request)",
            )
        for row in rows:
            for key in ("user", "item"):
                value = row.get(key) if isinstance(row, dict) else None
                if value is not None:
                    self.check_id(key, str(value))

    def check_id(self, kind: str, value: str) -> None:
        """Refuse a ``kind`` ("user", "item") id longer than ``max_id_chars`` (422)."""
        if len(value) > self.max_id_chars:
            raise LimitExceeded(
                422, "id_length", f"a {kind} id of {len(value)} characters; at most {self.max_id_chars} (max_id_chars)"
            )


class RateLimiter:
    """Token buckets per key: ``per_minute`` events a minute, bursts up to that many. Kept in
    memory for the busiest ``max_keys`` keys (least recently seen go first); thread-safe."""

    def __init__(self, per_minute: int, max_keys: int = 100_000, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, counts: dict[str, int], commit: bool = True) -> str | None:
        """Take ``counts[key]`` tokens from each key's bucket, all or none; returns the first key
        that has too few (nothing is taken then), or None. ``commit=False`` only looks."""
        if self.capacity <= 0:
            return None
        now = self.clock()
        with self._lock:
            levels = {}
            for key, n in counts.items():
                tokens, when = self._buckets.get(key, (self.capacity, now))
                tokens = min(self.capacity, tokens + (now - when) * self.rate)
                if tokens < n:
                    return key
                levels[key] = tokens - n
            for key, tokens in levels.items() if commit else ():
                self._buckets[key] = (tokens, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return None


class EventGate:
    """Everything ``POST /events`` checks before a batch reaches the library."""

    def __init__(self, limits: EventLimits):
        self.limits = limits
        self.users = RateLimiter(limits.user_events_per_minute)
        self.items = RateLimiter(limits.item_events_per_minute)

    def admit(self, events: list, known_items) -> None:
        """Refuse the batch unless every item is known (``known_items(keys) -> set``, when unknown
        items are refused) and every user and item is within its write rate (422, 429)."""
        keys = sorted({e.item for e in events})
        if self.limits.unknown_items == "refuse":
            unknown = [k for k in keys if k not in known_items(keys)]
            if unknown:
                raise LimitExceeded(
                    422,
                    "unknown_item",
                    f"{len(unknown)} unknown item(s), e.g. '{unknown[0][:80]}': ingest or import them first, "
                    "or set events_unknown_items = 'accept'",
                )
        per_user: dict[str, int] = {}
        per_item: dict[str, int] = {}
        for e in events:
            per_user[e.user] = per_user.get(e.user, 0) + 1
            per_item[e.item] = per_item.get(e.item, 0) + 1
        # Both limits are looked at before either is charged: a refused batch costs nobody tokens.
        if (user := self.users.take(per_user, commit=False)) is not None:
            raise LimitExceeded(
                429,
                "user_rate",
                f"user '{user[:80]}' is over {self.limits.user_events_per_minute} events a minute "
                "(user_events_per_minute)",
            )
        if (item := self.items.take(per_item, commit=False)) is not None:
            raise LimitExceeded(
                429,
                "item_rate",
                f"item '{item[:80]}' is over {self.limits.item_events_per_minute} events a minute "
                "(item_events_per_minute)",
            )
        self.users.take(per_user)
        self.items.take(per_item)
