"""The store's layout, and the one rule every stored path obeys: it stays inside the root.

Paths in manifests and channel pointers are relative, ``/``-separated and
made of plain segments. Absolute paths, ``..`` or ``.`` segments, drive
letters, backslashes and empty segments are refused wherever a path enters
the store (a manifest being parsed, a file being opened), so a hostile or
corrupt manifest can never make a reader or ``gc`` touch a file elsewhere.
"""

import re
import uuid

from marc_batch.entities import ENTITIES, Entity
from marc_batch.errors import ManifestError
from marc_batch.naming import CHANNEL_NAME, RUN_ID

MANIFESTS = "_manifests"
CHANNELS = "_channels"
DATA = "data"
DELETES = "deletes"
INDEXES = "indexes"
BEHAVIOURS = "behaviours"  # BAHE behaviour vectors, per model version
META = "meta"  # statistics and alignment maps recorded with a snapshot
CHECKPOINTS = "_checkpoints"  # shard inputs and results of runs in progress (or that failed)
STAGING_MARK = "_staging-"

_SEGMENT = re.compile(r"^[A-Za-z0-9_=+-][A-Za-z0-9_.=+-]*$")
_MANIFEST_NAME = re.compile(r"^v(\d{12})\.json$")


def check_relative(path: str) -> str:
    """Return ``path`` if it is a safe relative path inside the store, else raise."""
    if not isinstance(path, str) or not path:
        raise ManifestError("empty path")
    if "\\" in path:
        raise ManifestError(f"path {path!r} contains a backslash")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ManifestError(f"path {path!r} is absolute; manifests may only name relative paths")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ManifestError(f"path {path!r} leaves the store root or has an empty segment")
        if not _SEGMENT.match(segment):
            raise ManifestError(f"path {path!r} has an unsupported character in {segment!r}")
    return path


def check_entity(entity: str) -> Entity:
    if entity not in ENTITIES:
        raise ManifestError(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    return Entity(entity)


def check_channel(name: str) -> str:
    if not CHANNEL_NAME.match(name):
        raise ManifestError(
            f"bad channel name {name!r}: letters, digits, '_', '.', '-'; at most 64 characters"
        )
    return name


def check_run_id(run_id: str) -> str:
    """A run id names a quarantine directory, so it must be one plain path segment."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise ManifestError(
            f"bad run id {run_id!r}: letters, digits, '_', '.', '=', '+', '-'; "
            "at most 128 characters"
        )
    return run_id


def manifest_path(version: int) -> str:
    """Zero-padded so that names sort like versions on every backend."""
    return f"{MANIFESTS}/v{version:012d}.json"


def manifest_version(name: str) -> int | None:
    """The version a manifest file name stands for, or None for any other file."""
    match = _MANIFEST_NAME.match(name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def channel_path(name: str) -> str:
    return f"{CHANNELS}/{check_channel(name)}.json"


def new_data_path(entity: str, shard: int) -> str:
    """A fresh, never-reused name: data files are written once and never overwritten."""
    return f"{DATA}/entity={check_entity(entity)}/shard={shard}/{uuid.uuid4().hex}.parquet"


def new_deletes_path(entity: str) -> str:
    return f"{DELETES}/entity={check_entity(entity)}/{uuid.uuid4().hex}.parquet"


def new_index_path(entity: str) -> str:
    return f"{INDEXES}/entity={check_entity(entity)}/{uuid.uuid4().hex}.faiss"


def new_behaviours_path() -> str:
    return f"{BEHAVIOURS}/{uuid.uuid4().hex}.parquet"


def new_meta_path(kind: str, extension: str) -> str:
    """A fresh name for a file recorded with one snapshot (``statistics``, ``alignment``)."""
    return f"{META}/{kind}-{uuid.uuid4().hex}.{extension}"


def staging_path(path: str) -> str:
    """Where a small file is prepared before it is published under ``path``."""
    head, _, name = path.rpartition("/")
    return f"{head}/{STAGING_MARK}{name}.{uuid.uuid4().hex}"
