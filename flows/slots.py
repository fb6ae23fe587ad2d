"""The ``gpu`` slot: held by a lease a dead holder cannot keep, waited for with a deadline.

Every shard encodes while holding one slot of Prefect's global concurrency
limit ``gpu``. The slot is taken with a lease (``flows.slot_lease_seconds``)
that a background thread renews while the shard runs, so a holder that dies
(SIGKILL, OOM, a lost node) stops renewing and its slot is free again once
the lease expires. A real ``prefect server`` revokes expired leases itself
(its repossessor service). An ephemeral server (the CLI's) runs no services,
so the CLI keeps leases in files under ``PREFECT_HOME`` (Prefect's
filesystem lease storage) and a waiting shard revokes expired ones itself:
a run killed while holding the slot cannot wedge the next run on the same
Prefect home.

A shard lost with its Dask worker is run again by the scheduler as the same
task run, on another worker. Its dead attempt's lease would keep a slot
until it expires (and for good on a server that revokes no expired leases,
like the ephemeral test server), so each shard records its lease id in a
Prefect variable named after its task run while it holds the slot, and an
attempt that finds such a record releases that lease before it asks for a
slot: the slot of a lost shard is free again as soon as the shard restarts.

A shard that cannot get a slot logs, at every poll, how full the limit is
and who holds it since when, and fails the run with one line after
``flows.slot_wait_seconds`` instead of waiting silently forever.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.context import ConcurrencyContext
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.server.concurrency.lease_storage import get_concurrency_lease_storage
from prefect.settings import get_current_settings
from prefect.utilities.asyncutils import run_coro_as_sync

from marc_batch.config import FlowsConfig
from marc_batch.errors import SlotUnavailable

GPU_LIMIT = "gpu"
POLL_SECONDS = 10.0
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"


def leases_are_local() -> bool:
    """Whether the API is this process's own ephemeral server, keeping leases in files.

    Only then are the database and the lease files this process sees the ones
    the server uses; a run against a real server (``PREFECT_API_URL``) leaves
    leases to that server.
    """
    settings = get_current_settings()
    return settings.api.url is None and settings.server.concurrency.lease_storage == FILE_LEASES


async def _reclaim() -> int:
    """Revoke expired leases, then free slots that no lease accounts for.

    With leases in files, every live holder of a slot has a lease; a slot
    counted in the database with no lease behind it was taken by a server
    that died before it could record the lease (or by a version of this
    service that kept leases in memory), and nobody can ever release it.
    """
    from prefect.server.database import provide_database_interface
    from prefect.server.models.concurrency_limits_v2 import (
        bulk_decrement_active_slots,
        read_concurrency_limit,
    )
    from prefect.server.services.repossessor import revoke_expired_lease

    db = provide_database_interface()
    storage = get_concurrency_lease_storage()
    expired = await storage.read_expired_lease_ids()
    for lease_id in expired:
        await revoke_expired_lease(lease_id, db=db, lease_storage=storage)
    async with db.session_context(begin_transaction=True) as session:
        limit = await read_concurrency_limit(session, name=GPU_LIMIT)
        if limit is None:
            return len(expired)
        held = 0
        for lease_id in await storage.read_active_lease_ids(limit=1000):
            lease = await storage.read_lease(lease_id)
            if lease is not None and limit.id in lease.resource_ids and lease.metadata:
                held += lease.metadata.slots
        if limit.active_slots > held:
            await bulk_decrement_active_slots(
                session=session,
                concurrency_limit_ids=[limit.id],
                slots=limit.active_slots - held,
            )
    return len(expired)


def reclaim_expired_slots() -> int:
    """Free the slots of expired leases (holders that died); returns how many leases."""
    return run_coro_as_sync(_reclaim()) if leases_are_local() else 0


async def _holders(limit_id: UUID) -> list[str]:
    storage = get_concurrency_lease_storage()
    lines = []
    for lease_id in await storage.read_active_lease_ids(limit=100):
        lease = await storage.read_lease(lease_id)
        if lease is None or limit_id not in lease.resource_ids or lease.metadata is None:
            continue
        holder = lease.metadata.holder
        who = f"{holder.type} {holder.id}" if holder else f"lease {lease_id}"
        lines.append(
            f"{who} since {lease.created_at:%H:%M:%S} UTC, "
            f"lease until {lease.expiration:%H:%M:%S} UTC"
        )
    return lines


def describe_limit() -> str:
    """How full the ``gpu`` limit is and, where leases are readable, who holds it."""
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(GPU_LIMIT)
    text = f"{limit.active_slots} of {limit.limit} slot(s) in use"
    holders = run_coro_as_sync(_holders(limit.id)) if leases_are_local() else []
    return text + (f": {'; '.join(holders)}" if holders else "")


def _record_name(holder: ConcurrencyLeaseHolder) -> str:
    return f"{GPU_LIMIT}-lease-{holder.type}-{holder.id}"


def release_dead_attempt(holder: ConcurrencyLeaseHolder) -> bool:
    """Release the slot an earlier attempt of ``holder`` left held; whether there was one.

    A record outlives its attempt only if that attempt died holding the slot:
    one that ends in any other way deletes it on the way out.
    """
    name = _record_name(holder)
    with get_client(sync_client=True) as client:
        record = client.read_variable_by_name(name)
        if record is None:
            return False
        client.release_concurrency_slots_with_lease(UUID(str(record.value)))
        with suppress(ObjectNotFound):
            client.delete_variable_by_name(name)
    get_run_logger().warning(
        "released the '%s' slot (lease %s) that a lost attempt of this shard still held",
        GPU_LIMIT,
        record.value,
    )
    return True


@contextmanager
def _recorded(holder: ConcurrencyLeaseHolder | None) -> Iterator[None]:
    """While the block runs, the id of the lease just taken is on record for ``holder``.

    ``concurrency`` does not hand out its lease id; it notes every lease it is
    granted in the run's :class:`ConcurrencyContext` (to release it should the
    caller be cancelled), so the newest id there is the one just taken.
    """
    context = ConcurrencyContext.get()
    if holder is None or context is None or not context.cleanup_lease_ids:
        yield
        return
    name = _record_name(holder)
    lease_id = str(context.cleanup_lease_ids[-1])
    with get_client(sync_client=True) as client:
        try:
            client.create_variable(VariableCreate(name=name, value=lease_id))
        except ObjectAlreadyExists:  # a twin attempt of this task run (Dask ran it twice)
            client.update_variable(VariableUpdate(name=name, value=lease_id))
    try:
        yield
    finally:
        with get_client(sync_client=True) as client, suppress(ObjectNotFound):
            client.delete_variable_by_name(name)


@contextmanager
def gpu_slot(config: FlowsConfig, holder: ConcurrencyLeaseHolder | None) -> Iterator[None]:
    """Hold one ``gpu`` slot for the block, waiting at most ``config.slot_wait_seconds``."""
    if holder is not None:
        release_dead_attempt(holder)
    deadline = time.monotonic() + config.slot_wait_seconds
    stack = ExitStack()
    while True:
        wait = min(POLL_SECONDS, max(0.1, deadline - time.monotonic()))
        try:
            stack.enter_context(
                concurrency(
                    GPU_LIMIT,
                    occupy=1,
                    timeout_seconds=wait,
                    lease_duration=config.slot_lease_seconds,
                    holder=holder,
                )
            )
            break
        except TimeoutError:
            reclaimed = reclaim_expired_slots()
            state = describe_limit()
            if time.monotonic() >= deadline:
                raise SlotUnavailable(
                    f"no '{GPU_LIMIT}' slot came free in {config.slot_wait_seconds:.0f} s "
                    f"(flows.slot_wait_seconds); {state}"
                ) from None
            get_run_logger().warning(
                "waiting for a '%s' slot: %s%s",
                GPU_LIMIT,
                state,
                f" ({reclaimed} expired lease(s) of dead holders revoked)" if reclaimed else "",
            )
    with stack, _recorded(holder):
        yield
