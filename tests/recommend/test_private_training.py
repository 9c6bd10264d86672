"""Differentially private training of the head (DP-SGD with Opacus, the user as the unit)."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from embedder.errors import SettingsError
from embedder.recommend.interactions import Interaction
from embedder.train.config import load_train_config
from embedder.train.dpsgd import privacy_delta
from embedder.train.fit import train_head
from tests.cli_runner import run_cli


def topic_world(groups=4, users=100, items=10):
    """Each user likes 7 of their own group's 10 items and nothing else."""
    events = []
    for g in range(groups):
        for u in range(users):
            events += [Interaction(f"g{g}-u{u}", f"g{g}-i{i}", 1.0) for i in range(items) if (i + u) % items < 7]
    return events


def dp_config(**overrides):
    base = {
        "model.dim": 8,
        "model.hidden": 16,
        "optim.batch_size": 64,
        "optim.max_epochs": 6,
        "run.seed": 0,
        "privacy.epsilon": 50.0,
        "privacy.positives_per_user": 4,
    }
    return load_train_config(None, **{**base, **overrides})


def test_dp_run_spends_its_budget_learns_the_topics_and_keeps_no_user_parameter(tmp_path):
    events = topic_world()
    result, data, users, items, _, metrics = train_head(events, dp_config(), run_dir=tmp_path / "run")
    p = metrics["privacy"]
    assert p["unit"] == "user" and p["users"] == 400
    assert 0.9 * 50 <= p["epsilon"] <= 50.0 + 1e-6  # the accountant spends (almost) exactly the target
    assert p["delta"] == pytest.approx(min(1e-5, 0.1 / 400)) == privacy_delta(dp_config(), 400)
    assert p["noise_multiplier"] > 0.1 and p["steps"] >= 6 * 5  # about 1/q = 400/64 steps per epoch
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, 7))
    assert metrics["best_epoch"] == 6 and metrics["refit_epochs"] is None  # the last epoch, no refit under DP
    # The released model holds no per-user row: every tensor is sized by items or by the model.
    shapes = {name: t.shape for name, t in load_file(tmp_path / "run" / "model.safetensors").items()}
    assert not any(len(data.users) in shape for shape in shapes.values()), shapes
    assert shapes["users.items.weight"] == (len(data.items) + 1, 8)
    # Even with the noise, each user's own topic outranks the others: mean score gap on unseen items.
    scores = users @ items.T
    group_of_item = np.asarray([int(it.split("-")[0][1:]) for it in data.items])
    own, other = [], []
    for u, name in enumerate(data.users):
        g = int(name.split("-")[0][1:])
        own.append(scores[u, group_of_item == g].mean())
        other.append(scores[u, group_of_item != g].mean())
    hits = np.mean(np.asarray(own) > np.asarray(other))
    assert hits > 0.9, hits


def test_smaller_epsilon_means_more_noise(tmp_path):
    events = topic_world(groups=2, users=60)
    sigmas = {}
    for eps in (1.0, 8.0):
        *_, metrics = train_head(
            events, dp_config(**{"privacy.epsilon": eps, "optim.max_epochs": 2}), run_dir=tmp_path / f"eps{eps}"
        )
        assert metrics["privacy"]["epsilon"] <= eps + 1e-6
        sigmas[eps] = metrics["privacy"]["noise_multiplier"]
    assert sigmas[1.0] > 2 * sigmas[8.0] > 0


def test_dp_settings_that_would_leak_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="training config: model.init = 'cf' starts from ALS factors"):
        dp_config(**{"model.init": "cf"})
    with pytest.raises(SettingsError, match="adversarial training is not supported together with DP"):
        dp_config(**{"adversarial.enabled": True})
    cfg = dp_config()
    assert (cfg.model.user_tower, cfg.model.user_id_embedding, cfg.model.init) == ("history", False, "random")
    assert load_train_config(None).model.user_tower == "ids"  # no DP: the usual towers


def test_cli_train_with_dp_epsilon_reports_the_budget_and_serves_the_head(tmp_path):
    store = tmp_path / "store"
    log = tmp_path / "events.csv"
    log.write_text("user,item\n" + "".join(f"{e.user},{e.item}\n" for e in topic_world(groups=2, users=30)))
    run_cli("--store", store, "interactions", "import", log)
    run = run_cli("--store", store, "train", "--dp-epsilon", "6", "--max-epochs", "2", "--json")
    summary = json.loads(run.stdout)
    p = summary["metrics"]["privacy"]
    assert p["target_epsilon"] == 6 and 5.4 <= p["epsilon"] <= 6 and p["delta"] == pytest.approx(1e-5)
    assert summary["written"]["users"] == 60
    rec = json.loads(
        run_cli("--store", store, "recommend", "--user", "g0-u0", "--strategy", "trained", "--json").stdout
    )
    assert rec["used"] == ["trained"] and rec["items"]
    text = run_cli("--store", store, "train", "--dp-epsilon", "6", "--max-epochs", "1", "--no-write")
    assert "spent of 6" in text.stdout and "Warning" not in text.stderr
    bad = run_cli("--store", store, "train", "--dp-epsilon", "6", "--adversarial", code=2)
    assert "not supported together with DP" in bad.stderr and "Traceback" not in bad.stderr
