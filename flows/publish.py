"""Publish and roll back: move a channel, only to a snapshot verified byte for byte."""

from prefect import flow, get_run_logger

from flows.outcome import run_step
from flows.parameters import PublishParameters, RollbackParameters
from marc_batch.pipeline import publish as channel_moves
from marc_batch.store import Store


@flow(name="publish", log_prints=False)
def publish_flow(parameters: PublishParameters) -> int:
    """Verify a snapshot and point a channel at it; returns the version now published."""

    def step() -> int:
        store = Store(parameters.load().store)
        return channel_moves.publish(
            store, parameters.snapshot, parameters.channel, parameters.expected
        ).version

    version = run_step(step)
    if isinstance(version, int):
        get_run_logger().info("%s -> version %d", parameters.channel, version)
    return version


@flow(name="rollback", log_prints=False)
def rollback_flow(parameters: RollbackParameters) -> int:
    """Point a channel back at its previous snapshot, once that one is verified."""

    def step() -> int:
        return channel_moves.rollback(Store(parameters.load().store), parameters.channel).version

    version = run_step(step)
    if isinstance(version, int):
        get_run_logger().info("%s rolled back to version %d", parameters.channel, version)
    return version
