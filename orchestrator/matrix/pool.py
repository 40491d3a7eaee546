"""Run a matrix's builds and boots as processes within a CPU and memory budget, on one host.

Every task is a `kto build` or `kto job` process in its own session (process group): a task
that crashes or is killed takes nothing else with it, and stopping the pool stops every
QEMU and make it started. A task starts when its dependencies are done and its cost fits
what is free. Builds and boots are budgeted apart: boots share the cores by their measured
load (never more than the budget: a starved vCPU makes RCU stalls that are not the
kernel's); builds share them by -j (what other builds leave, at least 1) and run at nice
BUILD_NICE, so a long build soaks up what the guests leave idle instead of holding every
boot back until it ends. Kept here, not in Dask: the one-host default needs no server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import progress

# CFS gives a nice-10 process about a tenth of a nice-0 one's share: a guest beside a build
# runs near full speed, and the build has every cycle the guests do not use.
BUILD_NICE = 10


@dataclass
class Task:
    key: str
    argv: list[str]
    cores: float  # what it occupies; a build gets "-j N" appended with what is free (>= cores)
    mem_mb: int
    log: Path  # stdout and stderr of the process
    label: str = ""
    build: bool = False
    load_key: str = ""  # what kind of job (arch:test): its measured load costs it next time
    on_done: Callable[[Task, int], list[Task]] | None = None  # may queue more tasks
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    rc: int | None = None
    given_cores: float = 0
    queued: float = 0.0  # when it could have started (added to the queue)
    ended: float = 0.0
    cpu_s: float = 0.0  # user + system of the task and the children it waited for (QEMU)

    def stats(self) -> dict[str, object]:
        return {
            "key": self.key,
            "label": self.label,
            "load_key": self.load_key,
            "build": self.build,
            "rc": self.rc,
            "cores": self.given_cores,
            "wait_s": round(self.started - self.queued, 3),
            "wall_s": round(self.ended - self.started, 3),
            "cpu_s": round(self.cpu_s, 3),
        }


@dataclass
class Budget:
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    mem_mb: int = field(
        default_factory=lambda: os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    )


class Pool:
    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.queue: list[Task] = []
        self.running: list[Task] = []
        self.done: list[Task] = []
        self.stopped: list[Task] = []  # running when the pool was stopped: not done
        self.stopped_at = 0.0  # time.time() of the stop: what a task wrote before it stands
        self._last_status = 0.0

    def add(self, *tasks: Task) -> None:
        now = time.monotonic()
        for t in tasks:
            t.queued = now
        self.queue.extend(tasks)

    def _free(self, build: bool) -> tuple[float, int]:
        """Cores free for a build (what other builds' -j leave) or a boot (what other boots'
        loads leave), and memory free for either."""
        cores = self.budget.cores - sum(t.given_cores for t in self.running if t.build == build)
        mem = self.budget.mem_mb - sum(t.mem_mb for t in self.running)
        return cores, mem

    def _start(self, task: Task, cores: float) -> None:
        task.given_cores = cores
        argv = task.argv
        if task.build:  # nice execs the build: the pid, its session and rusage stay the task's
            argv = ["nice", "-n", str(BUILD_NICE), *argv, "-j", str(int(cores))]
        task.log.parent.mkdir(parents=True, exist_ok=True)
        with open(task.log, "wb") as log:
            task.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        task.started = time.monotonic()
        self.running.append(task)
        jobs = f" (-j{int(cores)})" if task.build else ""
        progress.say(f"start {task.label or task.key}{jobs}")

    def _schedule(self) -> None:
        for task in list(self.queue):
            free_cores, free_mem = self._free(task.build)
            # Too big to ever fit: it runs alone in its class (cores) or alone (memory).
            if task.cores > free_cores + 1e-9 and any(t.build == task.build for t in self.running):
                continue
            if task.mem_mb > free_mem and self.running:
                continue
            if task.build:  # whole make jobs: what is free, at least its own charge
                cores: float = max(1, min(self.budget.cores, int(max(task.cores, free_cores))))
            else:
                cores = min(task.cores, self.budget.cores)
            self.queue.remove(task)
            self._start(task, cores)

    def _reap(self) -> None:
        for task in list(self.running):
            assert task.proc is not None
            # wait4, not poll: the task's CPU time comes with its exit status.
            try:
                pid, status, usage = os.wait4(task.proc.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (Popen.wait in stop)
                pid, status, usage = task.proc.pid, 0, None
            if pid == 0:
                continue
            rc = task.proc.returncode
            if usage is not None:
                rc = os.waitstatus_to_exitcode(status)
                task.proc.returncode = rc
                task.cpu_s = usage.ru_utime + usage.ru_stime
            task.rc = rc
            task.ended = time.monotonic()
            self.running.remove(task)
            self.done.append(task)
            secs = task.ended - task.started
            progress.say(
                f"done  {task.label or task.key}: exit {rc} in {progress.fmt_secs(secs)} "
                f"[{len(self.done)} done, {len(self.running)} running, {len(self.queue)} queued]"
            )
            if task.on_done:
                self.add(*task.on_done(task, rc))

    def run(self, every: float = 60.0) -> None:
        """Until every task is done; on SIGINT/SIGTERM every running task is stopped."""
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def stop(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        # Set both explicitly: a process started in the background by a shell inherits
        # SIGINT ignored, and Python then installs no KeyboardInterrupt handler of its own.
        for s in old:
            signal.signal(s, stop)
        try:
            while self.queue or self.running:
                self._schedule()
                self._reap()
                now = time.monotonic()
                if now - self._last_status > every and self.running:
                    self._last_status = now
                    names = ", ".join(t.label or t.key for t in self.running)
                    progress.say(f"running: {names}; {len(self.queue)} queued")
                time.sleep(0.1)
        except BaseException:  # Ctrl-C, or a bug: either way no task outlives the pool
            self.stop()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every running task's process group (a `kto job` writes its ERROR record
        and stops its QEMU), then SIGKILL what is left after `grace`."""
        self.stopped_at = time.time()
        for task in self.running:
            assert task.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for task in self.running:
            assert task.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                task.proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.proc.pid, signal.SIGKILL)
            task.proc.wait()
        self.stopped.extend(self.running)
        self.running.clear()


def kto_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]
