"""One-line findings beyond syzkaller's report types (data only).

Each rule is (kind, title, needle, regex): a console line that contains the
literal ``needle`` and matches ``regex`` is a finding on its own; it does not
open a multi-line report. ``{name}`` in a title is filled from the regex's
named groups. Clean boots, rcutorture runs and hotplug stress runs print none
of these.
"""

from __future__ import annotations

_TORTURE = r"(?P<type>\w[\w-]{0,30}-torture)"

LINE_RULES: tuple[tuple[str, str, str, str], ...] = (
    # rcutorture (kernel/rcu/rcutorture.c, kernel/torture.c)
    (
        "torture_failure",
        "{type}: End of test: FAILURE",
        "End of test: FAILURE",
        _TORTURE + r":?.{0,10}End of test: FAILURE",
    ),
    (
        "torture_failure",
        "{type}: End of test: RCU_HOTPLUG",
        "End of test: RCU_HOTPLUG",
        _TORTURE + r":?.{0,10}End of test: RCU_HOTPLUG",
    ),
    (
        "torture_failure",
        "{type}: error flagged in statistics (!!!)",
        "!!!",
        _TORTURE + r":.{0,200}!!!",
    ),
    ("torture_failure", "rcutorture: Writer stall state", "??? Writer stall state", r"\?\?\?"),
    # CPU hotplug (kernel/cpu.c, arch/*/kernel/smp*.c)
    (
        "hotplug_failure",
        "CPU hotplug: error taking CPU down",
        "Error taking CPU",
        r"Error taking CPU\d+ down",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU failed to come online",
        "failed to come online",
        r"CPU\d+: failed to come online",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU failed to boot",
        "failed to boot",
        r"CPU\d+: failed to boot",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU did not die",
        "didn't die",
        r"CPU ?\d+:? (?:cpu )?didn't die",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU failed to report state",
        "failed to report",
        r"CPU ?\d+:? failed to report",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU may not have shut down cleanly",
        "may not have shut down cleanly",
        r"CPU\d+ may not have shut down cleanly",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: CPU stuck in kernel",
        "stuck in kernel",
        r"CPU\d+: stuck in kernel",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: do_boot_cpu failed",
        "do_boot_cpu failed",
        r"do_boot_cpu failed",
    ),
    (
        "hotplug_failure",
        "CPU hotplug: failed to bring up CPU",
        "ailed to bring up CPU",
        r"[Ff]ailed to bring up CPU",
    ),
    # other fatal one-liners
    (
        "oom",
        "Out of memory and no killable processes",
        "Out of memory and no killable",
        r"Out of memory and no killable processes",
    ),
)
