"""Named points in the commit protocol where a process can be made to die on purpose.

Setting ``MARC_BATCH_STORE_FAILPOINT`` to one of :data:`COMMIT_STEPS` makes
the process SIGKILL itself when it reaches that point: no cleanup handler,
no ``finally``, exactly like a lost machine. The crash-recovery tests use it
to prove that every step of a commit can die and leave the published state
intact. Unset, a failpoint is one dictionary lookup.
"""

import os
import signal

ENV = "MARC_BATCH_STORE_FAILPOINT"

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


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
