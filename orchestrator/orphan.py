"""Nothing kto starts outlives it, even a SIGKILL that gives kto no chance to stop it.

die_with_parent: a `kto job` or `kto build` started by a driver stops when the driver is
gone. reaper: make and the compilers a build started die with the kto process that
started them.

The drivers start each task in its own session (so a Ctrl-C on the terminal reaches only
the driver, which stops tasks in order); the price is that nothing kills a task whose
driver was SIGKILLed. A thread watches the parent pid; when the task is re-parented it
SIGTERMs its own process group (make and its compilers; a console session stops its QEMU on
SIGTERM and writes the job's record).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator import progress

PARENT_ENV = "KTO_PARENT_PID"  # the starter's pid, set by a starter that knows it


def die_with_parent(interval: float = 1.0) -> None:
    """Watch the parent *process* (getppid: the process that started this one, whichever
    of its threads did; prctl's PR_SET_PDEATHSIG would fire when that thread ends, and a
    Dask worker starts jobs from a pool thread). A starter that sets KTO_PARENT_PID closes
    the gap before this runs: a parent that died while this process was starting is seen
    at once, not mistaken for the new parent (init or a subreaper)."""
    # Popped: a process this one starts has another parent and must not inherit it.
    given = os.environ.pop(PARENT_ENV, "")
    parent = int(given) if given.isdigit() else os.getppid()

    def gone() -> None:
        progress.say(f"the driver (pid {parent}) is gone: stopping this task")
        os.killpg(os.getpgrp(), signal.SIGTERM)

    if os.getppid() != parent:
        gone()
        return

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                gone()
                return

    threading.Thread(target=watch, name="kto-die-with-parent", daemon=True).start()


REAPER = r"""
import os, signal, sys, time
watched = int(sys.argv[1])

def children():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [watched]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out

seen = []
while True:
    try:
        os.kill(watched, 0)
    except ProcessLookupError:
        break
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0.5)[0]:
        if not sys.stdin.buffer.read(1):
            break  # the pipe closed: kto died (a clean end writes "x" first)
        sys.exit(0)
    seen = children() or seen
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pid in seen:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    time.sleep(3)
"""


@contextmanager
def reaper() -> Iterator[None]:
    """While the block runs, a watcher in its own session remembers this process's
    descendants (tuxmake, make, the compilers) and kills them if this process dies without
    leaving the block (SIGKILL included). A normal exit, or an exception, tells it to go."""
    proc = subprocess.Popen(
        [sys.executable, "-c", REAPER, str(os.getpid())],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield
    finally:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(b"x")
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
