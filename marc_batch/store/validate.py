"""Full verification of a snapshot: every byte against the manifest, every count recomputed."""

from marc_batch.entities import ENTITIES
from marc_batch.errors import CorruptFile
from marc_batch.store.behaviours import read_behaviour_file
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import merged_table, read_data_file, read_index_file, read_verified
from marc_batch.store.store import Store
from marc_batch.store.writer import row_schema


def validate(store: Store, manifest: Manifest) -> list[str]:
    """Problems found (empty when the snapshot is intact); reads every file once in full."""
    problems = []
    columns = row_schema(manifest.k, manifest.dtype).names
    for entry in manifest.files:
        try:
            read_data_file(
                store, manifest, entry, columns if entry.kind == "rows" else ["id"], True
            )
        except CorruptFile as exc:
            problems.append(str(exc))
    for index in manifest.indexes:
        try:
            read_index_file(store, manifest, index)
        except CorruptFile as exc:
            problems.append(str(exc))
    for behaviours in manifest.behaviours:
        try:
            read_behaviour_file(store, manifest, behaviours)
        except CorruptFile as exc:
            problems.append(str(exc))
    for attached in manifest.attached_files():
        try:
            read_verified(store, manifest, attached)
        except CorruptFile as exc:
            problems.append(str(exc))
    if problems:
        return problems
    for entity in ENTITIES:
        live = merged_table(store, manifest, entity).num_rows
        if live != manifest.rows.get(entity, 0):
            problems.append(
                f"{entity}: {live} live rows, manifest says {manifest.rows.get(entity, 0)}"
            )
    return problems
