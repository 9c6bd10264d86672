"""The two-tower head: learns, stops early, keeps encoders frozen, checkpoints, resumes, APR."""

import json

import numpy as np
import pytest
import torch

from embedder.recommend.interactions import Interaction
from embedder.train.config import load_train_config
from embedder.train.data import build_training_data
from embedder.train.loop import batch_loss, train


def communities(n_groups=8, users=10, items=10):
    """Users like most items of their own community and nothing else: a learnable task where a
    uniformly sampled negative is rarely a hidden positive."""
    events = []
    for g in range(n_groups):
        names = [f"g{g}-i{i}" for i in range(items)]
        for u in range(users):
            events += [Interaction(f"g{g}-u{u}", it, 1.0) for i, it in enumerate(names) if (i + u) % 5]
    return events


def config(**overrides):
    base = {
        "model.dim": 8,
        "model.hidden": 16,
        "optim.batch_size": 32,
        "optim.max_epochs": 12,
        "optim.lr": 0.02,
        "optim.patience": 2,
        "run.seed": 0,
    }
    return load_train_config(None, **{**base, **overrides})


@pytest.fixture
def data():
    return build_training_data(communities(), val_fraction=0.25, seed=0)


def test_config_file_and_errors(tmp_path):
    from pathlib import Path

    from embedder.errors import SettingsError

    shipped = load_train_config(Path(__file__).resolve().parents[2] / "pipelines" / "configs" / "train.toml")
    assert shipped == load_train_config(None)  # the shipped file spells out the defaults
    path = tmp_path / "t.toml"
    path.write_text('[loss]\nkind = "bpr"\nnegatives = 8\n[adversarial]\nenabled = true\n')
    cfg = load_train_config(path)
    assert (cfg.loss.kind, cfg.loss.negatives, cfg.adversarial.enabled, cfg.model.dim) == ("bpr", 8, True, 64)
    path.write_text('[loss]\nkind = "mse"\n')
    with pytest.raises(SettingsError, match="training config: 'loss.kind': Input should be 'bce', 'bpr' or 'softmax'"):
        load_train_config(path)


def test_loss_decreases_and_the_task_is_learnt(data, tmp_path):
    result = train(data, config(), tmp_path / "run")
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.75 * losses[0] and min(losses) == min(losses[2:])
    # block structure: validation items are the user's community's other items
    assert result.best_ndcg > 0.6
    assert (tmp_path / "run" / "model.safetensors").is_file()
    r = result.robustness
    assert r["ndcg_clean"] == pytest.approx(result.best_ndcg, abs=1e-4)
    assert r["ndcg_adversarial"] < r["ndcg_clean"]  # the worst case always costs something
    assert r["relative_drop_adversarial"] == pytest.approx(1 - r["ndcg_adversarial"] / r["ndcg_clean"], abs=1e-4)


def test_early_stopping_triggers(data, tmp_path):
    # a learning rate so high that validation NDCG stops improving quickly
    result = train(data, config(**{"optim.lr": 5.0, "optim.max_epochs": 30, "optim.patience": 2}), tmp_path / "run")
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 2 < 30


def test_resume_gives_the_same_result_as_an_uninterrupted_run(data, tmp_path):
    full = train(data, config(**{"optim.max_epochs": 6}), tmp_path / "full")
    part = train(data, config(**{"optim.max_epochs": 3}), tmp_path / "part")
    assert len(part.history) == 3
    resumed = train(data, config(**{"optim.max_epochs": 6}), tmp_path / "part", resume=True)
    assert resumed.history == full.history
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip(data, tmp_path):
    from safetensors.torch import load_file

    from embedder.train.loop import all_vectors, training_context
    from embedder.train.model import TwoTower

    cfg = config(**{"optim.max_epochs": 2})
    train(data, cfg, tmp_path / "run")
    state = json.loads((tmp_path / "run" / "last" / "state.json").read_text())
    assert state["epoch"] == 2
    m1 = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model)
    m1.load_state_dict(load_file(tmp_path / "run" / "model.safetensors"))
    m2 = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model)
    m2.load_state_dict(load_file(tmp_path / "run" / "best" / "model.safetensors"))
    ctx = training_context(data, "cpu")
    np.testing.assert_array_equal(
        all_vectors(m1, ctx, len(data.users), len(data.items))[1],
        all_vectors(m2, ctx, len(data.users), len(data.items))[1],
    )
    opt = torch.load(tmp_path / "run" / "last" / "optimizer.pt", weights_only=True)  # safe loading works
    assert "optimizer" in opt


