"""Channels: named, movable pointers (``latest``, ``prod``, ...) to committed versions.

A pointer is a small JSON file replaced only by compare-and-swap, so two
writers can never both think they moved it. Publishing only ever moves a
channel forward (a slower publisher that finds a newer version there leaves
it alone); ``promote`` and ``rollback`` move it anywhere, but fail with
:class:`ChannelConflict` if someone else moved it in between. Each pointer
remembers where it pointed before, which is what ``rollback`` returns to, and
the versions it was rolled back from: those were withdrawn on purpose, so
publishing forward never returns to one (only an explicit ``move`` does),
and a re-run of a crashed run can tell "committed but never published" (which
it publishes) from "withdrawn" (which it leaves alone).
"""

import json
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marc_batch.clock import utc_now
from marc_batch.errors import ChannelConflict, ManifestError, SnapshotNotFound
from marc_batch.store.backends import Backend, PreconditionFailed
from marc_batch.store.failpoints import failpoint
from marc_batch.store.manifest import Manifest
from marc_batch.store.paths import CHANNELS, STAGING_MARK, channel_path

HISTORY_LENGTH = 50


class ChannelPointer(BaseModel):
    """A channel's pointer file: where it points now, where before, and what was withdrawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    version: int = Field(ge=1)
    snapshot_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    updated_at: datetime
    history: list[int] = Field(default_factory=list, description="Earlier targets, newest first.")
    rolled_back: list[int] = Field(
        default_factory=list,
        description="Versions this channel was rolled back from, newest first: deliberately "
        "withdrawn, so no run publishes them again on its own.",
    )


def read_channel(backend: Backend, name: str) -> tuple[ChannelPointer, str] | None:
    """The pointer and its tag for a later swap, or None if the channel does not exist."""
    found = backend.read_tagged(channel_path(name))
    if found is None:
        return None
    data, tag = found
    try:
        return ChannelPointer.model_validate(json.loads(data)), tag
    except (ValueError, ValidationError) as exc:
        raise ManifestError(f"channel {name!r}: unreadable pointer: {exc}") from None


def list_channels(backend: Backend) -> dict[str, ChannelPointer]:
    names = [
        info.path.removeprefix(f"{CHANNELS}/").removesuffix(".json")
        for info in backend.list(CHANNELS)
        if info.path.endswith(".json") and STAGING_MARK not in info.path
    ]
    channels = {}
    for name in sorted(names):
        found = read_channel(backend, name)
        if found is not None:
            channels[name] = found[0]
    return channels


def _pointer(name: str, target: Manifest, history: list[int], rolled_back: list[int]) -> bytes:
    pointer = ChannelPointer(
        channel=name,
        version=target.version,
        snapshot_id=target.snapshot_id,
        updated_at=utc_now(),
        history=history[:HISTORY_LENGTH],
        rolled_back=rolled_back[:HISTORY_LENGTH],
    )
    return pointer.model_dump_json().encode("utf-8")


def _pushed(current: ChannelPointer | None) -> list[int]:
    return [] if current is None else [current.version, *current.history]


def _withdrawn(current: ChannelPointer | None) -> list[int]:
    return [] if current is None else list(current.rolled_back)


def _swap(backend: Backend, name: str, data: bytes, tag: str | None) -> None:
    try:
        backend.swap(channel_path(name), data, tag)
    except PreconditionFailed:
        found = backend.read_tagged(channel_path(name))
        if found is not None and found[0] == data:
            return  # a retried write whose first attempt landed (its response was lost)
        raise ChannelConflict(f"channel {name!r} was moved by someone else; retry") from None


def advance(backend: Backend, name: str, target: Manifest) -> bool:
    """Move ``name`` forward to ``target``; False if it already points at a newer version.

    Also False for a version ``name`` was rolled back from: checked on every
    compare-and-swap attempt, so a re-run publishing a crashed run's commit
    never undoes a rollback that lands while it verifies. Versions skipped on
    the way (committed, never shown) are simply passed.
    """
    while True:
        found = read_channel(backend, name)
        current, tag = found if found else (None, None)
        if current is not None and (
            current.version >= target.version or target.version in current.rolled_back
        ):
            return False
        pointer = _pointer(name, target, _pushed(current), _withdrawn(current))
        try:
            _swap(backend, name, pointer, tag)
        except ChannelConflict:
            continue
        failpoint("channel.swapped")
        return True


def move(backend: Backend, name: str, target: Manifest, expected: int | None = None) -> None:
    """Point ``name`` at ``target``; with ``expected``, only if it still points there.

    An explicit move is deliberate, so ``target`` is no longer withdrawn if it was.
    """
    found = read_channel(backend, name)
    current, tag = found if found else (None, None)
    if expected is not None and (current is None or current.version != expected):
        now = "nothing" if current is None else f"version {current.version}"
        raise ChannelConflict(f"channel {name!r} points at {now}, not version {expected}")
    withdrawn = [v for v in _withdrawn(current) if v != target.version]
    _swap(backend, name, _pointer(name, target, _pushed(current), withdrawn), tag)
    failpoint("channel.swapped")


def rollback(backend: Backend, name: str, load: Callable[[int], Manifest]) -> Manifest:
    """Point ``name`` back at its previous target, forgetting the target it leaves.

    The version left is remembered in ``rolled_back``, so no re-run publishes it again.
    """
    found = read_channel(backend, name)
    if found is None:
        raise SnapshotNotFound(f"no channel {name!r}")
    current, tag = found
    earlier = [i for i, v in enumerate(current.history) if v != current.version]
    if not earlier:
        raise SnapshotNotFound(f"channel {name!r} has no earlier target to roll back to")
    position = earlier[0]
    target = load(current.history[position])
    withdrawn = [current.version, *current.rolled_back]
    _swap(backend, name, _pointer(name, target, current.history[position + 1 :], withdrawn), tag)
    failpoint("channel.swapped")
    return target
