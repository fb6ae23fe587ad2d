"""A config that trains a tiny MARC on the tiny on-disk catalogue in seconds, lift settings
included, for tests of what happens after training (promotion, the train-model flow)."""

from pathlib import Path

from marc_batch.config import Config, EvaluateConfig, LiftConfig
from tests.model.conftest import tiny_model_config
from tests.tiny import config_for


def trainable_config(tmp_path: Path, backbone: Path, seed: int = 0) -> Config:
    registry = tmp_path / "models"
    config = config_for(tmp_path, registry)
    train = tiny_model_config(backbone).train.model_copy(update={"epochs": 2, "seed": seed})
    config.model = tiny_model_config(backbone, registry=str(registry), train=train)
    lift = LiftConfig(epochs=3, batch_size=64, hidden=[8], embedding_dim=4, cross_layers=1)
    config.evaluate = EvaluateConfig(seeds=[0, 1], lift=lift)
    return config
