"""forget --user: no file under the store (nor the trained head's run) still holds the user's id."""

import json
import random

import pytest

from embedder.errors import EmbedderError
from embedder.ids import user_point_id
from embedder.privacy import forget_user
from embedder.recommend.cf import CFParams, fit_cf, write_cf
from embedder.recommend.collections import open_collections
from embedder.recommend.interactions import Interaction, InteractionLog, default_log_path
from embedder.settings import load_settings
from tests.cli_runner import run_cli

SECRET = "alice-7f3e9b"  # a user id that appears nowhere else


def log_rows():
    rng = random.Random(0)
    rows = [(SECRET, f"item{i}", 3) for i in range(0, 12)]
    rows += [(f"user{u}", f"item{rng.randrange(30)}", rng.randint(1, 9)) for u in range(40) for _ in range(8)]
    return rows


def files_holding(root, needle: bytes) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def test_forget_a_user_everywhere_on_the_embedded_store(tmp_path):
    store, runs = tmp_path / "store", tmp_path / "runs"
    events = tmp_path / "plays.csv"
    events.write_text("user,item,plays\n" + "".join(f"{u},{i},{w}\n" for u, i, w in log_rows()))
    config = tmp_path / "train.toml"
    config.write_text(
        f"[model]\ndim = 8\nhidden = 16\n[optim]\nmax_epochs = 2\nbatch_size = 64\n"
        f'[run]\nout_dir = "{runs}"\nname = "head"\n'
    )
    env = {
        "EMBEDDER_STORE": str(store),
        "EMBEDDER_CF_FACTORS": "8",
        "EMBEDDER_REC_DIM": "8",
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_PRIVACY_KEY": "test-key",
    }
    run_cli("interactions", "import", events, "--weight-col", "plays", env=env)
    run_cli("interactions", "train", env=env)
    run_cli("train", "--config", config, env=env)
    with InteractionLog(store / "interactions.sqlite") as log:  # as if a training had quarantined the user
        log.set_quarantined({SECRET})
    assert files_holding(store, SECRET.encode()) and files_holding(runs, SECRET.encode())  # the traces exist

    record = json.loads(run_cli("forget", "--user", SECRET, "--json", env=env).stdout)
    assert record["events_removed"] == 12 and record["users_point_removed"] and record["cf_retrained"]
    assert record["head_stale"] and len(record["runs_scrubbed"]) == 1 and record["users_versions_dropped"]
    assert files_holding(store, SECRET.encode()) == []  # the log, every collection version, the audit
    assert files_holding(runs, SECRET.encode()) == []
    audit = (store / "privacy-audit.jsonl").read_text()
    assert SECRET not in audit and record["user_hmac"] in audit

    # Afterwards the user is new to every query, and nobody's neighbour.
    recs = json.loads(run_cli("recommend", "--user", SECRET, "--json", env=env).stdout)
    assert recs["used"] == ["popular"]
    similar = json.loads(run_cli("similar-users", "user1", "--limit", "100", "--json", env=env).stdout)
    assert SECRET not in {u["user"] for u in similar["users"]} and len(similar["users"]) == 39
    assert "not in the trained model" in run_cli("similar-users", SECRET, env=env, code=2).stderr
    assert "no trace of that user" in run_cli("forget", "--user", SECRET, env=env, code=2).stderr


@pytest.fixture
def server_world(in_process_server):
    """The log imported and ALS written, on qdrant-client's in-process engine: (settings, events)."""
    settings = load_settings(store=in_process_server, cf_factors=8)
    with InteractionLog(default_log_path(settings)) as log:
        log.add([Interaction(u, i, float(w)) for u, i, w in log_rows()])
        everyone = log.all()
    media, users = open_collections(settings)
    with media, users:
        write_cf(fit_cf(everyone, CFParams(factors=8)), media, users)
    return settings, everyone


def test_forget_on_qdrant_client(server_world):
    settings, _ = server_world
    media, users = open_collections(settings, create=False)
    with media, users:
        assert users.retrieve([user_point_id(SECRET)])
    record = forget_user(settings, SECRET)
    assert (record["events_removed"], record["users_point_removed"]) == (12, True) and record["cf_retrained"]
    media, users = open_collections(settings, create=False)
    with media, users:
        assert users.retrieve([user_point_id(SECRET)]) == [] and users.count() == 40
        assert SECRET not in {r.payload.get("user") for r in users.scroll()}
    with pytest.raises(EmbedderError, match="no trace of that user"):
        forget_user(settings, SECRET)


