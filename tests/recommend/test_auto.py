"""'interactions train --auto': every model tuned on validation, the best served by default."""

import json

from embedder.recommend.auto import FALLBACK, choose_model, resolve_strategy, why_served
from embedder.recommend.cf import CFParams
from embedder.recommend.itemitem import KINDS, ItemItemParams
from embedder.recommend.tune import coordinate_search
from tests.cli_runner import run_cli
from tests.recommend.test_item_item import random_log


def test_the_choice_is_the_best_validation_score_of_every_tuned_model():
    events = random_log(users=60)
    choice = choose_model(
        events,
        cf=CFParams(factors=4, iterations=5),
        item_item={kind: ItemItemParams(kind) for kind in KINDS},
        candidates=("cf", "ease", "itemknn"),
        seed=1,
    )
    scores = [c["validation_ndcg@10"] for c in choice["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert choice["chosen"] == choice["candidates"][0]["strategy"]
    assert {c["strategy"] for c in choice["candidates"]} == {"cf", "ease", "itemknn"}
    assert (
        resolve_strategy("auto", None) == FALLBACK == "hybrid" and resolve_strategy("cf", {"strategy": "ease"}) == "cf"
    )


def test_coordinate_search_widens_a_grid_whose_best_is_at_its_edge():
    # A score that peaks at x = 37: the grid [1, 2, 4] is widened upward until 37 is inside.
    search = coordinate_search(CFParams(), {"alpha": [1.0, 2.0, 4.0]}, lambda p: -abs(p.alpha - 37.0))
    assert search.best.alpha == 32.0 and search.at_edge == []
    tried = sorted(p.alpha for p in search.scored)
    assert tried == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    # A peak beyond every widening is reported, not hidden.
    far = coordinate_search(CFParams(), {"alpha": [1.0, 2.0]}, lambda p: p.alpha)
    assert far.at_edge == ["alpha"] and far.best.alpha == 32.0
    # Categorical settings are compared, never widened.
    weighting = coordinate_search(CFParams(), {"weighting": ["log1p", "bm25"]}, lambda p: p.weighting == "bm25")
    assert weighting.best.weighting == "bm25" and len(weighting.scored) == 2


def test_cli_auto_records_the_choice_and_recommend_serves_it(tmp_path):
    log = tmp_path / "log.tsv"
    log.write_text("".join(f"{e.user}\t{e.item}\t{e.weight:.3f}\n" for e in random_log(users=60)))
    store = ["--store", str(tmp_path / "store")]
    run_cli(*store, "interactions", "import", log, "--format", "tsv", "--columns", "user,item,weight")
    before = json.loads(run_cli(*store, "status", "--json").stdout)
    assert before["recommend_default"].startswith("hybrid (the default until")
    result = json.loads(
        run_cli(*store, "interactions", "train", "--auto", "--candidates", "cf,ease,rp3beta", "--json").stdout
    )
    record = result["record"]
    chosen = record["strategy"]
    assert chosen in ("cf", "ease", "rp3beta") and len(record["candidates"]) == 3
    assert record["validation_ndcg@10"] == max(c["validation_ndcg@10"] for c in record["candidates"])
    assert "cf" in result["stored"]  # ALS is stored whatever wins: hybrid and the fold-in read it
    status = json.loads(run_cli(*store, "status", "--json").stdout)
    assert status["recommend_default"] == why_served(record)
    served = json.loads(run_cli(*store, "recommend", "--user", "user03", "--json").stdout)
    assert served["strategy"] == chosen and served["used"] == [chosen] and served["chosen_by"] == why_served(record)
    text = run_cli(*store, "recommend", "--user", "user03", "--explain").stdout
    assert f"strategy {chosen}: {chosen} (" in text and "best validation ndcg@10" in text
    table = run_cli(*store, "interactions", "train", "--auto", "--candidates", "ease,itemknn").stdout
    assert "(chosen)" in table and "recommend serves:" in table
    bad = run_cli(*store, "interactions", "train", "--auto", "--candidates", "ease,slim", code=2)
    assert "--candidates may name cf, ease, rp3beta, itemknn, not slim" in bad.stderr
