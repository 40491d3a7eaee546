"""Pure cores of booting: the QEMU argv, the accelerator choice, the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.arch import load_profile
from orchestrator.errors import UserError
from orchestrator.records import exits
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.verdict import Status, judge
from orchestrator.vm.accel import HostFacts, choose_accel, kvm_problem
from orchestrator.vm.qemu import BootSpec, build_argv, kernel_cmdline

K, INITRD = Path("/k/bzImage"), Path("/k/initrd")


def _opt(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_x86_64_argv_matches_the_measured_command_line() -> None:
    argv = build_argv(load_profile("x86_64"), BootSpec(K, INITRD, smp=4, append=["kto.x=1"]))
    assert argv[0] == "qemu-system-x86_64"
    assert _opt(argv, "-accel") == "tcg"
    assert _opt(argv, "-cpu") == "qemu64,+svm"
    assert _opt(argv, "-smp") == "4"
    assert _opt(argv, "-kernel") == str(K) and _opt(argv, "-initrd") == str(INITRD)
    append = _opt(argv, "-append")
    assert append.startswith("console=ttyS0 ") and "panic=-1" in append
    assert append.endswith("rdinit=/init kto.x=1")
    assert "-nographic" in argv and "-no-reboot" in argv


def test_kvm_uses_host_cpu() -> None:
    argv = build_argv(load_profile("arm64"), BootSpec(K, INITRD, accel="kvm"))
    assert _opt(argv, "-cpu") == "host" and _opt(argv, "-accel") == "kvm"
    assert "virtualization=on" in _opt(argv, "-M")


def test_sparc64_has_one_cpu_and_no_smp_flag() -> None:
    prof = load_profile("sparc64")
    argv = build_argv(prof, BootSpec(K, INITRD, smp=1))
    assert "-smp" not in argv
    assert _opt(argv, "-cpu") == "TI UltraSparc IIi"
    with pytest.raises(UserError, match="at most 1 CPU"):
        build_argv(prof, BootSpec(K, INITRD, smp=2))
    assert "console=ttyS0" in kernel_cmdline(prof, BootSpec(K, INITRD, smp=1))


HW = HostFacts("x86_64", kvm_dev=True, pvm=False, cpu_flags=frozenset({"vmx", "sse2"}))


@pytest.mark.parametrize(
    ("host", "guest", "accel", "reason"),
    [
        (HW, "x86_64", "kvm", "hardware KVM"),
        (HW, "arm64", "tcg", "differs from host"),
        (HostFacts("x86_64", True, True, frozenset()), "x86_64", "tcg", "PVM"),
        (HostFacts("x86_64", False, False, frozenset({"vmx"})), "x86_64", "tcg", "/dev/kvm"),
        (HostFacts("x86_64", True, False, frozenset({"sse2"})), "x86_64", "tcg", "vmx/svm"),
        (HostFacts("arm64", True, False, frozenset()), "arm64", "kvm", "hardware KVM"),
    ],
)
def test_auto_accel(host: HostFacts, guest: str, accel: str, reason: str) -> None:
    choice = choose_accel("auto", guest, host)
    assert choice.accel == accel
    assert reason in choice.reason


def test_probe_reads_the_cpu_flags_of_its_root(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "kvm").write_text("")
    (tmp_path / "proc").mkdir()
    cpuinfo = tmp_path / "proc" / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2\n")
    host = HostFacts.probe(tmp_path)
    assert host.kvm_dev and not host.pvm and host.cpu_flags == {"fpu", "sse2"}
    guest = host.arch  # the host's own arch: only the flags stand between it and KVM
    if guest == "x86_64":
        assert "vmx/svm" in (kvm_problem(guest, host) or "")
        cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu svm\n")
        assert kvm_problem(guest, HostFacts.probe(tmp_path)) is None


def test_this_machine_is_pvm_so_auto_is_tcg() -> None:
    host = HostFacts.probe()
    if not host.pvm:
        pytest.skip("not a PVM host")
    assert choose_accel("auto", "x86_64", host).accel == "tcg"


def test_forced_kvm_cross_arch_is_refused() -> None:
    with pytest.raises(UserError, match="impossible"):
        choose_accel("kvm", "sparc64", HW)
    assert choose_accel("tcg", "x86_64", HW).accel == "tcg"


WARN = {"kind": "warning", "title": "WARNING in __mmdrop"}


@pytest.mark.parametrize(
    ("outcome", "findings", "status", "why"),
    [
        (ConsoleOutcome(boot_ok=True, test_rc=0, qemu_exit=0), [], Status.PASS, "passed"),
        (ConsoleOutcome(boot_ok=True, test_rc=0, qemu_exit=0), [WARN], Status.FAIL, "__mmdrop"),
        (ConsoleOutcome(boot_ok=True, test_rc=3, qemu_exit=0), [], Status.FAIL, "status 3"),
        (
            ConsoleOutcome(qemu_exit=1, last_lines=["qemu: bad machine"]),
            [],
            Status.ERROR,
            "status 1: qemu: bad machine",
        ),
        (ConsoleOutcome(boot_ok=True, qemu_signal=9), [], Status.ERROR, "signal 9"),
        (ConsoleOutcome(boot_ok=True, qemu_exit=0, rebooted=True), [], Status.ERROR, "rebooted"),
        (ConsoleOutcome(qemu_exit=0), [], Status.ERROR, "before userspace"),
        (
            ConsoleOutcome(
                boot_ok=True,
                killed="no console output for 120 s",
                sysrq_sent=True,
                sysrq_answered=True,
            ),
            [],
            Status.FAIL,
            "stacks captured",
        ),
        (
            ConsoleOutcome(killed="no console output for 120 s", sysrq_sent=True),
            [],
            Status.ERROR,
            "did not answer SysRq",
        ),
        (
            ConsoleOutcome(boot_ok=True, killed="interrupted by SIGINT"),
            [],
            Status.ERROR,
            "interrupted",
        ),
    ],
)
def test_verdicts(outcome: ConsoleOutcome, findings: list, status: Status, why: str) -> None:
    v = judge(outcome, findings)
    assert v.status is status
    assert why in v.reason


def test_infra_errors_are_never_fail() -> None:
    v = judge(ConsoleOutcome(boot_ok=True, qemu_exit=1, last_lines=["x"]), [])
    assert v.status is Status.ERROR and exits.of_status(v.status) == 3


def test_status_channel_and_network_devices() -> None:
    spec = BootSpec(K, INITRD, status_path=Path("/r/status.log"), ssh_port=2222)
    argv = build_argv(load_profile("x86_64"), spec)
    joined = " ".join(argv)
    assert "-device virtio-serial-pci,id=ktoser" in joined
    assert "file,id=ktostatus,path=/r/status.log" in joined
    assert "name=kto.status" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined  # loopback only
    assert "-device virtio-net-pci,netdev=ktonet" in joined
    arm = " ".join(build_argv(load_profile("arm64"), spec))
    assert "virtio-serial-device" in arm and "virtio-net-device" in arm
    sparc = " ".join(
        build_argv(
            load_profile("sparc64"),
            BootSpec(K, INITRD, smp=1, status_path=Path("/r/s"), ssh_port=2222),
        )
    )
    assert "virtserialport" not in sparc  # no virtio on sun4u: console markers only
    assert "-nic user,id=ktonet,hostfwd=tcp:127.0.0.1:2222-:22,model=sunhme" in sparc
    plain = " ".join(build_argv(load_profile("x86_64"), BootSpec(K, INITRD)))
    assert "ktonet" not in plain and "virtserialport" not in plain


def test_status_channel_overrides_a_lost_console_marker(tmp_path: Path) -> None:
    from orchestrator.job.boot_stage import read_status_channel

    assert read_status_channel(tmp_path / "none.log") is None
    log = tmp_path / "status.log"
    log.write_text("<<KTO>> boot-ok\n<<KTO>> test-start x\n<<KTO>> test-end x rc=4\n")
    st = read_status_channel(log)
    assert st is not None and st["test_rc"] == 4 and st["boot_ok"] and not st["poweroff"]


def test_ssh_failure_is_an_infra_error() -> None:
    v = judge(
        ConsoleOutcome(boot_ok=True, test_rc=0, qemu_exit=0),
        [],
        infra_error="SSH work failed: refused",
    )
    assert v.status is Status.ERROR and "SSH" in v.reason
