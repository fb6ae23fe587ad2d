"""The compatibility check: a CTR model trained on one space, scored on another."""

import numpy as np
from scipy.stats import ortho_group

from marc_batch.config import LiftConfig
from marc_batch.evaluate.compatibility import score_compatibility
from tests.model.synthetic import COLOURS, colour_pairs
from tests.model.test_lift import id_fields

CONFIG = LiftConfig(
    epochs=20, patience=20, batch_size=32, learning_rate=1e-2, hidden=[16], embedding_dim=4,
    dropout=0.0,
)  # fmt: skip


def test_the_previous_model_keeps_its_lift_only_on_vectors_mapped_back_into_its_space() -> None:
    pairs = colour_pairs()
    users, items = len(pairs.user_texts), len(pairs.item_texts)
    rng = np.random.default_rng(0)
    colour = np.eye(len(COLOURS), 4, dtype=np.float32)

    def space(rows: int) -> np.ndarray:
        return colour[np.arange(rows) % 3] + rng.normal(0, 0.05, (rows, 4)).astype(np.float32)

    previous = {"user": space(users), "item": space(items)}
    rotation = ortho_group.rvs(4, random_state=1).astype(np.float32)
    new = {entity: z @ rotation for entity, z in previous.items()}
    inputs = {
        "previous": previous,
        "mapped": {entity: z @ rotation.T for entity, z in new.items()},
        "unmapped": new,
    }
    verdict = score_compatibility(
        id_fields(users, items), pairs, inputs, CONFIG, [0, 1], 0.95, "standard"
    )
    assert verdict.kept_lift("previous") == 1.0
    # The exact inverse rotation gives the model back its own inputs, up to float rounding.
    assert np.allclose(verdict.scores["mapped"].test_auc, verdict.scores["previous"].test_auc)
    assert verdict.kept_lift("mapped") > 0.99 and verdict.compatible
    # Fed the rotated vectors as they are, the model loses most of what z added.
    assert verdict.kept_lift("unmapped") < 0.5
    figures = verdict.summary()
    assert figures["compatible"] is True and figures["valid_kept_lift_mapped"] > 0.99

    strict = score_compatibility(
        id_fields(users, items), pairs, {**inputs, "mapped": new}, CONFIG, [0], 0.95, "standard"
    )
    assert not strict.compatible
