"""One finding kind at a time, on x86_64, arm64 and sparc64 console formats."""

from __future__ import annotations

import parser_snippets as s
import pytest

from orchestrator.parser import Finding, parse_text

CASES = [
    # (snippet, arch, kind, title)
    (s.X86_WARNING, "x86_64", "warning", "WARNING in __mmdrop"),
    (s.ARM64_WARNING, "arm64", "warning", "WARNING in __mmdrop"),
    (s.SPARC64_WARNING, "sparc64", "warning", "WARNING in __mmdrop"),
    (
        s.X86_NULL_DEREF,
        "x86_64",
        "oops",
        "BUG: unable to handle kernel NULL pointer dereference in __mmdrop",
    ),
    (
        s.ARM64_NULL_DEREF,
        "arm64",
        "oops",
        "BUG: unable to handle kernel NULL pointer dereference in __mmdrop",
    ),
    (
        s.SPARC64_NULL_DEREF,
        "sparc64",
        "oops",
        "BUG: unable to handle kernel NULL pointer dereference in __mmdrop",
    ),
    (s.X86_HUNG_TASK, "x86_64", "hung_task", "INFO: task hung in rcu_sync_dtor"),
    (s.ARM64_HUNG_TASK, "arm64", "hung_task", "INFO: task hung in rcu_sync_dtor"),
    (s.SPARC64_HUNG_TASK, "sparc64", "hung_task", "INFO: task hung in rcu_sync_dtor"),
    (s.X86_SOFT_LOCKUP, "x86_64", "soft_lockup", "BUG: soft lockup in sys_exit_group"),
    (s.ARM64_SOFT_LOCKUP, "arm64", "soft_lockup", "BUG: soft lockup in sys_exit_group"),
    # sparc64's wrapper is plain sys_exit_group: one strippable prefix, as syzkaller does.
    (s.SPARC64_SOFT_LOCKUP, "sparc64", "soft_lockup", "BUG: soft lockup in exit_group"),
    (s.X86_RCU_STALL, "x86_64", "rcu_stall", "INFO: rcu detected stall in sys_exit_group"),
    (s.ARM64_RCU_STALL, "arm64", "rcu_stall", "INFO: rcu detected stall in sys_exit_group"),
    (s.X86_KASAN, "x86_64", "kasan", "KASAN: use-after-free Read in __mmdrop"),
    (
        s.ARM64_KASAN,
        "arm64",
        "kasan",
        "KASAN: slab-out-of-bounds Write in mn_hlist_invalidate_range_start",
    ),
    (s.X86_LOCKDEP, "x86_64", "lockdep", "possible deadlock in rcu_barrier"),
    (s.ARM64_LOCKDEP, "arm64", "lockdep", "possible deadlock in rcu_barrier"),
    (s.X86_GPF, "x86_64", "gpf", "general protection fault in __mmdrop"),
    (s.X86_PANIC, "x86_64", "panic", "kernel panic: Attempted to kill init!"),
    (s.X86_MEMLEAK, "x86_64", "memory_leak", "memory leak in mmu_notifier_register"),
    (s.X86_KCSAN, "x86_64", "kcsan", "KCSAN: data-race in __mmdrop / finish_cpu"),
    (
        s.X86_UBSAN,
        "x86_64",
        "ubsan",
        "UBSAN: array-index-out-of-bounds in mn_hlist_invalidate_range_start",
    ),
    (s.ARM64_KFENCE, "arm64", "kfence", "KFENCE: use-after-free read in __mmdrop"),
    (s.ARM64_KMSAN, "arm64", "kmsan", "KMSAN: uninit-value in __mmdrop"),
    (s.X86_HARD_LOCKUP, "x86_64", "hard_lockup", "BUG: hard lockup in kvm_dev_ioctl"),
]


def _only(text: str) -> Finding:
    findings = parse_text(text)
    assert len(findings) == 1, [f.title for f in findings]
    return findings[0]


@pytest.mark.parametrize(
    ("snippet", "kind", "title"),
    [(c[0], c[2], c[3]) for c in CASES],
    ids=[f"{c[2]}-{c[1]}" for c in CASES],
)
@pytest.mark.parametrize("timestamps", [True, False], ids=["ts", "raw"])
def test_kind_and_title(snippet: str, kind: str, title: str, timestamps: bool) -> None:
    text = s.stamp(snippet) if timestamps else snippet
    finding = _only("Booting Linux\nsome unrelated line\n" + text)
    assert (finding.kind, finding.title) == (kind, title)
    assert finding.first_line >= 3
    if " in " in title:
        assert finding.function and title.split(" in ", 1)[1].startswith(finding.function)


def test_warning_fields_x86() -> None:
    f = _only(s.stamp(s.X86_WARNING))
    assert (f.first_line, f.last_line) == (2, 21)  # the "WARNING:" line .. "end trace"
    assert (f.cpu, f.pid, f.comm, f.taint) == (0, 175, "torture_onoff", "GW")
    assert f.function == "__mmdrop"
    assert not f.corrupted
    assert "? takedown_cpu" not in f.report and " finish_cpu+0x2e/0x40" in f.report
    assert f.report.startswith("------------[ cut here ]------------\nWARNING: CPU: 0")


