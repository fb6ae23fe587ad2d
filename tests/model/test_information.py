"""Estimator properties that the objective relies on."""

import math

import torch

from marc_batch.model.information import HSIC, InfoNCE, Reconstruction, normalized_hsic


def test_hsic_is_near_zero_for_independent_and_high_for_dependent_variables() -> None:
    generator = torch.Generator().manual_seed(0)
    # The biased estimator's value for independent variables shrinks like 1/n.
    x = torch.randn(1024, 4, generator=generator)
    independent = torch.randn(1024, 8, generator=generator)
    dependent = torch.tanh(x @ torch.randn(4, 8, generator=generator))
    assert normalized_hsic(x, independent) < 0.03
    assert normalized_hsic(x, dependent) > 0.6
    torch.testing.assert_close(normalized_hsic(x, x), torch.tensor(1.0))


def test_infonce_bound_never_exceeds_log_batch() -> None:
    torch.manual_seed(0)
    estimator = InfoNCE(dim_h=16, k=16, temperature=0.01)
    with torch.no_grad():
        estimator.critic.weight.copy_(torch.eye(16))
        estimator.critic.bias.zero_()
    h = torch.randn(64, 16)
    perfect = estimator.bound(h, h)
    assert perfect <= math.log(64) + 1e-6
    assert perfect > math.log(64) - 0.05
    assert estimator.bound(h, torch.randn(64, 16)) < perfect


def test_every_estimator_prefers_an_informative_z() -> None:
    torch.manual_seed(0)
    h = torch.randn(128, 24)
    informative, noise = h[:, :8], torch.randn(128, 8)
    for estimator in (InfoNCE(24, 8, 0.1), HSIC(), Reconstruction(24, 8)):
        parameters = list(estimator.parameters())
        optimizer = torch.optim.Adam(parameters or [torch.zeros(1)], lr=1e-2)
        for _ in range(200 if parameters else 0):
            optimizer.zero_grad()
            (estimator(h, informative) + estimator(h, noise)).backward()
            optimizer.step()
        with torch.no_grad():
            assert estimator(h, informative) < estimator(h, noise), type(estimator).__name__
