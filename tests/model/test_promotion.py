"""Promotion is decided by the lift of z on validation, with a margin of seed spreads."""

from pathlib import Path

import numpy as np
import pytest

from marc_batch.evaluate.promotion import lift_gate
from marc_batch.model.registry import Registry
from marc_batch.train.recipe import prepare
from marc_batch.train.register import train_and_register
from tests.model.trainable import trainable_config


def test_the_gate_compares_both_versions_on_the_same_validation_rows(
    tmp_path: Path, bert_dir: Path
) -> None:
    config = trainable_config(tmp_path, bert_dir)
    first = train_and_register(config).version
    config.model.train.seed = 1
    second = train_and_register(config, make_current=False).version
    assert first != second
    registry = Registry(Path(config.model.registry))
    prepared = prepare(config)

    config.evaluate.lift.promotion_margin = 0.0
    forward, backward = (
        lift_gate(prepared, registry, *pair) for pair in ((second, first), (first, second))
    )
    assert forward.protocol == "leak-free"
    assert len(forward.candidate_valid_auc) == len(config.evaluate.seeds)
    # Same rows, seeds and baseline: the two directions see the same numbers, swapped.
    assert forward.baseline_valid_auc == backward.baseline_valid_auc
    assert forward.candidate_valid_auc == backward.current_valid_auc
    difference = np.mean(forward.candidate_valid_auc) - np.mean(forward.current_valid_auc)
    assert forward.promoted == (difference > 0) and backward.promoted == (difference < 0)
    assert forward.candidate_lift - forward.current_lift == pytest.approx(difference)
    assert not lift_gate(prepared, registry, first, first).promoted  # equal is not better

    config.evaluate.lift.promotion_margin = 1e9
    assert not lift_gate(prepared, registry, second, first).promoted
