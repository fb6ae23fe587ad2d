"""The downstream CTR model's validation-only entry point agrees with the full score."""

import numpy as np

from marc_batch.config import EvaluateConfig
from marc_batch.evaluate.ctr import score_embeddings, validation_auc
from tests.model.synthetic import COLOURS, colour_pairs


def test_validation_auc_is_the_valid_auc_of_the_full_score() -> None:
    pairs = colour_pairs()
    rng = np.random.default_rng(0)
    user_z = np.eye(len(COLOURS))[np.arange(24) % len(COLOURS)] + 0.1 * rng.normal(size=(24, 3))
    item_z = np.eye(len(COLOURS))[np.arange(24) % len(COLOURS)] + 0.1 * rng.normal(size=(24, 3))
    config = EvaluateConfig(epochs=3, batch_size=64, seeds=[0])
    full = score_embeddings(user_z, item_z, pairs, config, seed=0)
    assert validation_auc(user_z, item_z, pairs, config, seed=0) == full.valid_auc
