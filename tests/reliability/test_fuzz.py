"""Generated catalogues, CSV and Parquet, through a refresh and then a backfill.

Hypothesis builds small catalogues out of hostile values: duplicate and blank
ids, path-like ids, invalid UTF-8, NUL and bidi characters, enormous and
empty titles, NaN and infinite ratings, absurd timestamps, unknown
references, ragged CSV lines. Each run must obey the rule of
``tests/reliability/runs.py``, and the rows the run says it read must be
exactly the rows generated: nothing is dropped before validation either.
The examples are derandomised, so CI sees the same ones;
``MARC_BATCH_FUZZ_EXAMPLES`` sets how many (``make reliability`` tries more).
"""

import io
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marc_batch.config import Config
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from tests.model.conftest import WORDS
from tests.reliability.runs import run_checked

EXAMPLES = int(os.environ.get("MARC_BATCH_FUZZ_EXAMPLES", "25"))

WORD = st.sampled_from(WORDS)
TEXT = st.lists(WORD, min_size=1, max_size=6).map(" ".join)
NASTY_TEXT = st.sampled_from(
    [
        b"",
        b"   ",
        "\u3000".encode(),
        b"a\x00b",
        "\u202eevil".encode(),
        "\u200b".encode(),
        "🙂 émoji".encode(),
        b"\xff\xfe",
        b"\xed\xa0\x80",
        b'quote " and, comma',
        b"line\nbreak",
        b"x" * 20_000,  # over the 16 KB text budget
    ]
)
CELL = st.one_of(TEXT.map(str.encode), NASTY_TEXT)
NUMBER = st.one_of(
    st.integers(1, 5).map(lambda n: str(n).encode()),
    st.sampled_from([b"nan", b"inf", b"-inf", b"", b"five", b"1e309", b"4.5"]),
)
STAMP = st.one_of(
    st.integers(0, 2_000_000_000).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"2020-01-01", b"2020-02-30", b"99999-01-01", b"1e300", b"noon"]),
)
ITEM_ID = st.one_of(
    st.integers(0, 40).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b" ", b"../../etc/passwd", b"entity=user", b"a\x00b", b"\xff"]),
)
USER_ID = st.one_of(
    st.integers(0, 8).map(lambda n: f"u{n}".encode()), st.sampled_from([b"", b"ghost", b"\xfe"])
)


@st.composite
def catalogues(draw: st.DrawFn) -> dict:
    items = draw(st.lists(st.tuples(ITEM_ID, CELL, NUMBER, CELL, STAMP), min_size=0, max_size=25))
    users = draw(st.lists(st.tuples(USER_ID, NUMBER, CELL, CELL), min_size=0, max_size=8))
    known_items = [row[0] for row in items] or [b"0"]
    known_users = [row[0] for row in users] or [b"u0"]
    interactions = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(known_users), USER_ID),
                st.one_of(st.sampled_from(known_items), ITEM_ID),
                NUMBER,
                STAMP,
            ),
            max_size=40,
        )
    )
    return {
        "items": items,
        "users": users,
        "interactions": interactions,
        "ragged": draw(st.integers(0, 2)),
        "parquet": draw(st.booleans()),
        "budget": draw(st.sampled_from([0.05, 1.0, 1.0, 1.0])),
        "edits": draw(st.lists(st.tuples(st.integers(0, 30), CELL), max_size=4)),
    }


COLUMNS = {
    "items": ["id", "title", "year", "genres", "updated_at"],
    "users": ["id", "age", "gender", "occupation"],
    "interactions": ["user_id", "item_id", "rating", "timestamp"],
}


def csv_bytes(columns: list[str], rows: list[tuple], ragged: int) -> bytes:
    def cell(value: bytes) -> bytes:
        return b'"' + value.replace(b'"', b'""') + b'"'

    lines = [",".join(columns).encode()]
    lines += [b",".join(cell(v) for v in row) for row in rows]
    lines += [b"only-one-field"] * ragged
    return b"\n".join(lines) + b"\n"


def parquet_bytes(columns: list[str], rows: list[tuple]) -> bytes:
    arrays = [pa.array([row[i] for row in rows], pa.binary()) for i in range(len(columns))]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=columns), buffer)
    return buffer.getvalue()


def write(directory: Path, catalogue: dict) -> dict[str, int]:
    """Write the tables; returns the rows each one holds (ragged CSV lines included)."""
    counts = {}
    for name, columns in COLUMNS.items():
        rows = catalogue[name]
        if catalogue["parquet"]:
            (directory / f"{name}.parquet").write_bytes(parquet_bytes(columns, rows))
            counts[name] = len(rows)
        else:
            ragged = catalogue["ragged"] if name == "items" else 0
            (directory / f"{name}.csv").write_bytes(csv_bytes(columns, rows, ragged))
            counts[name] = len(rows) + ragged
    return counts


def config_in(directory: Path, registry: Path, catalogue: dict) -> Config:
    kind = "parquet" if catalogue["parquet"] else "csv"
    sources = {
        name: {"format": kind, "path": str(directory / f"{name}.{kind}")} for name in COLUMNS
    }
    return Config(
        sources={"dataset": None, "max_quarantine_fraction": catalogue["budget"], **sources},
        model={"registry": str(registry)},
        store={"root": str(directory / "store"), "shards": 2},
    )


def test_generated_catalogues_are_embedded_or_refused_never_lost(registry: Path, ledger) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(catalogues())
    def one_catalogue(catalogue: dict) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            counts = write(directory, catalogue)
            config = config_in(directory, registry, catalogue)
            store = Store(config.store)
            first = run_checked(lambda: refresh(config), lambda: store)
            outcomes = [first]
            if first.manifest is not None:
                for entity in ("item", "user"):
                    assert first.manifest.conservation[entity].rows_in == counts[f"{entity}s"]
                # Edit some titles and run a backfill on the changed catalogue.
                items = list(catalogue["items"])
                for position, title in catalogue["edits"]:
                    if position < len(items):
                        items[position] = (items[position][0], title, *items[position][2:])
                write(directory, {**catalogue, "items": items})
                outcomes.append(run_checked(lambda: backfill(config), lambda: store))
            for outcome in outcomes:
                kind = "parquet" if catalogue["parquet"] else "csv"
                ledger("bad_input", source="hypothesis", case=kind, **outcome.figures())

    one_catalogue()
