"""Backbone loading, pooling, the cached-tail forward and LoRA placement, for both families."""

from pathlib import Path

import pytest
import torch

from marc_batch.config import LoraConfig
from marc_batch.errors import ConfigError
from marc_batch.model.backbone import Backbone, pool, resolve_path
from marc_batch.train.cache import build_cache, tail_forward

TEXTS = ["user likes red movie", "item blue comedy", "a new old story of the green thing and one"]


@pytest.fixture(params=["bert", "qwen"])
def backbone(request: pytest.FixtureRequest, bert_dir: Path, qwen_dir: Path) -> Backbone:
    return Backbone.load(bert_dir if request.param == "bert" else qwen_dir).eval()


def test_default_pooling_follows_the_family(bert_dir: Path, qwen_dir: Path) -> None:
    assert Backbone.load(bert_dir).pooling == "mean"
    assert Backbone.load(qwen_dir).pooling == "last"
    assert Backbone.load(qwen_dir, pooling="mean").pooling == "mean"


def test_pool_ignores_padding() -> None:
    states = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0]])
    assert torch.equal(pool(states, mask, "mean"), states[:, :2].mean(1))
    assert torch.equal(pool(states, mask, "last"), states[:, 1])


@torch.no_grad()
def test_pooled_state_does_not_depend_on_the_batch(backbone: Backbone) -> None:
    batch = backbone.tokenize(TEXTS, 32)
    together = backbone.pooled(backbone(**batch), batch["attention_mask"])
    alone = backbone.tokenize(TEXTS[:1], 32)
    single = backbone.pooled(backbone(**alone), alone["attention_mask"])
    assert together.shape == (3, backbone.num_layers + 1, backbone.hidden_size)
    torch.testing.assert_close(together[0], single[0], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_forward_from_cached_states_equals_the_full_forward(backbone: Backbone) -> None:
    start = backbone.num_layers - 1
    cache = build_cache(backbone, TEXTS, 32, start, batch_tokens=64)
    hidden, mask = tail_forward(backbone, cache, [0, 1, 2])
    tail = backbone.pooled(hidden, mask)
    torch.testing.assert_close(tail.numpy(), cache.pooled[:, start:], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_a_forward_can_stop_below_the_top(backbone: Backbone) -> None:
    batch = backbone.tokenize(TEXTS, 32)
    stop = backbone.num_layers - 1
    # First on a fresh model: a run over some layers must not keep the others from reporting.
    bottom = backbone(**batch, stop=stop)
    full = backbone(**batch)
    assert len(bottom) == stop + 1 and len(full) == backbone.num_layers + 1
    assert "tie_last_hidden_states" not in backbone.base.config.to_dict()
    # The last state is what enters layer ``stop`` (a decoder's final norm is not applied),
    # and the top layers run from it reproduce the full forward.
    torch.testing.assert_close(bottom[-1], full[stop])
    top = backbone(**batch, start=stop, states=bottom[-1])
    torch.testing.assert_close(top[-1], full[-1], atol=1e-5, rtol=1e-4)


def test_lora_freezes_the_base_and_adapts_only_the_top_layers(backbone: Backbone) -> None:
    backbone.add_lora(LoraConfig(rank=2, alpha=4, layers=1))
    named = dict(backbone.model.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(f".{backbone.num_layers - 1}." in n for n in trainable)
    assert backbone.first_adapted == backbone.num_layers - 1
    before = {n: p.detach().clone() for n, p in named.items()}
    optimizer = torch.optim.SGD([named[n] for n in trainable], lr=0.5)
    batch = backbone.tokenize(TEXTS, 32)
    for _ in range(2):
        optimizer.zero_grad()
        backbone(**batch)[-1].pow(2).mean().backward()
        optimizer.step()
    changed = {n for n, p in named.items() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable


@torch.no_grad()
def test_merged_backbone_reproduces_the_adapted_one(backbone: Backbone) -> None:
    backbone.add_lora(LoraConfig(rank=2, alpha=4, dropout=0.0, layers=2))
    for name, parameter in backbone.model.named_parameters():
        if "lora_B" in name:
            parameter.normal_(std=0.1)
    backbone.eval()
    batch = backbone.tokenize(TEXTS, 32)
    adapted = backbone(**batch)[-1]
    merged = backbone.merged()(**batch, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(adapted, merged, atol=1e-5, rtol=1e-4)


def test_a_path_that_is_not_a_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a Hugging Face model directory"):
        resolve_path(str(tmp_path))
