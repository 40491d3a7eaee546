#!/usr/bin/env python3
"""Boot overhead: `kto boot KERNEL -- true` as a whole process vs the bare QEMU command.

Per arch, alternating N times: the wall time of the `kto` process (start-up imports, plan,
initramfs assembly, QEMU, console handling, records) and of the exact QEMU argv that kto
recorded for that boot (same kernel, same initrd bytes), run directly with its console read
to EOF. Prints the medians, their ratio and the range of per-pair ratios. Goal: <= 1.05x.

TCG boot times vary by +-15 % run to run, which swamps a few per cent of overhead in the
ratio of medians. So it also prints kto's own share, measured inside each kto run: the
process's wall time minus the time its QEMU ran (job.json `durations.guest`), and the ratio
that share gives over the bare median ("own-based").

    .venv/bin/python bench/boot.py [--arches x86_64,arm64,sparc64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import progress  # noqa: E402
from orchestrator.build.kernel import BuildRequest, build  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    res = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=REPO, check=False
    )
    return time.monotonic() - t0, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arches", default="x86_64,arm64,sparc64")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    progress.set_quiet(True)
    # What a user runs: the venv's `kto` executable (its quick exit included), else -m.
    script = Path(sys.executable).parent / "kto"
    kto = [str(script)] if script.is_file() else [sys.executable, "-m", "orchestrator.cli"]
    print(
        f"{'arch':8} {'kto':>8} {'bare':>8} {'ratio':>7}  {'per-pair ratios':15} "
        f"{'kto own':>8} {'own-based':>9} {'guest in kto':>12}"
    )
    for arch in args.arches.split(","):
        # Built once up front (a cache hit after the first run): the timings are boots only.
        kernel = build(BuildRequest(tree="debian-6.1", arch=arch)).dir
        results = Path(tempfile.mkdtemp(prefix="kto-bench-boot-"))
        env = {**os.environ, "KTO_RESULTS": str(results)}
        argv = [*kto, "boot", str(kernel), "--arch", arch, "--accel", "tcg", "--", "true"]
        timed(argv, env)  # warm: the base initramfs and helpers are cached from here on
        kto_s, bare_s, own_s, guest_s = [], [], [], []
        for _ in range(args.repeat):
            secs, res = timed(argv, env)
            assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
            job = json.loads((results / "latest" / f"{arch}-command" / "job.json").read_text())
            own_s.append(secs - job["durations"]["guest"])
            guest_s.append(job["durations"]["guest"])
            qemu_argv = job["qemu"]["argv"]
            # The initrd of that boot, kept aside: the bare run boots the same bytes.
            initrd = qemu_argv[qemu_argv.index("-initrd") + 1]
            keep = results / "bare-initrd.img"
            shutil.copyfile(initrd, keep)
            qemu_argv[qemu_argv.index("-initrd") + 1] = str(keep)
            # The status channel file is per job; the bare run writes its own.
            qemu_argv = [a.replace(str(Path(initrd).parent), str(results)) for a in qemu_argv]
            bare, res = timed(qemu_argv, env)
            assert res.returncode == 0, res.stdout.decode(errors="replace")[-2000:]
            kto_s.append(secs)
            bare_s.append(bare)
        m = statistics.median
        ratios = sorted(k / b for k, b in zip(kto_s, bare_s, strict=True))
        print(
            f"{arch:8} {m(kto_s):7.2f}s {m(bare_s):7.2f}s {m(kto_s) / m(bare_s):6.3f}x  "
            f"{ratios[0]:.3f}-{ratios[-1]:.3f}    {m(own_s) * 1000:6.0f}ms "
            f"{(m(bare_s) + m(own_s)) / m(bare_s):8.3f}x {m(guest_s):11.2f}s"
        )
        shutil.rmtree(results, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
