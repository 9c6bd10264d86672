"""The training job's configuration: a TOML file validated into typed sections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embedder.errors import SettingsError
from embedder.settings import read_toml


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    dim: int = Field(64, ge=2, le=1024)  # output size of both towers (the stored "rec" vectors)
    hidden: int = Field(256, ge=4, le=8192)
    dropout: float = Field(0.1, ge=0, lt=1)
    item_id_embedding: bool = True  # warm items also learn a free vector; cold items rely on content
    user_id_embedding: bool = True
    modalities: list[Literal["visual", "audio", "text"]] = ["visual", "audio", "text"]
    # "cf": start the id vectors from ALS factors fitted on the training pairs (with the cf_*
    # settings), so training refines a strong collaborative model; "random": from scratch.
    # "auto": cf when items have no content features, random when they do: measured, a cf start
    # lets the id vectors explain the training pairs and the content part (which cold items
    # depend on) learns less (benchmarks/two-tower/README.md).
    init: Literal["auto", "cf", "random"] = "auto"
    # "ids": a free vector per user plus the pooled history; "history": the user is only the
    # mean of their history items (in a table of the user tower's own) and their pooled
    # features, so the model holds no per-user parameter (what differentially private training needs).
    user_tower: Literal["ids", "history"] = "ids"


class LossConfig(_Section):
    kind: Literal["bce", "bpr", "softmax"] = "bce"
    negatives: int = Field(4, ge=1, le=1000)


class OptimConfig(_Section):
    lr: float = Field(0.003, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(1024, ge=1)
    max_epochs: int = Field(30, ge=1)
    patience: int = Field(3, ge=1)
    eval_k: int = Field(10, ge=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    # After early stopping picks the number of epochs, train again on every pair (validation
    # folded back in) for that many epochs: the served model then learns from all the data.
    refit: bool = True


class AdversarialConfig(_Section):
    enabled: bool = False
    epsilon: float = Field(0.5, gt=0)  # perturbation size, relative to the mean embedding norm
    weight: float = Field(1.0, ge=0)  # lambda of the adversarial loss


class PrivacyConfig(_Section):
    """Differentially private training (DP-SGD with Opacus), with the user as the privacy unit."""

    epsilon: float | None = Field(None, gt=0)  # the budget; None trains without DP
    delta: float | None = Field(None, gt=0, lt=1)  # None: min(1e-5, 0.1 / users)
    # Each user's gradient is clipped to this L2 norm. The noise is proportional to it, so it
    # should sit near the typical per-user gradient norm: 0.019 (median) at the start on Last.fm.
    max_grad_norm: float = Field(0.02, gt=0)
    positives_per_user: int = Field(8, ge=1, le=1000)  # held-out history items predicted per user and step
    max_history: int = Field(256, ge=1)  # history items fed to the user tower per step (sampled beyond)
    # Measured on Last.fm at epsilon 8, validation NDCG@10 after 10 epochs: AdamW lr 0.02 0.083,
    # SGD (momentum 0.9) lr 50 0.081, lr 20 with max_grad_norm 0.05 0.082 (benchmarks/privacy).
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(0.02, gt=0)  # the DP run's learning rate (optim.lr is for the non-private run)

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None


class RunConfig(_Section):
    seed: int = 0
    out_dir: str = "runs"
    name: str = "two-tower"
    device: str = "auto"


class TrainConfig(_Section):
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    adversarial: AdversarialConfig = AdversarialConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _private_model(self):
        """Under DP the model may hold nothing fitted on raw data outside the DP-SGD steps: no
        per-user vector (history user tower), no ALS start, and no adversarial second pass."""
        if not self.privacy.enabled:
            return self
        if self.model.init == "cf":
            raise ValueError(
                "model.init = 'cf' starts from ALS factors fitted without privacy; use 'auto' or 'random' with DP"
            )
        if self.adversarial.enabled:
            raise ValueError("adversarial training is not supported together with DP training")
        self.model.user_tower = "history"
        self.model.user_id_embedding = False
        self.model.init = "random"
        return self


def load_train_config(path: str | Path | None, **overrides) -> TrainConfig:
    """Read a TOML config (defaults when ``path`` is None); ``overrides`` are dotted keys.

    Raises:
        SettingsError: one line naming the bad key.
    """
    data: dict = {}
    if path is not None:
        data = read_toml(path, "training config")
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise SettingsError(
            f"training config: '{where}': {message}" if where else f"training config: {message}"
        ) from None
