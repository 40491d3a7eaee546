"""Real runs of the guest workloads under TCG (short durations), and the broken kernel.

Each test runs `kto run --test NAME` (the stress kernel of the arch is a cache hit after the
first build) and checks the verdict, the metrics in job.json and, for the broken kernel
(kernels/series/broken-offline-warn), the finding's title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .kto_cli import REPO, added_line, decoded_guilty, kto_run

pytestmark = pytest.mark.integration

BROKEN = str(REPO / "kernels" / "series" / "broken-offline-warn")
BROKEN_BUG = str(REPO / "kernels" / "series" / "broken-offline-bug")


def _run(arch: str, test: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    return kto_run("--arch", arch, "--test", test, *extra)


@pytest.mark.parametrize(("arch", "duration"), [("x86_64", "6"), ("arm64", "6"), ("sparc64", "6")])
def test_rcutorture_passes_on_every_arch(arch: str, duration: str) -> None:
    smp = ["--smp", "1"] if arch == "sparc64" else []
    rc, job, out = _run(arch, "rcutorture", "--duration", duration, *smp)
    assert rc == 0 and job["status"] == "PASS", out
    m = job["metrics"]["rcutorture"]
    assert m["end"] == "SUCCESS" and m["grace_periods"] > 0
    assert f"rcutorture.shutdown_secs={duration}" in job["workload"]["cmdline"]


def test_rcutorture_onoff_x86_64_offlines_cpus() -> None:
    rc, job, out = _run("x86_64", "rcutorture-onoff", "--duration", "10")
    assert rc == 0 and job["status"] == "PASS", out
    onoff = job["metrics"]["rcutorture"]["onoff"]
    assert onoff["offline_successes"] > 0
    assert onoff["offline_successes"] == onoff["offline_attempts"]


def test_hotplug_x86_64_replays_from_the_seed() -> None:
    rc, job, out = _run(
        "x86_64", "hotplug", "--duration", "10", "--arg", "seed=4242", "--arg", "mode=random"
    )
    assert rc == 0 and job["status"] == "PASS", out
    hp = job["metrics"]["hotplug"]
    assert hp["seed"] == 4242 and hp["cycles"] > 10 and hp["online_failures"] == 0
    assert "rcutorture.torture_type=none" in job["workload"]["cmdline"]


def test_hotplug_is_skip_on_sparc64_without_booting() -> None:
    rc, job, out = _run("sparc64", "hotplug")
    assert rc == 0 and job["status"] == "SKIP", out
    assert "one CPU" in job["verdict"]["reason"]
    assert "qemu" not in job


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_kvm_mmu_notifier_storm(arch: str) -> None:
    rc, job, out = _run(arch, "kvm-mmu-notifier", "--duration", "10")
    assert rc == 0 and job["status"] == "PASS", out
    kvm = job["metrics"]["kvm-mmu-notifier"]
    assert kvm["status"] == "PASS" and kvm["iterations"] > 10 and kvm["exits"] > kvm["iterations"]


def test_mm_churn_and_composed_stress() -> None:
    # arm64: the composed run needs no x86 (its KVM part is tested on both arches above)
    rc, job, out = _run("arm64", "stress-mm", "--duration", "6")
    assert rc == 0 and job["status"] == "PASS", out
    for name in ("hotplug", "kvm-mmu-notifier", "mm-churn"):
        assert job["metrics"][name]["status"] == "PASS", name
    # mm-churn alone on sparc64 (one CPU, no hotplug): test_seeds.py's seed 004 baseline


@pytest.mark.parametrize(
    ("arch", "test", "duration"),
    [("x86_64", "hotplug", "5"), ("x86_64", "rcutorture-onoff", "8"), ("arm64", "hotplug", "5")],
)
def test_broken_kernel_fails_with_the_right_title(arch: str, test: str, duration: str) -> None:
    rc, job, out = _run(arch, test, "--duration", duration, "--patches", BROKEN)
    assert rc == 1 and job["status"] == "FAIL", out
    assert job["verdict"]["title"] == "WARNING in takedown_cpu", out
    # The stack decoded with the kernel's own vmlinux: the WARN the series added, in the
    # file whose maintainers (the tree's own MAINTAINERS) the finding names.
    (patch,) = Path(BROKEN).glob("*.patch")
    guilty = decoded_guilty(job)
    assert (guilty["file"], guilty["line"]) == added_line(patch, "WARN_ON_ONCE(1);"), guilty
    assert "WARN_ON_ONCE(1);" in guilty["source"]
    # 6.1's MAINTAINERS has no section for kernel/cpu.c: the list of last resort only.
    people = guilty["maintainers"]
    assert people["lists"] == ["linux-kernel@vger.kernel.org"] and not people["note"], people
    # A WARNING on a healthy guest keeps the test running to its end (the workload's
    # duration; rcutorture-onoff is ended by the kernel itself).
    assert job["outcome"]["ended_early"] is None, out
    assert job["outcome"]["seconds"] >= int(duration), out


def test_fatal_finding_ends_the_job_soon_after_the_report() -> None:
    # BUG() kills the offlining task holding the hotplug lock: the workload can never end.
    rc, job, out = _run("x86_64", "hotplug", "--duration", "60", "--patches", BROKEN_BUG)
    assert rc == 1 and job["verdict"]["title"] == "kernel BUG in takedown_cpu", out
    o = job["outcome"]
    assert o["ended_early"] and "kernel BUG in takedown_cpu" in o["ended_early"], out
    assert o["sysrq_sent"] and o["killed"] is None
    # The report's last console line, in host time, against QEMU's exit.
    finding = job["verdict"]["findings"][0]
    job_dir = Path(job["qemu"]["argv"][job["qemu"]["argv"].index("-initrd") + 1]).parent
    rows = (job_dir / "console.timing.tsv").read_text().splitlines()[1:]
    reported = float(rows[finding["last_line"] - 1].split("\t")[0])
    assert o["seconds"] - reported <= 20, f"{o['seconds'] - reported:.1f} s after the report"
    assert o["seconds"] < 60 + 30, "the job ran into its time limit"


def test_an_expected_finding_is_xfail_when_caught_and_fail_when_not() -> None:
    # The broken series' WARNING, expected: caught is XFAIL ("caught as expected", exit 0).
    # The same expectation on the baseline kernel: FAIL, "expected ... not seen" (exit 1).
    title = "WARNING in takedown_cpu"
    rc, job, out = _run("x86_64", "hotplug", "--duration", "3", "--patches", BROKEN,
                        "--expect", title)  # fmt: skip
    assert rc == 0 and job["status"] == "XFAIL", out
    assert job["verdict"]["reason"] == f"caught as expected: {title}", out
    rc, job, out = _run("x86_64", "hotplug", "--duration", "3", "--expect", title)
    assert rc == 1 and job["status"] == "FAIL", out
    assert job["verdict"]["reason"].startswith(f"expected {title!r} not seen"), out
