"""Interactions as integer (user row, item row, label) arrays per split.

Rows index the rendered ``user_texts`` / ``item_texts`` tables, so one text
table position is one embedding row everywhere downstream. Ingestion (and
with it duckdb) is imported only to build pairs, so training from pairs
built elsewhere needs neither (the GPU suite ships them as arrays).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from marc_batch.data.ingest import Catalogue


@dataclass
class Split:
    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Pairs:
    user_texts: list[str]
    item_texts: list[str]
    splits: dict[str, Split]


def _rows(ids: pa.ChunkedArray, table: pa.Table) -> np.ndarray:
    position = {key: row for row, key in enumerate(table["id"].to_pylist())}
    return np.fromiter((position[key] for key in ids.to_pylist()), dtype=np.int64, count=len(ids))


def build_pairs(catalogue: "Catalogue") -> Pairs:
    from marc_batch.data.split import SPLITS

    interactions = catalogue.interactions
    users = _rows(interactions["user_id"], catalogue.user_texts)
    items = _rows(interactions["item_id"], catalogue.item_texts)
    labels = interactions["label"].to_numpy().astype(np.float32)
    split = np.asarray(interactions["split"].to_pylist())
    return Pairs(
        user_texts=catalogue.user_texts["text"].to_pylist(),
        item_texts=catalogue.item_texts["text"].to_pylist(),
        splits={
            name: Split(users[split == name], items[split == name], labels[split == name])
            for name in SPLITS
        },
    )
