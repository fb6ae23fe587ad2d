"""The BAHE user path against a plain reference, for an encoder (BERT) and a decoder (Qwen2).

The reference is written out step by step from the Hugging Face model itself:
each behaviour alone through a full forward, its state at the split layer
pooled; the profile's states at the split layer; the sequence built by hand
(with the slot's position embedding added for an encoder); the upper layers
called one by one. The encoder under test instead runs the lower layers only,
in length-bucketed batches, and the upper layers through the model's forward.
"""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from marc_batch.config import LoraConfig, TemplatesConfig
from marc_batch.config.model import BaheConfig
from marc_batch.data.texts import user_behaviour_texts
from marc_batch.errors import ConfigError
from marc_batch.model.backbone import Backbone
from marc_batch.model.bahe import (
    BaheUserEncoder,
    UserBehaviours,
    behaviour_keys,
    encode_users,
    users_from_table,
)
from marc_batch.model.marc import MarcEncoder
from marc_batch.train.bahe_cache import build_bahe_cache
from marc_batch.train.cache import tail_forward
from tests.model.conftest import tiny_model_config

MAX_LENGTH = 16
USERS = [
    UserBehaviours("user old red", ("blue movie five", "the comedy story one", "green thing")),
    UserBehaviours("user new", ("green thing", "drama of the old thing five")),
    UserBehaviours("user likes a red and blue comedy", ()),
    UserBehaviours("user", ("blue movie five", "new story", "red", "one comedy and drama")),
]


def adapted(path: Path) -> Backbone:
    """The backbone with LoRA on its top layer, made non-trivial, in eval mode."""
    torch.manual_seed(1)
    backbone = Backbone.load(path)
    backbone.add_lora(LoraConfig(rank=2, alpha=4, dropout=0.0, layers=1))
    for name, parameter in backbone.model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(std=0.2)
    return backbone.eval()


@pytest.fixture(params=["bert", "qwen"])
def backbone(request: pytest.FixtureRequest, bert_dir: Path, qwen_dir: Path) -> Backbone:
    return adapted(bert_dir if request.param == "bert" else qwen_dir)


def bahe_of(backbone: Backbone, **fields: object) -> BaheUserEncoder:
    return BaheUserEncoder(backbone, BaheConfig(**fields), MAX_LENGTH)


def states_at(backbone: Backbone, text: str, layer: int, max_length: int) -> torch.Tensor:
    """(tokens, hidden): the state entering ``layer`` in a full forward over ``text`` alone."""
    tokens = backbone.tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    out = backbone.base(input_ids=tokens["input_ids"], output_hidden_states=True)
    return out.hidden_states[layer][0]


def upper_layers(backbone: Backbone, start: int, sequence: torch.Tensor) -> torch.Tensor:
    """The model's layers from ``start`` up, called one by one on one unpadded sequence."""
    base, x = backbone.base, sequence[None]
    if backbone.family.kind == "encoder":
        for layer in base.encoder.layer[start:]:
            x = layer(x)
        return x[0]
    positions = torch.arange(x.shape[1])[None]
    rotary = base.rotary_emb(x, positions)
    causal = torch.full((x.shape[1], x.shape[1]), float("-inf")).triu(1)[None, None]
    for layer in base.layers[start:]:
        x = layer(x, attention_mask=causal, position_embeddings=rotary, position_ids=positions)
    return base.norm(x)[0]


def reduce(states: torch.Tensor, how: str) -> torch.Tensor:
    return states.mean(0) if how == "mean" else states[-1]


def reference_h(backbone: Backbone, split: int, user: UserBehaviours, pooling: str) -> torch.Tensor:
    """The user's pooled final state, BAHE written out plainly."""
    profile = states_at(backbone, user.profile, split, MAX_LENGTH)
    slots = []
    for position, text in enumerate(user.behaviours[: MAX_LENGTH - len(profile)], len(profile)):
        vector = reduce(states_at(backbone, text, split, 32), pooling)
        if backbone.family.kind == "encoder":  # BERT adds positions at its embedding layer only
            vector = vector + backbone.base.embeddings.position_embeddings.weight[position]
        slots.append(vector)
    sequence = torch.cat([profile, *(slot[None] for slot in slots)])
    return reduce(upper_layers(backbone, split, sequence), backbone.pooling)


