"""kto SIGKILLed, SIGINTed or SIGTERMed mid-build: no make or compiler of that build outlives
it, an interrupt is exit 3 (infrastructure/interrupted, never "the kernel failed"), and the
next build of the same tree works (the tree lock went with the process, and what the config
step left behind does not stop it)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ..integration.kto_cli import KTO_ARGV

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _procs_under(path: str) -> list[str]:
    res = subprocess.run(["pgrep", "-af", path], capture_output=True, text=True)
    return [ln for ln in res.stdout.splitlines() if "pgrep" not in ln]


@pytest.mark.parametrize(
    ("sig", "exit_code"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 3), (signal.SIGTERM, 3)],
    ids=["SIGKILL", "SIGINT", "SIGTERM"],
)
def test_signal_mid_build_leaves_no_make_behind(
    tmp_path: Path, sig: signal.Signals, exit_code: int
) -> None:
    from orchestrator.build.cache import work_dir

    frag = tmp_path / "unique.config"
    frag.write_text(f"# {uuid.uuid4()}\nCONFIG_PRINTK=y\n")  # new inputs: the config step runs
    scratch = str(work_dir("debian-6.1", "x86_64") / "kconfig")
    argv = [
        *KTO_ARGV,
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
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == exit_code, err.decode(errors="replace")[-2000:]
    if sig != signal.SIGKILL:
        assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _procs_under(scratch):
        time.sleep(0.2)
    assert _procs_under(scratch) == [], "make outlived the kto that started it"
    if sig == signal.SIGTERM:
        return  # kto turns SIGTERM into SIGINT's KeyboardInterrupt: its cleanup is the same
    again = subprocess.run([*argv, "-q"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
