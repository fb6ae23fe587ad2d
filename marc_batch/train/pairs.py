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

    def with_train(self, train: Split) -> "Pairs":
        """The same texts and held-out splits with another training split."""
        return Pairs(self.user_texts, self.item_texts, {**self.splits, "train": train})


def latest_rows(split: Split, fraction: float) -> np.ndarray:
    """Mask of each user's latest ``floor(n * fraction)`` rows (rows are time-ordered per user).

    Every user with a row keeps at least one outside the mask when ``fraction < 1``.
    """
    users = split.users
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    from_end = np.repeat(counts, counts) - rank
    mask = np.zeros(len(users), dtype=bool)
    mask[order] = from_end <= np.floor(np.repeat(counts, counts) * fraction)
    return mask


def subset(split: Split, mask: np.ndarray) -> Split:
    return Split(split.users[mask], split.items[mask], split.labels[mask])


def encoder_pairs(pairs: Pairs, holdout: float) -> Pairs:
    """The pairs the encoder trains on: each user's latest ``holdout`` of training rows removed."""
    train = pairs.splits["train"]
    return pairs.with_train(subset(train, ~latest_rows(train, holdout)))


def downstream_pairs(pairs: Pairs, holdout: float) -> Pairs:
    """The leak-free downstream training split: only the rows ``encoder_pairs`` removed."""
    train = pairs.splits["train"]
    return pairs.with_train(subset(train, latest_rows(train, holdout)))


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
