"""Fake-profile detection and quarantine, on a log with injected shilling profiles."""

import json
from collections import Counter

from embedder.ids import item_point_id
from embedder.recommend.interactions import Interaction
from embedder.recommend.suspicious import find_suspicious, without_suspicious
from embedder.settings import load_settings
from embedder.store import open_store
from tests.cli_runner import run_cli
from tests.recommend.test_item_item import random_log

TARGET = "item59"


def attacked_log():
    """120 genuine users, then 8 bandwagon copies (the target and the 10 most popular items) and
    6 random-filler profiles of obscure items nobody else plays."""
    events = random_log(users=120, items=90, per_user=(8, 20), seed=4)
    popular = [item for item, _ in Counter(e.item for e in events).most_common(10)]
    fakes = []
    for n in range(8):
        fakes += [Interaction(f"fake-band-{n}", item, 10.0) for item in [TARGET, *popular]]
    for n in range(6):
        fakes += [Interaction(f"fake-rand-{n}", f"obscure-{n}-{k}", 10.0) for k in range(12)]
        fakes.append(Interaction(f"fake-rand-{n}", TARGET, 10.0))
    return events, fakes


def test_injected_profiles_are_flagged_with_reasons_and_few_genuine_ones():
    events, fakes = attacked_log()
    flagged = find_suspicious(events + fakes)
    found = {s.user for s in flagged}
    fake_users = {e.user for e in fakes}
    assert fake_users <= found  # recall 1
    assert len(found - fake_users) <= 2  # at most 2 of 120 genuine users
    band = next(s for s in flagged if s.user == "fake-band-0")
    assert any(r.startswith("profile nearly copies 5 others") for r in band.reasons)
    assert band.features["items"] == 11 and band.features["copying"] == 1.0
    rand = next(s for s in flagged if s.user == "fake-rand-0")
    assert "items far more obscure than anyone else's" in rand.reasons
    assert [s.score for s in flagged] == sorted((s.score for s in flagged), reverse=True)
    kept, _ = without_suspicious(events + fakes)
    assert not {e.user for e in kept} & fake_users and len(kept) >= len(events) - 40


def test_quarantine_keeps_fake_users_out_of_training(tmp_path):
    events, fakes = attacked_log()
    log = tmp_path / "log.tsv"
    log.write_text("".join(f"{e.user}\t{e.item}\t{e.weight:.3f}\n" for e in events + fakes))
    store = ["--store", str(tmp_path / "store")]
    run_cli(*store, "interactions", "import", log, "--format", "tsv", "--columns", "user,item,weight")
    listed = json.loads(run_cli(*store, "interactions", "suspicious", "--json").stdout)
    assert listed["users"] == 134 and {f"fake-band-{n}" for n in range(8)} <= {s["user"] for s in listed["flagged"]}
    text = run_cli(*store, "interactions", "suspicious", "--limit", "3").stdout
    assert "users flagged" in text and "more (--limit, or --json for all)" in text

    def target_popularity(env):
        run_cli(*store, "interactions", "train", "--model", "ease", "--json", env=env)
        with open_store(load_settings(store=str(tmp_path / "store"))) as media:
            return media.retrieve([item_point_id(TARGET)])[0].payload["popularity"]

    genuine_fans = len({e.user for e in events if e.item == TARGET})
    assert target_popularity({}) == genuine_fans + 14  # undefended: every fake counts
    quarantined = run_cli(
        *store, "interactions", "train", "--model", "rp3beta", env={"EMBEDDER_QUARANTINE_SUSPICIOUS": "true"}
    )
    assert "suspicious users left out" in quarantined.stderr
    as_json = run_cli(
        *store, "interactions", "train", "--model", "ease", "--json", env={"EMBEDDER_QUARANTINE_SUSPICIOUS": "true"}
    )
    assert json.loads(as_json.stdout)["quarantined_users"] >= 14
    assert target_popularity({"EMBEDDER_QUARANTINE_SUSPICIOUS": "true"}) == genuine_fans

    # Real time: a quarantined user's new event is logged but moves no popularity; a genuine one does.
    from embedder.library import Library

    item = next(i for i in sorted({e.item for e in events}) if i not in {e.item for e in fakes})  # new to fakes
    with Library.open(load_settings(store=str(tmp_path / "store"))) as library:
        report = library.record_events([("fake-band-0", item, 5.0), ("fake-band-1", item, 5.0)])
        assert report["added"] == 2 and report["popularity_updated"] == 0 and report["quarantined_users"] == 2
        fans = library.media.retrieve([item_point_id(item)])[0].payload["popularity"]
        genuine = next(e.user for e in events if not any(x.user == e.user and x.item == item for x in events))
        assert library.record_events([(genuine, item, 5.0)])["popularity_updated"] == 1
        assert library.media.retrieve([item_point_id(item)])[0].payload["popularity"] == fans + 1
    # Training with the quarantine off clears it.
    run_cli(*store, "interactions", "train", "--model", "ease")
    with Library.open(load_settings(store=str(tmp_path / "store"))) as library:
        assert library.log.quarantined() == set()
        assert library.record_events([("fake-band-2", item, 5.0)])["popularity_updated"] == 1


