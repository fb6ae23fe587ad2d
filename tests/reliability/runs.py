"""Whole runs on hostile input, and the one rule every outcome must obey.

A run on bad input ends in one of two ways: a :class:`MarcBatchError` whose
message is one clear line (and the published state is unchanged), or a
published snapshot in which every input row is embedded or quarantined
with a reason. Anything else (another exception type, a hang, a lost row)
fails the test.
"""

import base64
import io
import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.config import Config
from marc_batch.data.records import Reason
from marc_batch.errors import MarcBatchError
from marc_batch.store import Manifest, Store
from tests.reliability.helpers import check_snapshot, published

PATHS = {"items": "items.csv", "users": "users.csv", "interactions": "interactions.csv"}


@contextmanager
def no_hang(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError if the block runs longer than ``seconds`` (main thread only)."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"the run did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """How a run ended: an error (its class and line) or a manifest."""

    error: MarcBatchError | None = None
    manifest: Manifest | None = None
    unchanged: dict[str, tuple[int, int, int]] | None = None  # a backfill with nothing to do

    @property
    def kind(self) -> str:
        if self.error is not None:
            return "error"
        if self.unchanged is not None:
            return "nothing to do"
        assert self.manifest is not None
        return "quarantine" if sum(self.manifest.quarantine.values()) else "clean"

    @property
    def line(self) -> str:
        return " ".join(str(self.error).split()) if self.error else ""

    def figures(self) -> dict[str, object]:
        """What the ledger keeps: the outcome and the rows it accounted for."""
        if self.unchanged is not None:
            counts = list(self.unchanged.values())
        elif self.manifest is not None:
            counts = [
                (c.rows_in, c.embedded, c.quarantined) for c in self.manifest.conservation.values()
            ]
        else:
            counts = []
        return {
            "outcome": self.kind,
            "error": type(self.error).__name__ if self.error is not None else None,
            "rows_in": sum(c[0] for c in counts),
            "embedded": sum(c[1] for c in counts),
            "quarantined": sum(c[2] for c in counts),
            "rows_lost": sum(c[0] - c[1] - c[2] for c in counts),
        }


def quarantine_rows(store: Store, run_id: str | None) -> dict[str, int]:
    """``table.REASON`` -> rows found in the run's quarantine files; every reason checked."""
    counts: dict[str, int] = {}
    if run_id is None:
        return counts
    for info in store.backend.list(f"quarantine/{run_id}"):
        table = pq.read_table(io.BytesIO(store.backend.read_bytes(info.path)))
        name = info.path.rsplit("/", 1)[-1].removesuffix(".parquet")
        for reason, detail in zip(
            table["reason"].to_pylist(), table["detail"].to_pylist(), strict=True
        ):
            assert reason in Reason.__members__ and detail, f"{info.path}: {reason!r}, {detail!r}"
            counts[f"{name}.{reason}"] = counts.get(f"{name}.{reason}", 0) + 1
    return counts


def run_checked(run: Callable[[], Any], store_of: Callable[[], Store | None]) -> Outcome:
    """Run, then hold the outcome to the rule; ``store_of`` gives the store (None if no config)."""
    store = store_of()
    before = published(store) if store is not None else None
    try:
        with no_hang(180):
            report = run()
    except MarcBatchError as exc:
        line = " ".join(str(exc).split())
        assert line, f"{type(exc).__name__} with an empty message"
        assert len(line) < 2_000, f"an error message of {len(line)} characters"
        store = store_of()
        if store is not None and before is not None:
            assert published(store) == before, "a failed run changed the published state"
        return Outcome(error=exc)
    store = store_of()
    assert store is not None
    version = getattr(report, "version", None)
    manifest = store.manifest(version) if version else store.head()
    assert manifest is not None
    if not getattr(report, "committed", True):
        # Nothing changed: every row read is still embedded (unchanged) or quarantined.
        unchanged = {}
        for entity, change in report.changes.items():
            embedded = change.added + change.changed + change.unchanged
            assert change.rows_in == embedded + change.quarantined, f"{entity}: {change}"
            unchanged[entity] = (change.rows_in, embedded, change.quarantined)
        return Outcome(manifest=manifest, unchanged=unchanged)
    check_snapshot(store, manifest)
    assert manifest.conservation, "a run published without conservation figures"
    quarantined = quarantine_rows(store, manifest.run_id)
    entity_tables = {f"{entity}s" for entity in manifest.conservation}
    for entity, figures in manifest.conservation.items():
        files = sum(n for k, n in quarantined.items() if k.startswith(f"{entity}s."))
        assert files == figures.quarantined, f"{entity}: quarantine files disagree"
    recorded = {k: n for k, n in manifest.quarantine.items() if k.split(".")[0] in entity_tables}
    assert recorded == {k: n for k, n in quarantined.items() if k.split(".")[0] in entity_tables}
    return Outcome(manifest=manifest)


# -- Catalogue files from a corpus case ---------------------------------------------------

TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float64": pa.float64(),
    "float16": pa.float16(),
    "bool": pa.bool_(),
    "null": pa.null(),
    "date32": pa.date32(),
    "timestamp[s]": pa.timestamp("s"),
    "timestamp[ms]": pa.timestamp("ms"),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
    "decimal256(40, 2)": pa.decimal256(40, 2),
    "list<string>": pa.list_(pa.string()),
    "list<int64>": pa.list_(pa.int64()),
    "struct<a: int64>": pa.struct([("a", pa.int64())]),
}


def _parquet(spec: dict) -> bytes:
    """A Parquet file from ``{columns: [[name, type, values], ...]}`` (names may repeat)."""
    arrays, names = [], []
    for name, type_name, values in spec["columns"]:
        dictionary = type_name.startswith("dictionary<")
        dtype = TYPES[type_name[len("dictionary<") : -1] if dictionary else type_name]
        if pa.types.is_decimal(dtype):
            values = [None if v is None else Decimal(str(v)) for v in values]
        array = pa.array(values, dtype)
        arrays.append(array.dictionary_encode() if dictionary else array)
        names.append(name)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), buffer)
    return buffer.getvalue()


def file_bytes(content: Any) -> bytes:
    """A corpus file: text (``<<BIG:n>>`` expands to n characters), bytes, base64 or Parquet."""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        while "<<BIG:" in content:
            start = content.index("<<BIG:")
            end = content.index(">>", start)
            size = int(content[start + 6 : end])
            content = content[:start] + ("big " * (size // 4 + 1))[:size] + content[end + 2 :]
        return content.encode("utf-8")
    if "base64" in content:
        return base64.b64decode(content["base64"])
    if "parquet" in content:
        return _parquet(content["parquet"])
    raise ValueError(f"unknown corpus file content: {json.dumps(content)[:80]}")


def merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def config_data(base: Config, catalogue: Path, changes: dict) -> dict:
    """The base config as data with ``changes`` merged; source paths are catalogue-relative."""
    data = merged(base.model_dump(mode="json"), changes)
    for name in PATHS:
        source = data["sources"].get(name)
        if isinstance(source, dict) and source.get("path") and not source["path"].startswith("/"):
            source["path"] = str(catalogue / source["path"])
    return data
