"""Bytes per stored embedding, float32 and float16, against the raw fp32 D-dim hidden state.

Usage: python -m benchmarks.storage --store minilm-ml100k=WORK/store --hidden 384 \\
           --out benchmarks/results/storage.json

For each store, the newest full (overwrite) snapshot written by a refresh
is measured as it lies on disk: every Parquet byte of the entity's files
(ids, text hashes, model version and timestamps included) per row, and the
embedding column alone (compressed column-chunk sizes from the Parquet
footers). Its rows are then written again through ``Transaction`` with
``store.dtype`` float32 and float16, same shards, so both dtypes are
measured on the same vectors. The reference is what keeping the
backbone's final hidden state would cost: ``--hidden`` x 4 bytes.
"""

import argparse
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import command, machine, save
from marc_batch.config import StoreConfig
from marc_batch.encode.shards import shard_of
from marc_batch.store import Store, Transaction
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import embedding_matrix, merged_table

MODULE = "benchmarks.storage"
ENTITIES = ("item", "user")
COLUMNS = ("id", "embedding", "text_hash", "updated_at")


def newest_full(store: Store) -> Manifest:
    for version in reversed(store.versions()):
        manifest = store.manifest(version)
        if manifest.operation == "overwrite":
            return manifest
    raise SystemExit(f"{store.backend.uri} has no full snapshot")


def measure(store: Store, manifest: Manifest, entity: str) -> dict:
    """Bytes per row of ``entity`` in ``manifest``'s own files (a full snapshot: all of them)."""
    files = manifest.data_files(entity)
    rows = sum(f.rows for f in files)
    column = 0
    for entry in files:
        metadata = pq.read_metadata(Path(store.config.root) / entry.path)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if chunk.path_in_schema.startswith("embedding"):
                    column += chunk.total_compressed_size
    total = sum(f.size for f in files)
    return {
        "rows": rows,
        "files": len(files),
        "bytes": total,
        "bytes_per_row": round(total / rows, 1),
        "embedding_column_bytes_per_row": round(column / rows, 1),
    }


def rewrite(store: Store, manifest: Manifest, dtype: str, root: Path) -> dict:
    """Write the snapshot's rows again with ``dtype``; measure the new snapshot."""
    target = Store(StoreConfig(root=str(root), shards=store.config.shards, dtype=dtype))
    txn = Transaction(target, model_version=manifest.model.version, k=manifest.k, dtype=dtype)
    for entity in ENTITIES:
        table = merged_table(store, manifest, entity, COLUMNS).combine_chunks()
        shards = shard_of(table["id"], store.config.shards)
        for shard in range(store.config.shards):
            part = table.filter(pa.array(shards == shard))
            if part.num_rows:
                stamps = part["updated_at"].to_numpy().astype("datetime64[us]")
                txn.write(
                    entity,
                    part["id"],
                    embedding_matrix(part, manifest.k),
                    part["text_hash"],
                    updated_at=stamps,
                    shard=shard,
                )
    written = txn.commit()
    return {entity: measure(target, written, entity) for entity in ENTITIES}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", action="append", required=True, help="LABEL=DIR, repeatable")
    parser.add_argument("--hidden", type=int, default=384, help="backbone hidden size (MiniLM)")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    stores = {}
    for spec in args.store:
        label, _, root = spec.partition("=")
        store = Store(StoreConfig(root=root, shards=8))
        manifest = newest_full(store)
        store = Store(StoreConfig(root=root, shards=1 + max(f.shard for f in manifest.files)))
        result = {
            "k": manifest.k,
            "dtype": manifest.dtype,
            "as_written": {entity: measure(store, manifest, entity) for entity in ENTITIES},
        }
        with tempfile.TemporaryDirectory() as tmp:
            for dtype in ("float32", "float16"):
                result[dtype] = rewrite(store, manifest, dtype, Path(tmp) / dtype)
        stores[label] = result
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "raw_hidden_state_bytes": args.hidden * 4,
        "raw_hidden_state": f"{args.hidden} x fp32 hidden state",
        "stores": stores,
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
