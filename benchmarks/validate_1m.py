"""Validation throughput on a synthetic catalogue, against per-row pydantic validation.

Usage: python -m benchmarks.validate_1m --rows 1000000 --out benchmarks/results/validate_1m.json

The catalogue mimics a real export: string ids, titles of 2-8 words, genres,
ISO timestamps, and 1% bad rows (blank titles, duplicate ids, invalid UTF-8,
unparsable timestamps). It is written to Parquet first, so the figure covers
reading as well as validating. The peer is what one would write otherwise: rows
as Python dicts, ``ItemRecord.model_validate`` per row and a dict for
de-duplication, timed on a slice and scaled linearly.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from benchmarks.common import command, machine, peak_rss_mib, save
from marc_batch.config import TableSource
from marc_batch.data.records import ItemRecord
from marc_batch.data.sources import read_source
from marc_batch.data.specs import ITEMS
from marc_batch.data.validate import validate

WORDS = np.array(
    [
        "the",
        "a",
        "of",
        "night",
        "star",
        "love",
        "war",
        "last",
        "city",
        "blue",
        "dark",
        "return",
        "man",
        "river",
        "girl",
        "king",
    ]
)
GENRES = np.array(["Drama", "Comedy", "Action, Thriller", "Romance", "Sci-Fi", "Horror"])


def catalogue(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.char.add("item-", np.arange(rows).astype(str)).astype(object)
    words = [rng.choice(WORDS, rows).astype(object) for _ in range(8)]
    lengths = rng.integers(2, 9, rows)
    parts = [pa.array(np.where(lengths > i, w, None)) for i, w in enumerate(words)]
    titles = pc.binary_join_element_wise(*parts, " ", null_handling="skip").to_numpy(
        zero_copy_only=False
    )
    titles = titles.astype(object)
    updated = np.datetime64("2020-01-01") + rng.integers(0, 2000, rows).astype("timedelta64[D]")
    updated = updated.astype(str).astype(object)
    bad = rng.choice(rows, rows // 100, replace=False)
    quarter = len(bad) // 4
    titles[bad[:quarter]] = "   "
    ids[bad[quarter : 2 * quarter]] = ids[bad[2 * quarter : 3 * quarter]]
    updated[bad[3 * quarter :]] = "not a date"
    title_bytes = [t.encode() for t in titles]
    for index in bad[3 * quarter : 3 * quarter + quarter // 2]:
        title_bytes[index] = b"caf\xe9"
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "title": pa.array(title_bytes, pa.binary()),
            "genres": pa.array(rng.choice(GENRES, rows), pa.string()),
            "updated_at": pa.array(updated, pa.string()),
        }
    )


def per_row_seconds(path: Path, rows: int) -> float:
    """The per-row pipeline: read, convert to dicts, validate each with pydantic, de-duplicate."""
    start = time.perf_counter()
    sample = pq.read_table(path).slice(0, rows).to_pylist()
    newest: dict[str, ItemRecord] = {}
    for row in sample:
        try:
            record = ItemRecord.model_validate({**row, "title": row["title"].decode("utf-8")})
        except (ValidationError, UnicodeDecodeError):
            continue
        kept = newest.get(record.id)
        if kept is None or (record.updated_at or 0) > (kept.updated_at or 0):
            newest[record.id] = record
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    table = catalogue(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalogue.parquet"
        pq.write_table(table, path)
        start = time.perf_counter()
        raw = read_source(TableSource(format="parquet", path=str(path)))
        result = validate(raw.table, ITEMS, max_text_bytes=16_384)
        ours = time.perf_counter() - start
        peer_rows = min(args.peer_rows, args.rows)
        peer = per_row_seconds(path, peer_rows) * args.rows / peer_rows
    figures = {
        "command": command("benchmarks.validate_1m", argv),
        "machine": machine(),
        "rows": args.rows,
        "accepted": result.accepted.num_rows,
        "quarantined": result.quarantine.num_rows,
        "reasons": result.reason_counts(),
        "read_and_validate_seconds": round(ours, 2),
        "rows_per_second": round(args.rows / ours),
        "goal_seconds": 10.0,
        "peer": (
            "read + to_pylist + ItemRecord.model_validate per row + dict de-duplication, "
            f"timed on {peer_rows} rows and scaled linearly"
        ),
        "peer_seconds": round(peer, 2),
        "speedup_vs_peer": round(peer / ours, 1),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    assert result.rows_in == args.rows
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