def test_accounts_the_last_training_did_not_see_move_popularity_only_from_the_next_one(tmp_path):
    """A burst of new accounts (a live shilling attack through POST /events) moves no popularity
    until 'interactions train' has judged them; known users' events count at once."""
    from embedder.library import Library

    events, _ = attacked_log()
    log = tmp_path / "log.tsv"
    log.write_text("".join(f"{e.user}\t{e.item}\t{e.weight:.3f}\n" for e in events))
    store = ["--store", str(tmp_path / "store")]
    run_cli(*store, "interactions", "import", log, "--format", "tsv", "--columns", "user,item,weight")

    def fans(library, item):
        return library.media.retrieve([item_point_id(item)])[0].payload["popularity"]

    item = sorted({e.item for e in events})[3]
    known = next(u for u in sorted({e.user for e in events}) if not any(e.user == u and e.item == item for e in events))
    settings = load_settings(store=str(tmp_path / "store"))
    with Library.open(settings) as library:
        assert library.log.trained_through() is None and library.log.newcomers(["new-0"]) == set()
    run_cli(*store, "interactions", "train", "--model", "ease")
    with Library.open(settings) as library:
        assert library.log.trained_through() == len(events)  # the newest event the training read
        before = fans(library, item)
        burst = library.record_events([(f"new-{n}", item, 10.0) for n in range(5)])
        assert burst["added"] == 5 and burst["popularity_updated"] == 0 and burst["popularity_deferred_users"] == 5
        assert fans(library, item) == before
        assert library.record_events([(known, item, 5.0)])["popularity_updated"] == 1  # a known user: at once
        assert fans(library, item) == before + 1
    # Everyone counts at once when asked.
    with Library.open(load_settings(store=str(tmp_path / "store"), realtime_popularity="everyone")) as library:
        report = library.record_events([("new-5", item, 10.0)])
        assert report["popularity_updated"] == 1 and "popularity_deferred_users" not in report
        assert fans(library, item) == before + 2
    # The next training counts the newcomers it has now seen, and their next events count at once.
    run_cli(*store, "interactions", "train", "--model", "ease")
    with Library.open(settings) as library:
        assert fans(library, item) == before + 7  # 5 + the known user + new-5
        other = sorted({e.item for e in events})[4]
        assert library.record_events([("new-0", other, 10.0)])["popularity_updated"] == 1


def test_popularity_counts_only_users_with_enough_liked_items(tmp_path):
    """popularity_min_items: throwaway accounts of one or two liked items move no popularity, at
    training or in real time; the event that gives an account its third item counts all three."""
    from embedder.library import Library
    from embedder.recommend.fitting import item_popularity
    from embedder.recommend.interactions import Interaction

    genuine = [Interaction(f"g{u}", f"i{(u + k) % 6}", 1.0) for u in range(6) for k in range(4)]
    fakes = [Interaction(f"f{n}", item, 1.0) for n in range(8) for item in ("target", "i0")]
    counted = item_popularity(genuine + fakes, min_items=3)
    assert "target" not in counted and counted["i0"] == 4  # each genuine user liked 4 of the 6 items
    assert item_popularity(genuine + fakes)["target"] == 8 and item_popularity(genuine + fakes)["i0"] == 12
    assert item_popularity([Interaction("u", "a", -1.0), Interaction("u", "b", 1.0)], 2) == {}  # dislikes count no item

    def fans(library, item):
        return library.media.retrieve([item_point_id(item)])[0].payload["popularity"]

    settings = load_settings(store=str(tmp_path / "store"), popularity_min_items=3, realtime_popularity="everyone")
    with Library.open(settings) as library:
        library.record_events(genuine + fakes)
        library.train_recommender("ease")
        assert fans(library, "target") == 0 and fans(library, "i0") == 4
        popular = [r.item for r in library.recommend("newcomer", limit=7).items]
        assert popular[-1] == "target" and sorted(popular[:6]) == [f"i{n}" for n in range(6)]
        assert library.record_events([("f0", "i1", 1.0)])["popularity_updated"] == 3  # its third item: all three
        assert (fans(library, "target"), fans(library, "i0"), fans(library, "i1")) == (1, 5, 5)
        assert library.record_events([("f1", "i2", 1.0), ("f1", "i3", 1.0)])["popularity_updated"] == 4
        assert library.record_events([("g0", "target", 1.0)])["popularity_updated"] == 1  # counted already: one more
        assert fans(library, "target") == 3
    # Every user counts at 1 (the default).
    with Library.open(load_settings(store=str(tmp_path / "store"))) as library:
        library.train_recommender("ease")
        assert fans(library, "target") == 9 and fans(library, "i0") == 12