def bahe_h(bahe: BaheUserEncoder, users: list[UserBehaviours]) -> torch.Tensor:
    vectors = bahe.encode_behaviours(bahe.needed(users))
    hidden, mask = bahe.forward(users, vectors)
    return bahe.backbone.pooled((hidden[-1],), mask)[:, 0]


@torch.no_grad()
def test_the_reference_layers_reproduce_the_model(backbone: Backbone) -> None:
    text = USERS[0].profile + " " + " ".join(USERS[0].behaviours)
    whole = states_at(backbone, text, backbone.num_layers, MAX_LENGTH)
    torch.testing.assert_close(
        upper_layers(backbone, 0, states_at(backbone, text, 0, MAX_LENGTH)),
        whole,
        atol=1e-5,
        rtol=1e-4,
    )


@pytest.mark.parametrize("pooling", ["auto", "mean"])
@torch.no_grad()
def test_the_behaviour_path_equals_the_reference(backbone: Backbone, pooling: str) -> None:
    bahe = bahe_of(backbone, split_layer=-2, behaviour_pooling=pooling)
    assert bahe.split == backbone.num_layers - 2
    h = bahe_h(bahe, USERS)
    for row, user in enumerate(USERS):
        expected = reference_h(backbone, bahe.split, user, bahe.pooling)
        torch.testing.assert_close(h[row], expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_the_output_does_not_depend_on_the_batch(backbone: Backbone) -> None:
    bahe = bahe_of(backbone)
    together = bahe_h(bahe, USERS)
    for row, user in enumerate(USERS):
        torch.testing.assert_close(bahe_h(bahe, [user])[0], together[row], atol=1e-5, rtol=1e-4)
    reordered = bahe_h(bahe, USERS[::-1])
    torch.testing.assert_close(reordered.flip(0), together, atol=1e-5, rtol=1e-4)
    texts = bahe.needed(USERS)
    all_vectors = bahe.encode_behaviours(texts)
    alone = bahe.encode_behaviours(texts[-1:])
    (key,) = alone
    torch.testing.assert_close(alone[key], all_vectors[key], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_behaviour_order_reaches_the_upper_layers(backbone: Backbone) -> None:
    bahe = bahe_of(backbone)
    newest_first = UserBehaviours("user", ("red movie", "blue comedy", "old drama"))
    swapped = UserBehaviours("user", ("old drama", "blue comedy", "red movie"))
    h = bahe_h(bahe, [newest_first, swapped])
    assert not torch.allclose(h[0], h[1], atol=1e-4)


def test_the_sequence_keeps_the_newest_behaviours_that_fit(backbone: Backbone) -> None:
    bahe = bahe_of(backbone)
    behaviours = tuple(f"{word} movie" for word in ["red", "blue", "green", "old", "new"] * 4)
    user = UserBehaviours("user likes a comedy", behaviours)
    profile = len(backbone.tokenizer(user.profile)["input_ids"])
    assert bahe.sequence_lengths([user]) == [MAX_LENGTH]
    assert bahe.needed([user]) == list(dict.fromkeys(behaviours[: MAX_LENGTH - profile]))


def tiny_marc(path: Path) -> MarcEncoder:
    config = tiny_model_config(path, user_encoder="bahe")
    torch.manual_seed(0)
    backbone = Backbone.load(path)
    backbone.add_lora(config.lora)
    return MarcEncoder(backbone, config)


@torch.no_grad()
def test_a_shared_behaviour_is_encoded_once_and_a_changed_one_again(bert_dir: Path) -> None:
    marc = tiny_marc(bert_dir)
    config = marc.config
    bahe = BaheUserEncoder.of(marc)
    first = UserBehaviours("user old", ("blue movie five", "green thing"))
    second = UserBehaviours("user new", ("green thing", "red story"))

    z, computed = encode_users(marc, bahe, [first, second], {})
    distinct = ["blue movie five", "green thing", "red story"]
    assert bahe.behaviours_encoded == 3
    assert sorted(computed) == sorted(behaviour_keys(distinct))
    assert z.shape == (2, config.k)

    again, nothing = encode_users(marc, bahe, [first, second], computed)
    assert nothing == {} and bahe.behaviours_encoded == 3
    assert (again == z).all()

    changed = UserBehaviours("user new", ("green thing", "red story five"))
    z_changed, new = encode_users(marc, bahe, [first, changed], computed)
    assert bahe.behaviours_encoded == 4
    (new_key,) = behaviour_keys(["red story five"])
    (old_key,) = behaviour_keys(["red story"])
    assert list(new) == [new_key]
    assert not torch.allclose(new[new_key], computed[old_key])
    assert (z_changed[0] == z[0]).all()
    assert not (z_changed[1] == z[1]).all()


def test_the_split_must_leave_layers_on_both_sides_and_lie_below_lora(bert_dir: Path) -> None:
    backbone = Backbone.load(bert_dir)
    for split in (0, backbone.num_layers, -backbone.num_layers):
        with pytest.raises(ConfigError, match="split_layer"):
            bahe_of(backbone, split_layer=split)
    backbone.add_lora(LoraConfig(layers=2))
    with pytest.raises(ConfigError, match="frozen layers"):
        bahe_of(backbone, split_layer=-1).encode_behaviours(["red"])


@torch.no_grad()
def test_users_are_read_from_the_catalogue_as_their_texts_are(qwen_dir: Path) -> None:
    items = pa.table({"id": ["a", "b", "c"], "title": ["red movie", "blue comedy", "old drama"]})
    users = pa.table({"id": ["u", "v"], "age": ["new", "old"]})
    rows = [("u", "a", 1), ("u", "b", 2), ("v", "b", 3), ("v", "c", 4)]
    interactions = pa.table(
        {
            "user_id": [row[0] for row in rows],
            "item_id": [row[1] for row in rows],
            "rating": [5.0] * len(rows),
            "timestamp": [datetime.fromtimestamp(row[2], UTC) for row in rows],
            "split": ["train"] * len(rows),
        }
    )
    templates = TemplatesConfig(user="user {age} {history}", behaviour="{title}")
    table = user_behaviour_texts(users, interactions, items, templates)
    read = users_from_table(table)
    assert read == [
        UserBehaviours("user new ", ("blue comedy", "red movie")),
        UserBehaviours("user old ", ("old drama", "blue comedy")),
    ]
    marc = tiny_marc(qwen_dir)
    bahe = BaheUserEncoder.of(marc)
    z, computed = encode_users(marc, bahe, read, {})
    assert len(computed) == bahe.behaviours_encoded == 3
    assert z.shape == (2, marc.config.k)


def test_gradients_reach_the_adapted_layers_through_the_user_sequence(backbone: Backbone) -> None:
    bahe = bahe_of(backbone)
    backbone.train()
    vectors = bahe.encode_behaviours(bahe.needed(USERS))
    hidden, mask = bahe.forward(USERS, vectors)
    assert backbone.training  # the frozen passes leave the training mode as it was
    backbone.pooled((hidden[-1],), mask).pow(2).sum().backward()
    grads = {n: p.grad for n, p in backbone.model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads.values())


@torch.no_grad()
def test_training_continues_the_behaviour_path_from_its_cache(backbone: Backbone) -> None:
    """The trainer's forward (adapted layers over cached states) is the reference's."""
    cache, bahe = build_bahe_cache(
        backbone, USERS, BaheConfig(), MAX_LENGTH, backbone.first_adapted, 1024
    )
    assert cache.start == backbone.first_adapted > bahe.split
    # "blue movie five" and "green thing" are each held by two users, encoded once.
    assert bahe.behaviours_encoded == len({text for user in USERS for text in user.behaviours})
    hidden, mask = tail_forward(backbone, cache, list(range(len(USERS))))
    h = backbone.pooled((hidden[-1],), mask)[:, 0]
    for row, user in enumerate(USERS):
        expected = reference_h(backbone, bahe.split, user, bahe.pooling)
        torch.testing.assert_close(h[row], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(
            torch.from_numpy(cache.pooled[row, -1]), expected, atol=1e-5, rtol=1e-4
        )
    assert np.isnan(cache.pooled[:, : bahe.split]).all()
