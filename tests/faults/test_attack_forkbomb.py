"""Attack: a fork bomb in a series' Makefile, which never ends by itself. In the sandbox the
build's uid (which runs nothing else) may have KTO_SANDBOX_NPROC processes at once, and the
step is killed, with everything in its pid namespace, after KTO_SANDBOX_WALL_S: the host
keeps its process table and the build ends with an error that says why.

Not run against the code before issue 27 (it would have been an unlimited fork bomb as root
on a shared machine): there a patch directory was built without a sandbox, as root, whom
RLIMIT_NPROC does not bind, with no wall-time limit: the build never ends and the host's
process table fills."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.faults import hostile

pytestmark = pytest.mark.integration
NPROC = 200


def _count(uid: int) -> int:
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def test_a_fork_bomb_is_bounded_and_stopped(tmp_path: Path) -> None:
    from orchestrator.build.tuxmake_run import sandbox_uid

    uid = sandbox_uid()
    assert uid is not None, "this test is about kto running as root"
    # A loop that forks sleepers until the process limit stops it, then the classic
    # recursive bomb into the full table. The sleepers hold make's $(shell) pipe open, so the
    # build waits for ever. (The other order raced: the bomb's last processes could still
    # hold every slot when the loop started, the loop died at its first fork, and make read
    # its "done" before the wall time.)
    block = (
        "KTO_RESULT := $(shell bash -c 'while :; do sleep 1000 & done' 2>/dev/null; "
        "bash -c 'b() { b | b & }; b' 2>/dev/null; echo done)\n"
    )
    patches = hostile.series(tmp_path, block, "fork-bomb")
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _count(uid))
            time.sleep(0.05)

    watcher = threading.Thread(target=sample)
    watcher.start()
    t0 = time.monotonic()
    try:
        # Each step (config, kernel) has the limit; the bomb is in the top Makefile, which
        # both parse, so whichever runs is the one stopped.
        env = {"KTO_SANDBOX_NPROC": str(NPROC), "KTO_SANDBOX_WALL_S": "20"}
        res = hostile.build(patches, env=env, timeout=600)
    finally:
        done.set()
        watcher.join()
    assert res.returncode == 5, res.stderr[-2000:]
    assert "ran longer than 20 s (KTO_SANDBOX_WALL_S)" in res.stderr, res.stderr[-2000:]
    assert time.monotonic() - t0 < 300
    assert 20 < peak <= NPROC + 5, f"{peak} processes of the sandbox uid at once"
    time.sleep(1)
    assert _count(uid) == 0, "processes of the fork bomb outlived its build"
