"""A guest that floods its console: bounded disk, every line still judged.

1. Through real QEMU: the guest writes KTO_FLOOD_MB (default 32: twice the cap used here)
   of 100-byte lines to the serial console, then a WARNING report through /dev/kmsg, then
   exits 0. console.log stays within its cap (KTO_CONSOLE_MAX_MB=16 plus the 4 MiB tail),
   every flood line reaches the parser (the line count) and the WARNING after the flood is
   the verdict. TCG's emulated 8250 UART carries ~110 KB/s on this machine class (32 MB:
   ~5 min), so 1 GB through QEMU itself would take hours;
2. 1 GB (10.7 million lines) through the fake QEMU (tests/fakeqemu): the same session and
   parser code at the speed a pty carries, with the same checks (test_console_session.py
   floods 6 MB in the unit suite).

Both are marked slow: `make test-faults` runs them, `make test` does not.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from orchestrator.records.outcome import Timeouts
from tests.integration.kto_cli import kto
from tests.test_console_session import (  # noqa: F401  (fixtures, used by name)
    Run,
    fake,
    fake_qemu,
    flood_check,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAP_MB = 16
TAIL_MB = 4  # what session.py keeps of the end beyond the cap
LINE = "x" * 99  # + newline: 100 bytes a line


def test_a_real_flood_is_bounded_and_still_judged(tmp_path: Path) -> None:
    flood_mb = int(os.environ.get("KTO_FLOOD_MB", "32"))
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
        f"yes {LINE} | head -n {lines} > /dev/console; {kmsg}; sleep 1; echo kto-flood-done {lines}"
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
    (job_dir,) = (p.parent for p in tmp_path.glob("2*/*/job.json"))
    job = json.loads((job_dir / "job.json").read_text())
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    assert job["verdict"]["status"] == "FAIL"
    assert job["verdict"]["title"] == "WARNING in kto_flood_check", job["verdict"]
    log = job_dir / "console.log"
    assert log.stat().st_size <= (CAP_MB + TAIL_MB + 1) << 20, log.stat().st_size
    assert f"kto-flood-done {lines}" in log.read_bytes()[-(1 << 20) :].decode(errors="replace")
    assert job["outcome"]["lines"] >= lines, job["outcome"]
    print(f"flood: {flood_mb} MiB through the console in {took:.0f} s, log {log.stat().st_size} B")


def test_a_1gb_flood_through_the_fake_qemu(fake: Run) -> None:  # noqa: F811
    lines = 10_738_000  # 100-byte lines, a multiple of the fake's 1000-line chunks: > 1 GiB
    t0 = time.monotonic()
    o = flood_check(fake, lines, Timeouts(boot=60, test=1200, silence=60, poweroff=60))
    took = time.monotonic() - t0
    print(f"flood: {o.bytes >> 20} MiB, {o.lines} lines in {took:.0f} s")
