"""Generated catalogues of any size, written as Parquet sources for ``Config``.

Titles are 2 to 6 words drawn from the bundled MiniLM vocabulary (whole
English words), with a year and one to three of the MovieLens genres, so
that the texts tokenise like real titles and almost never repeat. Users have
histories like real ones: each rates between ``behaviours`` bounds of
distinct items (uniformly), drawn with popularity skew (item popularity
falls as 1/rank, Zipf's law, the popular items spread over all ids), so user
texts, where a refresh spends its encoding time, are long and share their
items. Interactions are generated and written a block of users at a time,
so a million users with 60 behaviours each never sit in memory together.
Ids are integers as strings, as in MovieLens.

This is the benchmarks' workload, not a shared fixture: tests use the small
hand-written catalogue of ``tests/tiny.py``, whose every word the tiny test
tokenizer knows, so this module stays with the benchmarks that define it.
"""

from collections.abc import Iterator
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


USER_BLOCK = 20_000
INTERACTIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rating", pa.int64()),
        ("timestamp", pa.int64()),
    ]
)


def interaction_blocks(
    users: int, items: int, behaviours: tuple[int, int], seed: int
) -> Iterator[pa.Table]:
    """Each user's distinct items, popular ones most often; ratings 1-5, increasing timestamps.

    Item ranks are drawn log-uniformly (P(rank r) ~ 1/r) and mapped through a
    fixed permutation to ids; a user's repeats are dropped and the first
    ``n`` distinct draws kept, ``n`` uniform in ``behaviours``.
    """
    rng = np.random.default_rng(seed)
    low, high = min(behaviours[0], items), min(behaviours[1], items)
    popular = rng.permutation(items)
    written = 0
    for first in range(0, users, USER_BLOCK):
        block = min(USER_BLOCK, users - first)
        wanted = rng.integers(low, high + 1, block)
        draws = 3 * high
        ranks = np.exp(rng.random((block, draws)) * np.log(items)).astype(np.int64) - 1
        drawn = popular[np.minimum(ranks, items - 1)]
        order = np.argsort(drawn, axis=1, kind="stable")
        ordered = np.take_along_axis(drawn, order, axis=1)
        repeat = np.zeros_like(ordered, dtype=bool)
        repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
        first_seen = np.empty_like(repeat)
        np.put_along_axis(first_seen, order, ~repeat, axis=1)  # back in draw order
        kept = first_seen & (np.cumsum(first_seen, axis=1) <= wanted[:, None])
        rows_per_user = kept.sum(axis=1)
        rows = int(rows_per_user.sum())
        numbers = pa.array(np.repeat(np.arange(first, first + block), rows_per_user))
        user_ids = pc.binary_join_element_wise("u", numbers.cast(pa.string()), "")
        yield pa.table(
            {
                "user_id": user_ids,
                "item_id": pa.array(drawn[kept]).cast(pa.string()),
                "rating": rng.integers(1, 6, rows),
                "timestamp": 880_000_000 + (written + np.arange(rows)) * 60,
            },
            schema=INTERACTIONS_SCHEMA,
        )
        written += rows


def _replaced(table: pa.Table, column: str, rows: np.ndarray, values: list) -> pa.Table:
    """``table`` with ``column`` set to ``values`` (None: null) at ``rows``."""
    data = table[column].to_numpy(zero_copy_only=False).astype(object)
    data[rows] = values
    field = table.schema.field(column)
    return table.set_column(table.schema.get_field_index(column), field, pa.array(data, field.type))


def with_defects(table: str, rows: pa.Table, rate: float, rng: np.random.Generator) -> pa.Table:
    """``rows`` of ``table`` with a ``rate`` share turned bad, evenly over the kinds a bad export
    has: a null key, a repeated key, and per table an empty or overlong title, an unknown user
    or item. Validation must quarantine each of them with its reason."""
    kinds = {
        "items": ("null id", "repeated id", "empty title", "overlong title"),
        "users": ("null id", "repeated id"),
        "interactions": ("null id", "repeated id", "unknown user", "unknown item"),
    }[table]
    chosen = rng.choice(rows.num_rows, min(rows.num_rows, round(rate * rows.num_rows)), False)
    key = "user_id" if table == "interactions" else "id"
    for kind, where in zip(kinds, np.array_split(np.sort(chosen), len(kinds)), strict=True):
        where = where[where > 0]  # a repeat copies the row before it
        n = len(where)
        if kind == "null id":
            rows = _replaced(rows, key, where, [None] * n)
        elif kind == "repeated id":
            for column in ("user_id", "item_id") if table == "interactions" else ("id",):
                rows = _replaced(rows, column, where, rows[column].take(where - 1).to_pylist())
        elif kind in ("empty title", "overlong title"):
            text = "" if kind == "empty title" else "long " * 4_000  # over 16 KiB
            rows = _replaced(rows, "title", where, [text] * n)
        else:
            column = "user_id" if kind == "unknown user" else "item_id"
            rows = _replaced(rows, column, where, [f"unknown-{i}" for i in where])
    return rows


def write_catalogue(
    root: Path,
    items: int,
    users: int = 1_000,
    behaviours: tuple[int, int] = (20, 100),
    seed: int = 0,
    defects: float = 0.0,
) -> dict[str, Path]:
    """Write items, users and interactions as Parquet under ``root``; return their paths.

    ``defects`` of each table's rows are made bad (:func:`with_defects`), none by default.
    """
    root.mkdir(parents=True, exist_ok=True)
    paths = {name: root / f"{name}.parquet" for name in TABLES}
    rng = np.random.default_rng(seed + 3)

    def bad(table: str, rows: pa.Table) -> pa.Table:
        return with_defects(table, rows, defects, rng) if defects else rows

    pq.write_table(bad("items", items_table(0, items, seed)), paths["items"])
    pq.write_table(bad("users", users_table(users, seed + 1)), paths["users"])
    with pq.ParquetWriter(paths["interactions"], INTERACTIONS_SCHEMA) as writer:
        for block in interaction_blocks(users, items, behaviours, seed + 2):
            writer.write_table(bad("interactions", block))
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
        model={"registry": str(registry), **sections.pop("model", {})},
        store={"root": str(store), "shards": shards, **sections.pop("store", {})},
        **sections,
    )
