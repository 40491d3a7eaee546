"""A real Dask cluster on loopback for tests and benches: `dask scheduler` and N
`dask worker` processes started here, each in its own session, stopped workers first.

nanny=True starts workers as `kto workers run` does: a nanny that starts the worker process,
which runs the tasks (so a test can kill both, as a host crash or an OOM kill would); the
default starts the worker process alone (--no-nanny: the pid a bench kills is the worker)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(DASK), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=REPO,
    )


def _wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    """Until the scheduler has n workers (not a fixed sleep: a loaded host is slower)."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Client(address, timeout="5s") as client:
                client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def loopback_cluster(
    workers: int = 2, nanny: bool = False
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """(scheduler address, worker processes: the nannies, or the workers with
    nanny=False); one thread per worker, as kto asks."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    try:
        started = [
            _start(
                "worker", address, "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                *([] if nanny else ["--no-nanny"]),
            )
            for i in range(1, workers + 1)
        ]  # fmt: skip
        procs += started
        _wait_for_workers(address, workers)
        yield address, started
    finally:
        # Workers before the scheduler (a worker whose scheduler is gone spends its
        # shutdown reconnecting); whatever is still there after 30 s is killed.
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
