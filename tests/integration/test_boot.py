"""Real boots of the tiny kernels under TCG: PASS, panic, hang, QEMU killed, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.vm.accel import choose_accel

from .kto_cli import REPO, kto

pytestmark = pytest.mark.integration


def _job(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.strip().startswith("record:"))
    return json.loads(Path(line.split(":", 1)[1].strip()).read_text())


def _qemu_pids(results: Path) -> set[int]:
    """QEMUs booting from this test's results dir (its initrd lives there): other tests'
    guests, run beside this one, are not this test's business."""
    res = subprocess.run(
        ["pgrep", "-f", f"qemu-system-.*{results}"], capture_output=True, text=True
    )
    return {int(p) for p in res.stdout.split()}


@pytest.mark.parametrize("arch", ["x86_64", "arm64", "sparc64"])
def test_boot_runs_a_command_and_powers_off(arch: str) -> None:
    res = kto(
        "boot",
        "--arch",
        arch,
        "--",
        "sh",
        "-c",
        "echo kto-says-$((6*7)); grep -c ^processor /proc/cpuinfo || true",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    job = _job(res.stdout)
    assert job["status"] == "PASS"
    # Whatever this host offers (KVM on real hardware, TCG here): what the probe says, and
    # what QEMU was started with.
    assert job["accel"]["accel"] == choose_accel("auto", arch).accel
    argv = job["qemu"]["argv"]
    assert argv[argv.index("-accel") + 1] == job["accel"]["accel"]
    assert job["outcome"]["qemu_exit"] == 0 and job["outcome"]["boot_ok"]
    console = Path(res.stdout.split("console:")[1].split()[0])
    text = console.read_text(errors="replace")
    assert "kto-says-42" in text
    assert "Linux version" in text
    assert job["qemu"]["argv"][0].startswith("qemu-system-")


def test_command_status_is_passed_through() -> None:
    res = kto("boot", "--arch", "arm64", "--", "sh", "-c", "exit 7")
    assert res.returncode == 7, res.stdout + res.stderr
    assert _job(res.stdout)["status"] == "FAIL"


def test_crash_is_fail_with_the_panic_finding() -> None:
    res = kto("boot", "--arch", "x86_64", "--", "sh", "-c", "echo c > /proc/sysrq-trigger")
    assert res.returncode == 1, res.stdout + res.stderr
    job = _job(res.stdout)
    assert job["status"] == "FAIL"
    kinds = {f["kind"] for f in job["verdict"]["findings"]}
    assert kinds & {"panic", "oops", "bug"}, job["verdict"]
    assert "sysrq" in json.dumps(job["verdict"]["findings"]).lower()


def test_boot_panic_no_init() -> None:
    res = kto("boot", "--arch", "arm64", "--append", "rdinit=/no/such/init init=/no/such/init")
    assert res.returncode == 1, res.stdout + res.stderr
    job = _job(res.stdout)
    assert job["status"] == "FAIL"
    assert "Kernel panic" in job["verdict"]["title"] or any(
        f["kind"] == "panic" for f in job["verdict"]["findings"]
    )


def test_stuck_guest_ends_with_stacks() -> None:
    res = kto("boot", "--arch", "arm64", "--timeout", "5", "--", "sleep", "600", timeout=300)
    job = _job(res.stdout)
    assert job["status"] in ("FAIL", "ERROR"), job
    assert job["outcome"]["sysrq_sent"] is True
    console = Path(res.stdout.split("console:")[1].split()[0]).read_text(errors="replace")
    assert "sysrq: Show Blocked State" in console or "sysrq: Show State" in console
    assert job["status"] == "FAIL" and res.returncode == 1


def _sleeping_guest(tmp_path: Path, arch: str, pipe: bool = True) -> subprocess.Popen[str]:
    """`kto boot -- sleep 600` in the background, once its QEMU is running."""
    out = subprocess.PIPE if pipe else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "boot", "--arch", arch, "--", "sleep", "600"],
        cwd=REPO,
        env={**os.environ, "KTO_RESULTS": str(tmp_path)},
        stdout=out,
        stderr=out,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _qemu_pids(tmp_path):
        time.sleep(0.5)
    assert _qemu_pids(tmp_path), "QEMU never started"
    return proc


def test_qemu_killed_from_outside_is_error_without_orphans(tmp_path: Path) -> None:
    proc = _sleeping_guest(tmp_path, "x86_64")
    time.sleep(5)
    for pid in _qemu_pids(tmp_path):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    job = _job(out)
    assert job["status"] == "ERROR" and "signal 9" in job["verdict"]["reason"]
    assert not _qemu_pids(tmp_path)


def test_sigterm_to_kto_kills_qemu(tmp_path: Path) -> None:
    proc = _sleeping_guest(tmp_path, "arm64")
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err[-3000:]
    assert "interrupted by SIGTERM" in err
    time.sleep(1)
    assert not _qemu_pids(tmp_path), "QEMU outlived kto"


def test_sigkill_to_kto_takes_qemu_with_it(tmp_path: Path) -> None:
    proc = _sleeping_guest(tmp_path, "x86_64", pipe=False)
    time.sleep(2)
    proc.kill()  # no chance to clean up: QEMU loses its console pty and exits
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _qemu_pids(tmp_path):
        time.sleep(0.2)
    assert not _qemu_pids(tmp_path), "QEMU outlived a SIGKILLed kto"


def test_patched_kernel_boots_with_the_banner() -> None:
    series = str(REPO / "kernels" / "series" / "kto-banner")
    res = kto("run", "--arch", "x86_64", "--patches", series)
    assert res.returncode == 0, res.stdout + res.stderr
    console = Path(res.stdout.split("console:")[1].split()[0]).read_text(errors="replace")
    assert "kto-banner: this kernel carries the kto-banner test series" in console


@pytest.mark.parametrize("arch", ["x86_64", "arm64", "sparc64"])
def test_network_ssh_commands_and_file_fetch(arch: str) -> None:
    res = kto(
        "boot",
        "--arch",
        arch,
        "--network",
        "--ssh",
        "uname -m",
        "--fetch",
        "/proc/version",
        "--",
        "sh",
        "-c",
        "echo ready",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    job = _job(res.stdout)
    net = job["network"]
    assert net["error"] is None and net["commands"] == [{"command": "uname -m", "status": 0}]
    argv = " ".join(job["qemu"]["argv"])
    assert f"hostfwd=tcp:127.0.0.1:{net['ssh_port']}-:22" in argv
    jobdir = Path(res.stdout.split("record:")[1].split()[0]).parent
    machine = {"x86_64": "x86_64", "arm64": "aarch64", "sparc64": "sparc64"}[arch]
    assert (jobdir / "ssh" / "01.out").read_text().strip() == machine
    assert (jobdir / "files" / "proc__version").read_text().startswith("Linux version")


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_status_channel_carries_the_exit_status(arch: str) -> None:
    res = kto("boot", "--arch", arch, "--", "sh", "-c", "exit 5")
    job = _job(res.stdout)
    assert res.returncode == 5
    assert job["status_channel"]["test_rc"] == 5 and job["status_channel"]["poweroff"]
