"""How a flow ends on a user error: a Failed state with one clear line, not a traceback.

A bad catalogue or a missing model is not a crash: the run is marked
failed with the error's own message (what the UI, the worker log and the
CLI show), and the published state is unchanged.
"""

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from marc_batch.errors import MarcBatchError, StoreUnavailable

T = TypeVar("T")


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class UserErrorsInOneLine(logging.Filter):
    """Prefect logs a failed task or flow with its traceback; a user error is its message alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], MarcBatchError):
            record.exc_info, record.exc_text = None, None
        return True


RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")


def quiet_user_errors() -> None:
    """Install :class:`UserErrorsInOneLine` on Prefect's run loggers, once per process."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorsInOneLine) for f in logger.filters):
            logger.addFilter(UserErrorsInOneLine())


def run_step(step: Callable[[], T], summarise: Callable[[T], None] | None = None) -> T | State:
    """The skeleton of every flow: ``step()``, then ``summarise`` its result.

    A user error becomes a Failed state carrying its one-line message (and no
    summary), and no log line shows a traceback for it; anything else is a
    bug and propagates as Prefect records it.
    """
    quiet_user_errors()
    try:
        result = step()
    except MarcBatchError as exc:
        get_run_logger().error("error: %s", one_line(exc))
        return Failed(message=one_line(exc))
    if summarise is not None:
        summarise(result)
    return result


def worth_retrying(_task: object, _task_run: object, state: State) -> bool:
    """Retry what may pass next time (a lost worker, a flaky store), not a user's error."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, StoreUnavailable) or not isinstance(error, MarcBatchError)


SHARD_TASK: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": worth_retrying,
    "cache_policy": NO_CACHE,
}
"""How every shard task (encoding, indexing) is retried: twice, on what may pass next time."""
