"""The one-host pool: tasks within the core budget, exit codes, and what each cost."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.matrix.pool import Budget, Pool, Task

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def test_tasks_share_the_budget_and_report_their_cpu(tmp_path: Path) -> None:
    pool = Pool(Budget(cores=1, mem_mb=1024))
    busy = Task("busy", [sys.executable, "-c", BUSY], 1, 10, tmp_path / "busy.log")
    fail = Task("fail", [sys.executable, "-c", "raise SystemExit(3)"], 1, 10, tmp_path / "f.log")
    pool.add(busy, fail)
    pool.run()
    stats = {t.key: t.stats() for t in pool.done}
    assert stats["busy"]["rc"] == 0 and stats["fail"]["rc"] == 3
    assert float(stats["busy"]["cpu_s"]) >= 0.3  # type: ignore[arg-type]
    # one core: the second task waited for the first to end
    assert float(stats["fail"]["wait_s"]) >= 0.3  # type: ignore[arg-type]
    assert float(stats["busy"]["wall_s"]) >= 0.3  # type: ignore[arg-type]


def test_a_boot_is_charged_its_measured_load_once_known() -> None:
    from orchestrator.matrix.driver import boot_cores

    assert boot_cores({}, "x86_64:rcutorture:2", 2) == 2  # unknown: its vCPUs
    assert boot_cores({"x86_64:rcutorture:2": 1.04}, "x86_64:rcutorture:2", 2) == 1.0
    assert boot_cores({"x86_64:rcutorture:2": 0.78}, "x86_64:rcutorture:2", 2) == 0.8
    assert boot_cores({"x86_64:smoke:2": 0.05}, "x86_64:smoke:2", 2) == 0.25  # a floor
    assert boot_cores({"x86_64:rcutorture:2": 3.5}, "x86_64:rcutorture:2", 2) == 2  # capped


def test_fractional_charges_fill_the_budget_without_overcommitting(tmp_path: Path) -> None:
    """Guests measured at 0.6 cores: three fit in two cores at once, a fourth waits."""
    pool = Pool(Budget(cores=2, mem_mb=1024))
    nap = [sys.executable, "-c", "import time; time.sleep(0.6)"]
    tasks = [Task(f"g{i}", nap, 0.6, 10, tmp_path / f"g{i}.log") for i in range(4)]
    pool.add(*tasks)
    pool.run()
    start = {t.key: t.started for t in pool.done}
    end = {t.key: t.ended for t in pool.done}
    first_end = min(end[k] for k in ("g0", "g1", "g2"))
    assert max(start[k] for k in ("g0", "g1", "g2")) < first_end  # three ran together
    assert start["g3"] >= first_end  # 2.4 > 2: the fourth waited for a slot


def test_a_build_does_not_hold_boots_back_and_runs_niced(tmp_path: Path) -> None:
    """One core: a build (all of it, as -j1) and a boot run side by side, the build at
    lower priority; a second build waits for the first."""
    pool = Pool(Budget(cores=1, mem_mb=8192))
    niceness = "import os, sys, time; print(os.nice(0), sys.argv[1:]); time.sleep(0.5)"
    b1 = Task("b1", [sys.executable, "-c", niceness], 1, 10, tmp_path / "b1.log", build=True)
    b2 = Task("b2", [sys.executable, "-c", niceness], 1, 10, tmp_path / "b2.log", build=True)
    boot = Task("boot", [sys.executable, "-c", niceness], 1, 10, tmp_path / "boot.log")
    pool.add(b1, b2, boot)
    pool.run()
    t = {x.key: x for x in pool.done}
    assert t["boot"].started < t["b1"].ended  # the boot did not wait for the build
    assert t["b2"].started >= t["b1"].ended  # builds share -j among themselves
    assert b1.log.read_text().split()[0] == "10" and "'-j', '1'" in b1.log.read_text()
    assert boot.log.read_text().split()[0] == "0"


def test_an_error_in_the_pool_loop_stops_every_task(tmp_path: Path, monkeypatch) -> None:
    """Not only Ctrl-C: whatever ends the loop (here a failing progress hook) takes the
    running tasks with it; a build's make must never outlive the matrix."""
    import pytest

    pool = Pool(Budget(cores=2, mem_mb=1024))
    long = Task("long", [sys.executable, "-c", "import time; time.sleep(60)"], 1, 10,
                tmp_path / "long.log")  # fmt: skip

    def boom(task: Task, rc: int) -> list[Task]:
        raise RuntimeError("a bug in a done hook")

    short = Task("short", [sys.executable, "-c", "pass"], 1, 10, tmp_path / "s.log", on_done=boom)
    pool.add(long, short)
    with pytest.raises(RuntimeError):
        pool.run()
    assert long.proc is not None and long.proc.poll() is not None  # stopped, reaped
    assert pool.running == []


def test_memory_is_shared_by_builds_and_boots(tmp_path: Path) -> None:
    """Cores are budgeted per class, memory for all: a boot that does not fit beside a
    running build's memory waits for it."""
    pool = Pool(Budget(cores=2, mem_mb=3000))
    nap = [sys.executable, "-c", "import time; time.sleep(0.5)"]
    build = Task("build", nap, 1, 2048, tmp_path / "b.log", build=True)
    boot = Task("boot", nap, 1, 2048, tmp_path / "g.log")
    pool.add(build, boot)
    pool.run()
    t = {x.key: x for x in pool.done}
    assert t["boot"].started >= t["build"].ended
