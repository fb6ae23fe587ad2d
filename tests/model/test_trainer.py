"""The training recipe learns a task with a known answer, deterministically, and resumes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model.conftest import tiny_model_config
from tests.model.synthetic import colour_pairs, make_trainer


def test_training_learns_the_colour_task(bert_dir: Path) -> None:
    pairs = colour_pairs()
    trainer = make_trainer(tiny_model_config(bert_dir), pairs)
    initial = trainer.validate()
    result = trainer.fit()
    first, last = result.history[0], result.history[-1]
    assert last["bce"] < first["bce"]
    assert result.best_valid_auc > 0.9 > initial
    assert trainer.validate() == pytest.approx(result.best_valid_auc)


def test_the_decoder_family_trains_too(qwen_dir: Path) -> None:
    # Last-token pooling of a random tiny decoder carries the colour less directly.
    train = tiny_model_config(qwen_dir).train.model_copy(update={"epochs": 24, "patience": 24})
    result = make_trainer(tiny_model_config(qwen_dir, train=train), colour_pairs()).fit()
    assert result.best_valid_auc > 0.9


def test_same_seed_gives_the_same_embeddings(bert_dir: Path) -> None:
    train = tiny_model_config(bert_dir).train.model_copy(update={"epochs": 1})
    config = tiny_model_config(bert_dir, train=train)
    runs = []
    for _ in range(2):
        trainer = make_trainer(config, colour_pairs())
        trainer.fit()
        runs.append(trainer.embed_all("user"))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_resume_continues_where_the_run_stopped(
    bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = tiny_model_config(bert_dir).train.model_copy(update={"epochs": 3})
    config = tiny_model_config(bert_dir, train=train)
    uninterrupted = make_trainer(config, colour_pairs())
    uninterrupted.fit()
    expected = uninterrupted.embed_all("item")

    interrupted = make_trainer(config, colour_pairs(), tmp_path)
    calls = {"n": 0}
    validate = interrupted.validate

    def crash_in_second_epoch() -> float:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return validate()

    monkeypatch.setattr(interrupted, "validate", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = make_trainer(config, colour_pairs(), tmp_path)
    result = resumed.fit(resume=True)
    assert result.epochs_run == config.train.epochs
    np.testing.assert_allclose(resumed.embed_all("item"), expected, atol=1e-5)
