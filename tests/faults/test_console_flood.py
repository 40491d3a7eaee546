"""A guest that floods its console through real QEMU: bounded disk, every line still judged.

The guest writes KTO_FLOOD_MB (default 1024: the issue's 1 GB) of 100-byte lines to the
serial console, then a WARNING report through /dev/kmsg, then exits 0. console.log must
stay within its cap (KTO_CONSOLE_MAX_MB, 16 here, plus the 4 MiB tail), every flood line
must have reached the parser (the line count), and the WARNING after the flood must be the
verdict. Marked slow: through TCG's emulated UART the flood takes minutes, so it runs in
`make test-faults`, not in `make test` (the unit test in test_console_session.py floods a
fake QEMU instead). KTO_FLOOD_MB=64 makes it a quick check.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.integration.kto_cli import kto

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAP_MB = 16
TAIL_MB = 4  # what session.py keeps of the end beyond the cap
LINE = "x" * 99  # + newline: 100 bytes a line


def test_a_real_flood_is_bounded_and_still_judged(tmp_path: Path) -> None:
    flood_mb = int(os.environ.get("KTO_FLOOD_MB", "1024"))
    lines = flood_mb * (1 << 20) // 100
    warning = [
        "------------[ cut here ]------------",
        "WARNING: CPU: 0 PID: 1 at kernel/kto_flood.c:1 kto_flood_check+0x0/0x10",
        "Call Trace:",
        " kto_flood_check+0x0/0x10",
        "---[ end trace 0000000000000000 ]---",
    ]
    kmsg = "; ".join(f"echo '{w}' > /dev/kmsg" for w in warning)
    script = (
        f"yes {LINE} | head -n {lines} > /dev/console; {kmsg}; sleep 1; "
        f"echo kto-flood-done {lines}"
    )
    os.environ["KTO_CONSOLE_MAX_MB"] = str(CAP_MB)
    t0 = time.monotonic()
    try:
        res = kto(
            "boot", "--arch", "x86_64", "--timeout", "3600", "--", "sh", "-c", script,
            results=tmp_path, timeout=4000,
        )  # fmt: skip
    finally:
        del os.environ["KTO_CONSOLE_MAX_MB"]
    took = time.monotonic() - t0
    (job_dir,) = (p.parent for p in tmp_path.glob("*/*/job.json"))
    job = json.loads((job_dir / "job.json").read_text())
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    assert job["verdict"]["status"] == "FAIL"
    assert job["verdict"]["title"] == "WARNING in kto_flood_check", job["verdict"]
    log = job_dir / "console.log"
    assert log.stat().st_size <= (CAP_MB + TAIL_MB + 1) << 20, log.stat().st_size
    assert f"kto-flood-done {lines}" in log.read_bytes()[-(1 << 20) :].decode(errors="replace")
    assert job["outcome"]["lines"] >= lines, job["outcome"]
    print(f"flood: {flood_mb} MiB through the console in {took:.0f} s, log {log.stat().st_size} B")
