"""Rows and tables of scale-out: ``dask_workers.json``, the refresh flow on Dask clusters."""

from benchmarks.summary.pipeline import phase_table
from benchmarks.summary.table import Goal, Part, Row, seconds

SPEEDUP = Goal(">=", 1.7, ">= 1.7")


def dask_workers(data: dict) -> Part:
    """The largest cluster against one worker: the whole flow (the goal) and its encoding."""
    arms = data["workers"]
    one, most = min(arms, key=int), max(arms, key=int)
    what = f"{data['rows']:,} rows, tiny BERT, 1 thread per worker"
    rows = [
        Row(
            f"Refresh flow throughput, Dask {most} workers / {one} ({what})",
            f"{arms[most]['rows_per_second']:,.0f} rows/s",
            f"{arms[one]['rows_per_second']:,.0f} rows/s",
            arms[most]["speedup"],
            2,
            SPEEDUP,
            data["machine"],
            topic="Scale-out",
        ),
        Row(
            f"Encoding wall time (all shard tasks), Dask {most} workers against {one}: "
            f"speed-up ({what})",
            seconds(arms[most]["encode_wall_seconds"]),
            seconds(arms[one]["encode_wall_seconds"]),
            arms[most]["encode_speedup"],
            2,
            machine=data["machine"],
            topic="Scale-out",
        ),
    ]
    runs = {f"{n} worker{'s' if int(n) > 1 else ''}": run for n, run in arms.items()}
    title = f"Where the time goes on Dask ({data['catalogue']})"
    return Part(rows, [phase_table(title, runs)])