def test_adversarial_option_changes_the_loss(data):
    from embedder.train.loop import training_context
    from embedder.train.model import TwoTower

    cfg_plain, cfg_apr = config(), config(**{"adversarial.enabled": True, "adversarial.epsilon": 0.5})
    torch.manual_seed(0)
    model = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg_plain.model)
    model.eval()  # no dropout: the two losses see the same network
    ctx = training_context(data, "cpu")
    users, items = torch.as_tensor(data.train_pairs[:16, 0]), torch.as_tensor(data.train_pairs[:16, 1])
    negs = torch.as_tensor(data.trainable_items[:4]).repeat(16, 1)
    plain, clean_a, adv_a = batch_loss(model, ctx, users, items, negs, cfg_plain)
    total, clean_b, adv_b = batch_loss(model, ctx, users, items, negs, cfg_apr)
    assert adv_a is None and torch.isclose(clean_a, clean_b)
    assert adv_b > clean_b  # the perturbation is adversarial: it raises the loss
    assert torch.isclose(total, clean_b + adv_b)


def test_frozen_encoders_are_unchanged_and_the_head_is_small(tmp_path, media):
    """Training reads stored modality vectors; the encoders that made them never change."""
    from embedder.encoders.bundle import load_encoders
    from embedder.engine.ingest import run_ingest
    from embedder.settings import load_settings
    from embedder.store import open_store

    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "s"), workers=2, max_frames=2, rec_dim=8)
    encoders = load_encoders(settings)
    before = {(n, k): v.clone() for n, m in enumerate(encoders.models) for k, v in m.model.state_dict().items()}
    assert len(encoders.models) == 2  # CLIP serves visual and text, CLAP audio: each loaded once
    names = ["h264.mp4", "vp9.webm", "tone.mp3", "tone.wav", "hevc.mp4", "scene.mp4"]
    run_ingest([media[n] for n in names], settings, encoders=encoders)
    events = [Interaction(f"u{u}", str(media[names[(u + k) % 6]]), 1.0) for u in range(6) for k in range(3)]
    with open_store(settings) as store:
        data = build_training_data(events, store, val_fraction=0.34, seed=0)
    assert data.feature_dim == 64 * 3 + 3 and data.feature_names == ["visual", "audio", "text"]
    result = train(data, config(**{"model.item_id_embedding": False, "optim.max_epochs": 3}), tmp_path / "run")
    after = {(n, k): v for n, m in enumerate(encoders.models) for k, v in m.model.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before)
    backbone = sum(v.numel() for v in before.values())
    assert result.head_parameters < 0.05 * backbone  # "a few percent" at most, even next to the tiny encoders


def test_a_refit_without_validation_reports_no_ndcg_rather_than_zero(tmp_path):
    refit = build_training_data(communities(), val_fraction=0.0, seed=0)
    result = train(refit, config(**{"optim.max_epochs": 2}), tmp_path / "run")
    assert [r["val_ndcg@10"] for r in result.history] == [None, None]  # was 0.0: read as a collapsed model
    from embedder.train.loop import learning_curve

    learning_curve(result.history, tmp_path / "curve.png", 10)  # the plot leaves the unknown points out
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_the_cf_start_with_content_is_als_on_warm_items_and_content_on_cold_ones(tmp_path):
    """With content features, the cf start (epoch 0) scores warm users and items exactly as ALS,
    and cold items through the content mapped into the ALS space: a cold item ranks first for its
    own community among the cold items. Early stopping keeps that start when no epoch beats it."""
    import dataclasses

    from safetensors.torch import load_file

    from embedder.recommend.cf import CFParams
    from embedder.train.data import cf_factors
    from embedder.train.loop import all_vectors, training_context
    from embedder.train.model import TwoTower

    cold = [f"g{g}-i1" for g in range(8)]  # item 1 of every community: liked by most, held out
    events = [e for e in communities() if e.item not in cold]
    data = build_training_data(events, val_fraction=0.25, seed=0, extra_items=cold)
    group = np.array([int(item.split("-")[0][1:]) for item in data.items])
    noise = np.random.default_rng(0).normal(0, 0.05, (len(data.items), 8)).astype(np.float32)
    data = dataclasses.replace(data, features=np.eye(8, dtype=np.float32)[group] + noise)
    users_cf, items_cf = cf_factors(data, CFParams(iterations=30), 8, seed=0)
    cfg = config(**{"optim.max_epochs": 1, "optim.lr": 1e-9})  # an epoch that cannot beat the start
    result = train(data, cfg, tmp_path / "run", init_factors=(users_cf, items_cf))
    assert result.best_epoch == 0 and result.history[0]["epoch"] == 0
    model = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model)
    model.load_state_dict(load_file(tmp_path / "run" / "model.safetensors"))
    users, items = all_vectors(model, training_context(data, "cpu"), len(data.users), len(data.items))
    warm = data.trainable_items
    np.testing.assert_allclose(items[warm], items_cf[warm], atol=1e-5)
    np.testing.assert_allclose(users, users_cf, atol=1e-5)
    cold_index = [data.items.index(item) for item in cold]
    assert np.abs(items[cold_index]).sum() > 0  # the start leaves cold items zero no more
    scores = users @ items[cold_index].T
    own = np.array([int(user.split("-")[0][1:]) for user in data.users])
    assert (scores.argmax(axis=1) == own).mean() >= 0.9