def test_warning_fields_arm64() -> None:
    f = _only(s.stamp(s.ARM64_WARNING))
    assert (f.cpu, f.pid, f.comm, f.taint) == (1, 17, "cpuhp/1", "")


def test_hung_task_fields() -> None:
    f = _only(s.stamp(s.X86_HUNG_TASK))
    assert (f.comm, f.pid) == ("cpuhp/1", 17)
    assert f.alt_titles == ["hang in rcu_sync_dtor"]


def test_bad_rss_and_pgtables_are_separate_findings() -> None:
    findings = parse_text(s.stamp(s.BAD_RSS))
    assert [(f.kind, f.title, f.first_line) for f in findings] == [
        ("bad_rss", "BUG: Bad rss-counter state", 1),
        ("bad_pgtables", "BUG: non-zero pgtables_bytes on freeing mm", 2),
    ]
    assert "type:MM_ANONPAGES val:1" in findings[0].report


def test_warning_without_stack_is_corrupted() -> None:
    f = _only("[   1.000000] WARNING: CPU: 0 PID: 1 at kernel/fork.c:686 __mmdrop+0x9f/0xb0\n")
    assert f.title == "WARNING in corrupted"
    assert f.corrupted


def test_panic_after_warning_is_part_of_the_warning() -> None:
    text = s.X86_WARNING.replace(
        "---[ end trace", "Kernel panic - not syncing: panic_on_warn set ...\n---[ end trace"
    )
    f = _only(s.stamp(text))
    assert f.title == "WARNING in __mmdrop"
    assert f.panicked


@pytest.mark.parametrize(
    ("line", "title"),
    [
        (
            "rcu-torture:--- End of test: FAILURE: nreaders=1 nfakewriters=4",
            "rcu-torture: End of test: FAILURE",
        ),
        (
            "rcu-torture:--- End of test: RCU_HOTPLUG: nreaders=1 nfakewriters=4",
            "rcu-torture: End of test: RCU_HOTPLUG",
        ),
        (
            "rcu-torture: !!! Reader Pipe:  618361 19 3 0 0 0 0 0 0 0 0",
            "rcu-torture: error flagged in statistics (!!!)",
        ),
        (
            "??? Writer stall state RTWS_SYNC(7) g4521 f0x0 ->state 0x2 cpu 1",
            "rcutorture: Writer stall state",
        ),
    ],
)
def test_torture_failures(line: str, title: str) -> None:
    f = _only(s.stamp(f"rcu-torture: rcu_torture_writer task started\n{line}\n"))
    assert (f.kind, f.title, f.first_line) == ("torture_failure", title, 2)


def test_torture_success_is_clean() -> None:
    text = s.stamp(
        "rcu-torture: rtc: (____ptrval____) ver: 361 tfle: 0 rta: 362 rtaf: 0 rtf: 351\n"
        "rcu-torture: Reader Pipe:  618361 19 0 0 0 0 0 0 0 0 0\n"
        "rcu-torture:--- End of test: SUCCESS: nreaders=1 nfakewriters=4\n"
    )
    assert parse_text(text) == []


@pytest.mark.parametrize(
    "line",
    [
        "Error taking CPU1 down: -16",
        "CPU1: failed to come online",
        "CPU1: failed to boot: -110",
        "CPU1: cpu didn't die",
        "smpboot: do_boot_cpu failed(-1) to wakeup CPU#1",
    ],
)
def test_hotplug_failures(line: str) -> None:
    f = _only(s.stamp(f"smpboot: CPU 1 is now offline\n{line}\n"))
    assert f.kind == "hotplug_failure"
    assert f.title.startswith("CPU hotplug: ")


def test_normal_hotplug_messages_are_clean() -> None:
    text = s.stamp(
        "smpboot: CPU 1 is now offline\npsci: CPU1 killed (polled 0 ms)\n"
        "Detected PIPT I-cache on CPU1\nCPU1: Booted secondary processor 0x0000000001\n"
        "smpboot: Booting Node 0 Processor 1 APIC 0x1\n"
    )
    assert parse_text(text) == []


def test_custom_patterns() -> None:
    from orchestrator.parser import CustomPattern

    text = s.stamp(
        "qemu-kvm (37712) created two mmu_notifier's with invalidate_range_end(): "
        "kvm_mmu_notifier_invalidate_range_end and kvm_mmu_notifier_invalidate_range_end\n"
        "FEAS-HOTPLUG-END cycles=12 failures=3\n"
    )
    findings = parse_text(
        text,
        [
            r"\S+ \(\d+\) created two mmu_notifier's",
            CustomPattern(r"failures=[1-9]", name="hotplug workload failures", kind="workload"),
        ],
    )
    assert [(f.kind, f.title, f.first_line) for f in findings] == [
        ("custom", "qemu-kvm (NUM) created two mmu_notifier's", 1),
        ("workload", "hotplug workload failures", 2),
    ]
