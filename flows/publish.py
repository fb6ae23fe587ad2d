"""Publish and roll back: move a channel, only to a snapshot verified byte for byte."""

from prefect import flow, get_run_logger
from prefect.states import State

from flows.outcome import run_step
from marc_batch.parameters import PublishParameters, RollbackParameters
from marc_batch.pipeline import publish as channel_moves
from marc_batch.store import Store


@flow(name="publish", log_prints=False)
def publish_flow(parameters: PublishParameters) -> int | State:
    """Verify a snapshot and point a channel at it; returns the version now published."""

    def move() -> int:
        config = parameters.load()
        protected = config.evaluate.compatibility.protected_channels
        return channel_moves.publish(
            Store(config.store),
            parameters.snapshot,
            parameters.channel,
            parameters.expected,
            [] if parameters.allow_incompatible else protected,
        ).version

    return run_step(
        move,
        lambda version: get_run_logger().info("%s -> version %d", parameters.channel, version),
    )


@flow(name="rollback", log_prints=False)
def rollback_flow(parameters: RollbackParameters) -> int | State:
    """Point a channel back at its previous snapshot, once that one is verified."""
    return run_step(
        lambda: channel_moves.rollback(Store(parameters.load().store), parameters.channel).version,
        lambda version: get_run_logger().info(
            "%s rolled back to version %d", parameters.channel, version
        ),
    )
