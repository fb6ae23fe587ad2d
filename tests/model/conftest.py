"""Tiny random encoder (BERT) and decoder (Qwen2) models saved as local directories.

Both share one word-level vocabulary, so test texts are built from known
words and nothing is downloaded.
"""

from pathlib import Path

import pytest
import torch
from transformers import BertTokenizer, Qwen2Config, Qwen2Model

from fixtures.encoders import random_bert, save_backbone
from marc_batch.config import LoraConfig, ModelConfig, TrainConfig

WORDS = [
    "user", "item", "likes", "red", "blue", "green", "movie", "comedy", "drama", "old",
    "new", "rated", "five", "one", "and", "a", "the", "of", "thing", "story",
]  # fmt: skip
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Tiny matrices gain nothing from threads, and lose much when the cores are busy.
torch.set_num_threads(1)


def word_tokenizer() -> BertTokenizer:
    """A WordPiece tokenizer over :data:`WORDS` alone: test texts never hit ``[UNK]``."""
    return BertTokenizer(vocab={token: i for i, token in enumerate(SPECIAL + WORDS)})


SIZES = {
    "vocab_size": len(SPECIAL) + len(WORDS),
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_bert(tmp_path_factory.mktemp("bert"), word_tokenizer(), SIZES)


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = Qwen2Config(**SIZES, num_key_value_heads=2, pad_token_id=0)
    return save_backbone(tmp_path_factory.mktemp("qwen2"), word_tokenizer(), Qwen2Model(config))


def tiny_model_config(backbone: Path, **overrides: object) -> ModelConfig:
    """A MARC config sized for the tiny models; no dropout so that runs are exactly repeatable."""
    train = TrainConfig(
        epochs=12,
        users_per_step=8,
        pairs_per_user=16,
        user_max_length=16,
        item_max_length=8,
        learning_rate=1e-2,
        backbone_learning_rate=1e-2,
        warmup_fraction=0.0,
        patience=12,
        device="cpu",
    )
    fields: dict[str, object] = {
        "backbone": str(backbone),
        "k": 8,
        "head_hidden": 16,
        "matching_hidden": [16],
        "dropout": 0.0,
        "lora": LoraConfig(rank=4, alpha=8, dropout=0.0, layers=1),
        "train": train,
    }
    fields.update(overrides)
    return ModelConfig(**fields)


def write_training_config(bert_dir: Path, tmp_path: Path, evaluate: str) -> Path:
    """``tmp_path/config.toml``: a one-epoch MARC recipe on ``bert_dir`` over MovieLens-100K.

    ``evaluate`` is the TOML of the ``[evaluate]`` tables the test needs.
    """
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[model]
backbone = "{bert_dir}"
k = 4
registry = "{tmp_path / "models"}"
head_hidden = 16
matching_hidden = [16]
[model.train]
epochs = 1
users_per_step = 512
pairs_per_user = 4
user_max_length = 16
item_max_length = 8
{evaluate}
[store]
root = "{tmp_path / "store"}"
""",
        encoding="utf-8",
    )
    return path
