"""The train-model flow: the first version is promoted outright, later ones on validation lift."""

from pathlib import Path

from fixtures.encoders import random_bert
from flows.train_model import train_model
from marc_batch.model.registry import Registry
from marc_batch.parameters import TrainParameters
from tests.flows.test_pipeline_flows import artifact, config_file
from tests.model.conftest import SIZES, word_tokenizer
from tests.model.trainable import trainable_config


def test_promotion_follows_the_lift_gate_and_the_artifact_shows_both_numbers(
    tmp_path: Path,
) -> None:
    backbone = random_bert(tmp_path / "bert", word_tokenizer(), SIZES)
    config = trainable_config(tmp_path, backbone)
    registry = Registry(Path(config.model.registry))
    first = train_model(
        TrainParameters(config=config_file(tmp_path, config), compare_baselines=False)
    )
    assert first.promoted and first.gate is None and first.current is None
    assert registry.current() == first.trained.version
    assert "no current version: promoted without one" in artifact("train-model")

    config.model.train.seed = 1
    second = train_model(
        TrainParameters(config=config_file(tmp_path, config), compare_baselines=False)
    )
    assert second.current == first.trained.version and second.gate is not None
    assert second.promoted == second.gate.promoted
    expected = second.trained.version if second.promoted else first.trained.version
    assert registry.current() == expected
    summary = artifact("train-model")
    assert f"{second.gate.candidate_lift:+.4f}" in summary
    assert f"{second.gate.current_lift:+.4f}" in summary
