"""Generated catalogues of any size, written as Parquet sources for ``Config``.

Titles are 2 to 6 words drawn from the bundled MiniLM vocabulary (whole
English words), with a year and one to three of the MovieLens genres, so
that the texts tokenise like real titles and almost never repeat. Users and
interactions stay small whatever the catalogue size: each user rates
``per_user`` distinct items. Ids are integers as strings, as in MovieLens.

This is the benchmarks' workload, not a shared fixture: tests use the small
hand-written catalogue of ``tests/tiny.py``, whose every word the tiny test
tokenizer knows, so this module stays with the benchmarks that define it.
"""

from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marc_batch.config import Config
from marc_batch.model.backbone import resolve_path

GENRES = np.array(
    [
        "Action",
        "Adventure",
        "Animation",
        "Children's",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ],
    dtype=object,
)
OCCUPATIONS = np.array(
    ["artist", "doctor", "educator", "engineer", "lawyer", "student", "writer", "other"],
    dtype=object,
)
TABLES = ("items", "users", "interactions")


@cache
def words() -> np.ndarray:
    """Whole alphabetic words of 3+ letters from the MiniLM WordPiece vocabulary."""
    vocab = (resolve_path("minilm") / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return np.array([w for w in vocab if len(w) >= 3 and w.isascii() and w.isalpha()], object)


def _join(columns: list[np.ndarray], lengths: np.ndarray, separator: str) -> np.ndarray:
    """Row i joins the first ``lengths[i]`` of ``columns`` with ``separator``.

    Typed as strings: in a small batch a column can be all null (no row that long).
    """
    parts = [pa.array(np.where(lengths > i, c, None), pa.string()) for i, c in enumerate(columns)]
    joined = pc.binary_join_element_wise(*parts, separator, null_handling="skip")
    return joined.to_numpy(zero_copy_only=False)


def items_table(start: int, count: int, seed: int) -> pa.Table:
    """Items with ids ``start .. start+count-1``: id, title, year, genres."""
    rng = np.random.default_rng(seed)
    vocab = words()
    title = _join([rng.choice(vocab, count) for _ in range(6)], rng.integers(2, 7, count), " ")
    genres = _join([rng.choice(GENRES, count) for _ in range(3)], rng.integers(1, 4, count), ", ")
    return pa.table(
        {
            "id": pa.array(np.arange(start, start + count).astype(str), pa.string()),
            "title": pa.array(title, pa.string()),
            "year": pa.array(rng.integers(1920, 2025, count).astype(str), pa.string()),
            "genres": pa.array(genres, pa.string()),
        }
    )


def users_table(count: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array([f"u{u}" for u in range(count)], pa.string()),
            "age": pa.array(rng.integers(18, 70, count), pa.int64()),
            "gender": pa.array(rng.choice(np.array(["F", "M"], object), count), pa.string()),
            "occupation": pa.array(rng.choice(OCCUPATIONS, count), pa.string()),
        }
    )


def interactions_table(users: int, items: int, per_user: int, seed: int) -> pa.Table:
    """``per_user`` distinct items per user, ratings 1-5, increasing timestamps."""
    rng = np.random.default_rng(seed)
    per_user = min(per_user, items)
    item_ids = np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)])
    rows = users * per_user
    return pa.table(
        {
            "user_id": pa.array(np.repeat([f"u{u}" for u in range(users)], per_user), pa.string()),
            "item_id": pa.array(item_ids.astype(str), pa.string()),
            "rating": pa.array(rng.integers(1, 6, rows), pa.int64()),
            "timestamp": pa.array(880_000_000 + np.arange(rows) * 60, pa.int64()),
        }
    )


def write_catalogue(
    root: Path, items: int, users: int = 1_000, per_user: int = 20, seed: int = 0
) -> dict[str, Path]:
    """Write items, users and interactions as Parquet under ``root``; return their paths."""
    root.mkdir(parents=True, exist_ok=True)
    tables = {
        "items": items_table(0, items, seed),
        "users": users_table(users, seed + 1),
        "interactions": interactions_table(users, items, per_user, seed + 2),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = root / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


def write_new_items(path: Path, start: int, count: int, seed: int = 99) -> Path:
    """A file of ``count`` items the catalogue does not have yet (ids from ``start``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(items_table(start, count, seed), path)
    return path


def config_for(
    paths: dict[str, Path] | None, registry: Path, store: Path, shards: int = 8, **sections
) -> Config:
    """A config over the generated sources (or MovieLens-100K when ``paths`` is None)."""
    if paths is None:
        sources: dict = {"dataset": "ml-100k"}
    else:
        sources = {"dataset": None}
        sources.update({n: {"format": "parquet", "path": str(paths[n])} for n in TABLES})
    return Config(
        sources=sources,
        model={"registry": str(registry)},
        store={"root": str(store), "shards": shards, **sections.pop("store", {})},
        **sections,
    )
