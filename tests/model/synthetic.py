"""A matching task with a known answer: a user clicks exactly the items of their colour.

The colour is the last word of every text, so last-token pooling (decoders)
sees it as directly as mean pooling (encoders) does.
"""

from pathlib import Path

import numpy as np
import torch

from marc_batch.config import ModelConfig
from marc_batch.model.backbone import Backbone
from marc_batch.model.marc import MarcEncoder, MarcObjective
from marc_batch.train.cache import build_cache
from marc_batch.train.pairs import Pairs, Split
from marc_batch.train.trainer import Trainer

COLOURS = ("red", "blue", "green")
FILLER = ("movie", "comedy", "drama", "old", "new", "story")


def colour_pairs(users: int = 24, items: int = 24, seed: int = 0) -> Pairs:
    rng = np.random.default_rng(seed)
    user_colour = np.arange(users) % len(COLOURS)
    item_colour = np.arange(items) % len(COLOURS)
    user_texts = [f"user likes {COLOURS[c]} {' '.join(rng.choice(FILLER, 3))}" for c in user_colour]
    item_texts = [f"item {' '.join(rng.choice(FILLER, 2))} {COLOURS[c]}" for c in item_colour]
    u, i = np.meshgrid(np.arange(users), np.arange(items), indexing="ij")
    u, i = u.ravel(), i.ravel()
    labels = (user_colour[u] == item_colour[i]).astype(np.float32)
    split = rng.choice(3, size=len(u), p=[0.7, 0.15, 0.15])
    return Pairs(
        user_texts=user_texts,
        item_texts=item_texts,
        splits={
            name: Split(u[split == s], i[split == s], labels[split == s])
            for s, name in enumerate(("train", "valid", "test"))
        },
    )


def make_trainer(config: ModelConfig, pairs: Pairs, checkpoint_dir: Path | None = None) -> Trainer:
    """The recipe of ``train_variant`` on in-memory pairs instead of an ingested catalogue."""
    torch.manual_seed(config.train.seed)
    backbone = Backbone.load(Path(config.backbone))
    start = backbone.num_layers - config.lora.layers
    caches = {
        "user": build_cache(backbone, pairs.user_texts, config.train.user_max_length, start, 256),
        "item": build_cache(backbone, pairs.item_texts, config.train.item_max_length, start, 256),
    }
    backbone.add_lora(config.lora)
    encoder = MarcEncoder(backbone, config)
    objective = MarcObjective(backbone.hidden_size, config)
    return Trainer(config, encoder, objective, caches, pairs, checkpoint_dir)
