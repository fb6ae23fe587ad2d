"""Named points in the commit protocol where a process can be made to die on purpose.

Setting ``MARC_BATCH_STORE_FAILPOINT`` to one of :data:`COMMIT_STEPS` makes
the process SIGKILL itself when it reaches that point: no cleanup handler,
no ``finally``, exactly like a lost machine. The crash-recovery tests use it
to prove that every step of a commit can die and leave the published state
intact. Unset, a failpoint is one dictionary lookup.

Two modifiers serve the worker-loss tests, where every process of a cluster
inherits the same environment but only one should fail:
``MARC_BATCH_STORE_FAILPOINT_ONCE`` names a marker file, and the failpoint
fires only in the one process (or thread) that takes it: an atomic rename
to ``<marker>.<pid>``, so a whole cluster shares one failure and the test
learns which process it hit. ``MARC_BATCH_STORE_FAILPOINT_HANG`` makes it
block instead of dying, as a stuck shard does: ``N`` seconds in one
``time.sleep`` (stuck in a C call, which nothing can interrupt), or ``~N``
in short steps (stuck in Python code, where a timeout can still stop it).
"""

import os
import signal
import time

ENV = "MARC_BATCH_STORE_FAILPOINT"
ONCE = "MARC_BATCH_STORE_FAILPOINT_ONCE"
HANG = "MARC_BATCH_STORE_FAILPOINT_HANG"

COMMIT_STEPS = (
    "data.partial",  # a data file is half written
    "data.written",  # one data file is complete, others are not
    "data.done",  # every data file is written, no manifest yet
    "manifest.staged",  # the manifest is staged but not yet linked in (local only)
    "manifest.committed",  # the manifest is published, the channel still points at the parent
    "channel.staged",  # the new pointer is staged but not yet renamed in (local only)
    "channel.swapped",  # the channel points at its new target; the caller is never told
)
# Outside the commit: a shard's rows are encoded, not yet saved; its task holds a 'gpu' slot.
SHARD_ENCODED = "shard.encoded"


def _armed() -> bool:
    """Whether this call fires: always, or only for whoever takes the ``ONCE`` marker."""
    marker = os.environ.get(ONCE)
    if not marker:
        return True
    try:
        os.rename(marker, f"{marker}.{os.getpid()}")
    except FileNotFoundError:
        return False
    return True


def _hang(spec: str) -> None:
    """Block as ``HANG`` says: ``N`` in one C call, ``~N`` in Python steps a timeout can stop."""
    if spec.startswith("~"):
        until = time.monotonic() + float(spec[1:])
        while time.monotonic() < until:
            time.sleep(0.1)
    else:
        time.sleep(float(spec))


def failpoint(name: str) -> None:
    """SIGKILL this process (or hang) here if ``ENV`` names this point and the marker allows."""
    if os.environ.get(ENV) != name or not _armed():
        return
    hang = os.environ.get(HANG)
    if hang:
        _hang(hang)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
