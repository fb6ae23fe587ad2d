"""A watchdog that ends a CLI run's child processes when the run ends, however it ends.

A flow command starts Prefect's ephemeral API server as a child process.
If the command is SIGKILLed (as the OOM killer does), nothing in it runs
again, and the server would live on as an orphan. So before any child
starts, the command starts this watchdog in its own session, holding the
read end of a pipe whose write end only the command holds. The watchdog
notes the command's descendants every half second; when the pipe reports
end-of-file (the command is gone, by exit or by signal), it sends SIGTERM
to the ones it saw that still run, and SIGKILL a few seconds later.

Processes are recognised by pid *and* start time, so a recycled pid is
never signalled.
"""

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 5.0

Process = tuple[int, int]  # pid, start time in clock ticks since boot


def start() -> None:
    """Start the watchdog for this process; it lives until this process is gone."""
    read_end, write_end = os.pipe()
    subprocess.Popen(
        [sys.executable, "-m", "marc_batch.cli.reaper", str(os.getpid()), str(read_end)],
        pass_fds=(read_end,),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    os.close(read_end)
    # The write end stays open, unseen by other children (not inheritable), until we exit.
    os.set_inheritable(write_end, False)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[Process]:
    """Every live descendant of ``root``."""
    parents: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents.setdefault(found[0], []).append((int(entry.name), found[1]))
    seen: set[Process] = set()
    frontier = [root]
    while frontier:
        for child in parents.get(frontier.pop(), []):
            if child not in seen:
                seen.add(child)
                frontier.append(child[0])
    return seen


def _signal(processes: set[Process], signum: int) -> set[Process]:
    """Signal the processes that are still the ones seen; return those still alive."""
    alive = set()
    for pid, started in processes:
        found = _stat(pid)
        if found is None or found[1] != started:
            continue
        try:
            os.kill(pid, signum)
            alive.add((pid, started))
        except ProcessLookupError:
            pass
    return alive


def watch(parent: int, pipe: int) -> None:
    seen: set[Process] = set()
    while not select.select([pipe], [], [], POLL_SECONDS)[0]:
        seen |= descendants(parent)
    seen.discard((os.getpid(), _stat(os.getpid())[1]))  # type: ignore[index]
    alive = _signal(seen, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {p for p in alive if (_stat(p[0]) or (0, -1))[1] == p[1]}
    _signal(alive, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
