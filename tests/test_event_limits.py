"""POST /events refuses what no honest client sends: huge batches, huge ids, unknown items, and
one account (or one item) writing faster than the limits; each refusal is a JSON error, counted
in /metrics by the limit that refused it."""

import pytest

from embedder.limits import EventGate, EventLimits, LimitExceeded, RateLimiter
from embedder.recommend.interactions import Interaction


def test_token_buckets_refuse_past_the_rate_and_refill_with_time():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert limiter.take({"u": 60}) is None
    assert limiter.take({"u": 1}) == "u"
    now[0] += 5.0
    assert limiter.take({"u": 5}) is None and limiter.take({"u": 1}) == "u"
    assert limiter.take({"v": 10, "u": 1}) == "u" and limiter.take({"v": 60}) is None  # all or none
    assert RateLimiter(0).take({"u": 10**9}) is None  # 0: no limit


def test_a_refused_batch_charges_nobody():
    gate = EventGate(EventLimits(user_events_per_minute=10, item_events_per_minute=5))
    events = [Interaction("u", "a", 1.0)] * 6
    with pytest.raises(LimitExceeded) as refused:
        gate.admit(events, known_items=lambda keys: set(keys))
    assert refused.value.status == 429 and refused.value.reason == "item_rate"
    gate.admit([Interaction("u", "b", 1.0)] * 5, known_items=lambda keys: set(keys))  # u's 10 tokens were not touched
    gate.admit([Interaction("u", "c", 1.0)] * 5, known_items=lambda keys: set(keys))
    with pytest.raises(LimitExceeded, match="user_events_per_minute"):
        gate.admit([Interaction("u", "d", 1.0)], known_items=lambda keys: set(keys))


def test_the_http_api_enforces_every_limit(served):
    client, library, folder, ids = served
    item = ids["tone.mp3"]
    big = client.post("/events", json=[{"user": "u", "item": item}] * 1001)
    assert big.status_code == 413 and "max_events_per_request" in big.json()["error"]
    long_id = client.post("/events", json={"user": "x" * 257, "item": item})
    assert long_id.status_code == 422 and "max_id_chars" in long_id.json()["error"]
    assert client.get("/users/" + "x" * 300 + "/recommendations").status_code == 422
    unknown = client.post("/events", json={"user": "u", "item": "made-up-item"})
    assert unknown.status_code == 422 and "unknown item" in unknown.json()["error"]
    assert client.post("/events", json={"user": "u", "item": item}).json()["added"] == 1  # known: by id
    by_path = client.post("/events", json={"user": "u", "item": library.media.retrieve([item])[0].payload["path"]})
    assert by_path.status_code == 200  # known: by its ingested path
    import os

    os.symlink(folder, folder.parent / "alias")
    linked = client.post("/events", json={"user": "w", "item": str(folder.parent / "alias" / "tone.mp3")})
    assert linked.status_code == 200  # a path through a link joins by the link's target
    assert {e.item for e in library.log.for_user("w")} == {str(folder / "tone.mp3")}  # stored as the store knows it
    burst = [
        client.post("/events", json=[{"user": "spammer", "item": ids["h264.mp4"], "ts": t}] * 100) for t in range(7)
    ]
    assert [r.status_code for r in burst] == [200] * 6 + [429]
    assert "user_events_per_minute" in burst[-1].json()["error"]
    metrics = client.get("/metrics").text
    for reason in ("batch", "id_length", "unknown_item", "user_rate"):
        assert f'embedder_events_refused_total{{reason="{reason}"}} 1.0' in metrics, reason
