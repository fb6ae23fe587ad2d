"""What the reliability tests compare: published state, snapshot content, conservation."""

from pathlib import Path

import numpy as np
import yaml

from marc_batch.config import Config
from marc_batch.store import Manifest, Store, open_snapshot
from marc_batch.store.channels import list_channels
from marc_batch.store.validate import validate

ENTITIES = ("item", "user")


def write_config(path: Path, config: Config) -> Path:
    """The config as a YAML file, for flows and worker processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def published(store: Store) -> tuple[list[int], dict[str, int]]:
    """The committed versions and where every channel points."""
    return store.versions(), {n: p.version for n, p in list_channels(store.backend).items()}


def content(
    store: Store, ref: str | int = "latest"
) -> dict[str, dict[str, tuple[str, np.ndarray]]]:
    """Per entity, id -> (text_hash, embedding), read with every file verified."""
    snapshot = open_snapshot(store, ref, verify=True)
    found = {}
    for entity in ENTITIES:
        table = snapshot.table(entity)
        ids, matrix = snapshot.matrix(entity)
        hashes = table["text_hash"].to_pylist()
        found[entity] = {
            i: (h, np.array(row)) for i, h, row in zip(ids.tolist(), hashes, matrix, strict=True)
        }
    return found


def same_content(store: Store, reference: Store, ref: str | int = "latest") -> bool:
    """The same ids, texts and (to float tolerance) embeddings as the reference's latest."""
    mine, theirs = content(store, ref), content(reference, "latest")
    for entity in ENTITIES:
        if mine[entity].keys() != theirs[entity].keys():
            return False
        for key, (text_hash, vector) in theirs[entity].items():
            other_hash, other = mine[entity][key]
            if other_hash != text_hash or not np.allclose(other, vector, atol=1e-5):
                return False
    return True


def check_snapshot(store: Store, manifest: Manifest) -> None:
    """Intact files, live rows as recorded, and rows in = embedded + quarantined."""
    assert validate(store, manifest) == []
    for figures in manifest.conservation.values():
        assert figures.rows_in == figures.embedded + figures.quarantined
    if manifest.operation == "overwrite":
        for entity, figures in manifest.conservation.items():
            assert manifest.rows[entity] == figures.embedded


def rows_lost(store: Store, reference: Store) -> int:
    """Ids the reference snapshot holds that the store's latest snapshot does not."""
    mine, theirs = content(store), content(reference)
    return sum(len(set(theirs[e]) - set(mine[e])) for e in ENTITIES)
