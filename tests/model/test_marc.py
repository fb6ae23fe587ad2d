"""The objective composes exactly BCE + lambda_info * L_info + lambda_dec * L_dec."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from marc_batch.model.marc import MarcObjective
from marc_batch.model.matching import DCNMatching, DotMatching
from tests.model.conftest import tiny_model_config


def batch(dim_h: int = 32, k: int = 8) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    states = {entity: (torch.randn(6, dim_h), torch.randn(6, k)) for entity in ("user", "item")}
    users, items = torch.randint(0, 6, (20,)), torch.randint(0, 6, (20,))
    return states, users, items, torch.randint(0, 2, (20,))


@pytest.mark.parametrize(("lambda_info", "lambda_dec"), [(0.0, 0.0), (0.5, 0.0), (0.3, 2.0)])
def test_loss_is_the_weighted_sum_of_its_terms(
    tmp_path: Path, lambda_info: float, lambda_dec: float
) -> None:
    config = tiny_model_config(tmp_path, lambda_info=lambda_info, lambda_dec=lambda_dec)
    objective = MarcObjective(32, config).eval()
    states, users, items, labels = batch()
    terms = objective(states, users, items, labels)
    logits = objective.score(states["user"][1][users], states["item"][1][items])
    torch.testing.assert_close(
        terms.bce, F.binary_cross_entropy_with_logits(logits, labels.float())
    )
    assert (terms.info > 0) == (lambda_info > 0)
    assert (terms.dec > 0) == (lambda_dec > 0)
    torch.testing.assert_close(
        terms.total, terms.bce + lambda_info * terms.info + lambda_dec * terms.dec
    )


def test_matching_structure_follows_the_config(tmp_path: Path) -> None:
    assert isinstance(MarcObjective(32, tiny_model_config(tmp_path)).matching, DCNMatching)
    proj = tiny_model_config(tmp_path, matching="dot", head="linear")
    assert isinstance(MarcObjective(32, proj).matching, DotMatching)
