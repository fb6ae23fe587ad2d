"""A small catalogue on disk and a tiny registered MARC encoder, both built locally.

The ``registry`` fixture (in ``tests/conftest.py``) builds the encoder once per session.
"""

from pathlib import Path

import pytest

from fixtures.encoders import random_bert, register_untrained
from marc_batch.config import Config
from tests.model.conftest import SIZES, WORDS, tiny_model_config, word_tokenizer

ITEMS, USERS = 60, 12


def write_catalogue(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    titles = [
        " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 2 + i % 4)) for i in range(ITEMS)
    ]
    (root / "items.csv").write_text(
        "id,title,year,genres\n"
        + "".join(f"{i},{t},19{i % 90:02d},{WORDS[i % 5]}\n" for i, t in enumerate(titles))
    )
    (root / "users.csv").write_text(
        "id,age,gender,occupation\n"
        + "".join(f"u{u},{20 + u},F,{WORDS[u % 7]}\n" for u in range(USERS))
    )
    rows = [
        (f"u{u}", (u * 7 + t) % ITEMS, 1 + (u + t) % 5, 1_000_000 + t * 60 + u)
        for u in range(USERS)
        for t in range(20)
    ]
    (root / "interactions.csv").write_text(
        "user_id,item_id,rating,timestamp\n"
        + "".join(f"{u},{i},{r},{ts}\n" for u, i, r, ts in rows)
    )


def config_for(tmp_path: Path, registry: Path, **index: object) -> Config:
    data = tmp_path / "catalogue"
    write_catalogue(data)
    sources = {
        name: {"format": "csv", "path": str(data / f"{name}.csv")}
        for name in ("items", "users", "interactions")
    }
    return Config(
        sources={"dataset": None, **sources},
        model={"registry": str(registry)},
        store={"root": str(tmp_path / "store"), "shards": 3},
        index=index,
    )


def build_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose current version is a tiny LoRA-adapted BERT with random heads."""
    backbone = random_bert(tmp_path_factory.mktemp("bert"), word_tokenizer(), SIZES)
    root = tmp_path_factory.mktemp("models")
    register_untrained(root, tiny_model_config(backbone), {"valid_auc": 0.5})
    return root