def test_forget_an_item_in_every_version_and_the_log(tmp_path, media):
    import shutil

    from embedder.encoders.bundle import load_encoders
    from embedder.engine.ingest import run_ingest
    from embedder.engine.reembed import run_reembed
    from embedder.store import open_store

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm", "hevc.mp4"):
        shutil.copy(media[name], lib / name)
    settings = load_settings(
        models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2, cf_factors=4
    )
    run_ingest([lib], settings, encoders=load_encoders(settings))
    with InteractionLog(tmp_path / "store" / "interactions.sqlite") as log:
        log.add(
            [
                Interaction(f"u{u}", str(lib / name), 1.0)
                for u in range(6)
                for name in ("h264.mp4", "tone.mp3", "vp9.webm", "hevc.mp4")[u % 2 : u % 2 + 3]
            ]
        )
        everyone = log.all()
    media_store, users = open_collections(settings)
    with media_store, users:
        write_cf(fit_cf(everyone, CFParams(factors=4)), media_store, users)
    run_reembed(settings.model_copy(update={"clip_model": "tiny-clip-b"}))  # a second version: media_v2
    thumbnails = sorted((tmp_path / "store" / "thumbnails" / "media").glob("*.jpg"))
    assert len(thumbnails) == 4  # made at ingest, one per item (and a folder of segment previews per video)

    record = json.loads(
        run_cli(
            "forget",
            "--item",
            lib / "tone.mp3",
            "--json",
            env={
                "EMBEDDER_STORE": settings.store,
                "EMBEDDER_MODELS": "tiny",
                "EMBEDDER_CLIP_MODEL": "tiny-clip-b",
                "EMBEDDER_CF_FACTORS": "4",
            },
        ).stdout
    )
    assert record["removed_from"] == ["media_v1", "media_v2"] and record["events_removed"] == 6  # every user had it
    assert record["cf_retrained"] and record["files_still_on_disk"] == [str(lib / "tone.mp3")]
    # Qdrant Edge keeps a deleted point's payload in its segment files and write-ahead log, so the
    # current version was copied without it and the older ones (holding it) were dropped.
    assert record["versions_dropped"] == ["media_v1", "media_v2"]
    assert record["thumbnails_removed"] == 1  # the audio's waveform picture is gone too
    assert [t for t in thumbnails if not t.exists()] == [
        tmp_path / "store" / "thumbnails" / "media" / f"{record['item']}.jpg"
    ]
    store_dir = tmp_path / "store"
    assert files_holding(store_dir, b"tone.mp3") == [str(store_dir / "privacy-audit.jsonl")]
    with open_store(settings) as store:
        kept = list(store.scroll(with_vectors=True))
        assert store.collection == "media_v3" and len(kept) == 3
        assert record["item"] not in {r.id for r in kept}
        assert all("cf" in r.vectors and "content" in r.vectors for r in kept)  # every vector came along
    with InteractionLog(tmp_path / "store" / "interactions.sqlite") as log:
        assert str(lib / "tone.mp3") not in {e.item for e in log.all()} and len(log.all()) == 12
    found = json.loads(
        run_cli(
            "search",
            "--like",
            lib / "h264.mp4",
            "--include-self",
            "--json",
            env={"EMBEDDER_STORE": settings.store, "EMBEDDER_MODELS": "tiny", "EMBEDDER_CLIP_MODEL": "tiny-clip-b"},
        ).stdout
    )
    assert len(found["hits"]) == 3 and "tone.mp3" not in json.dumps(found)


def test_forget_an_item_on_qdrant_client(server_world):
    from embedder.ids import item_point_id
    from embedder.privacy import forget_item

    settings, everyone = server_world
    media, users = open_collections(settings, create=False)
    with media, users:
        before = media.count()
        assert media.retrieve([item_point_id("item3")])
    record = forget_item(settings, "item3")
    assert record["events_removed"] == sum(1 for e in everyone if e.item == "item3") > 0 and record["cf_retrained"]
    assert record["versions_dropped"] == []  # a server compacts its own files: the point is deleted in place
    media, users = open_collections(settings, create=False)
    with media, users:
        assert media.retrieve([item_point_id("item3")]) == [] and media.count() == before - 1
