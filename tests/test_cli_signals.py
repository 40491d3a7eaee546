"""The CLI's signal handling as a process sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_sigint_reaches_kto_even_when_started_with_it_ignored(tmp_path: Path) -> None:
    # `kto ... &` from a shell script starts kto with SIGINT ignored; a `kill -INT` must
    # still stop it (exit 3). `kto parse` on a FIFO nobody writes blocks in open().
    import os
    import signal
    import time

    fifo = tmp_path / "console.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "parse", str(fifo)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.5)  # started and blocked
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    finally:
        proc.kill()
    assert proc.returncode == 3, proc.communicate()
