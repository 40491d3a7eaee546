"""kto SIGKILLed mid-build: no make or compiler of that build outlives it, and the next build
of the same tree works (the tree lock went with the process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _procs_under(path: str) -> list[str]:
    res = subprocess.run(["pgrep", "-af", path], capture_output=True, text=True)
    return [ln for ln in res.stdout.splitlines() if "pgrep" not in ln]


def test_sigkill_mid_build_leaves_no_make_behind(tmp_path: Path) -> None:
    from orchestrator.build.cache import work_dir

    frag = tmp_path / "unique.config"
    frag.write_text(f"# {uuid.uuid4()}\nCONFIG_PRINTK=y\n")  # new inputs: the config step runs
    scratch = str(work_dir("debian-6.1", "x86_64") / "kconfig")
    argv = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "build",
        "--arch",
        "x86_64",
        "--config",
        str(frag),
    ]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not _procs_under(scratch):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert _procs_under(scratch), "the config step never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _procs_under(scratch):
        time.sleep(0.2)
    assert _procs_under(scratch) == [], "make outlived the kto that started it"
    again = subprocess.run([*argv, "-q"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
