"""A trained head, loaded from its run directory, turning stored modality vectors into ``rec``
vectors for items it has not seen (new media) or that changed. Used by re-embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embedder.errors import EmbedderError


class TrainedHead:
    """The item tower of a run, with the feature layout and scaling it was trained with."""

    def __init__(self, run_dir: str | Path):
        import torch
        from safetensors.torch import load_file

        from embedder.train.config import TrainConfig
        from embedder.train.model import TwoTower

        self.run_dir = Path(run_dir)
        try:
            config = json.loads((self.run_dir / "config.json").read_text())
            index = json.loads((self.run_dir / "index.json").read_text())
            stats = np.load(self.run_dir / "features.npz")
        except FileNotFoundError as exc:
            raise EmbedderError(f"trained head at {self.run_dir} is incomplete: {exc.filename} is missing") from None
        self.version = config["version"]
        self.feature_names: list[str] = config["feature_names"]
        self.feature_dims: list[int] = config.get("feature_dims", [])
        self.feature_models: dict[str, str] = config.get("feature_models", {})
        self.mean, self.std = stats["mean"], stats["std"]
        cfg = TrainConfig.model_validate(config["train_config"])
        self.items = {key: i for i, key in enumerate(index["items"])}
        self.known = set(index.get("known_items", []))
        self.model = TwoTower(len(index["users"]), len(index["items"]), config["feature_dim"], cfg.model)
        self.model.load_state_dict(load_file(self.run_dir / "model.safetensors"))
        self.model.eval()
        self._torch = torch

    def item_vectors(self, records) -> np.ndarray:
        """``rec`` vectors for stored points (their ``visual``/``audio``/``text`` vectors and item key)."""
        from embedder.train.features import standardise

        torch = self._torch
        n = len(self.feature_names)
        body = sum(self.feature_dims)
        feats = np.zeros((len(records), body + n if n else 0), np.float32)
        ids = np.full(len(records), len(self.items), np.int64)  # the "unknown item" row
        for row, r in enumerate(records):
            start = 0
            for k, (m, size) in enumerate(zip(self.feature_names, self.feature_dims)):
                vec = r.vectors.get(m)
                made_by = (r.payload.get("models") or {}).get(m)
                if vec is not None and made_by != self.feature_models.get(m):
                    raise EmbedderError(
                        f"the head {self.version} was trained on {m} vectors from "
                        f"{self.feature_models.get(m)}, item {r.id} has {made_by}; retrain it with 'embedder train'"
                    )
                if vec is not None:
                    if len(vec) != size:
                        raise EmbedderError(
                            f"item {r.id}: its {m} vector has {len(vec)} dimensions, the head was "
                            f"trained on {size}; retrain it with 'embedder train'"
                        )
                    feats[row, start : start + size] = vec
                    feats[row, body + k] = 1.0
                start += size
            key = r.payload.get("item") or r.payload.get("path")
            if key in self.known:
                ids[row] = self.items[key]
        feats = standardise(feats, n, self.mean, self.std) if n else feats
        with torch.no_grad():
            tower = self.model.items
            out = 0
            if tower.content is not None:
                out = tower.content(torch.from_numpy(feats))
            if tower.ids is not None:
                out = out + tower.ids(torch.from_numpy(ids))
        return out.float().numpy()
