"""Commit a transaction and publish it as the pipeline does: verify, then move the channels."""

from typing import Any

from marc_batch.pipeline.publish import promote_new
from marc_batch.store import Manifest, Transaction


def committed(txn: Transaction, *channels: str, **record: Any) -> Manifest:
    """``txn`` committed with ``record`` (indexes, quality, ...), verified, shown by ``channels``.

    ``channels`` defaults to ``latest``.
    """
    manifest = txn.commit(**record)
    for channel in channels or ("latest",):
        promote_new(txn.store, manifest, channel)
    return manifest
