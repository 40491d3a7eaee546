"""One-line findings beyond syzkaller's report types (data only).

Each rule is (kind, title, regex). A console line matching the regex is a
finding on its own; it does not open a multi-line report. Clean boots,
rcutorture runs and hotplug stress runs print none of these.
"""

from __future__ import annotations

LINE_RULES: tuple[tuple[str, str, str], ...] = (
    # rcutorture (kernel/rcu/rcutorture.c and kernel/torture.c)
    (
        "torture_failure",
        "{type}: End of test: FAILURE",
        r"(?P<type>[\w-]+-torture):?.*End of test: FAILURE",
    ),
    (
        "torture_failure",
        "{type}: End of test: RCU_HOTPLUG",
        r"(?P<type>[\w-]+-torture):?.*End of test: RCU_HOTPLUG",
    ),
    (
        "torture_failure",
        "{type}: error flagged in statistics (!!!)",
        r"(?P<type>[\w-]+-torture):.*!!!",
    ),
    ("torture_failure", "rcutorture: Writer stall state", r"\?\?\? Writer stall state"),
    # CPU hotplug
    ("hotplug_failure", "CPU hotplug: error taking CPU down", r"Error taking CPU\d+ down"),
    ("hotplug_failure", "CPU hotplug: CPU failed to come online", r"CPU\d+: failed to come online"),
    ("hotplug_failure", "CPU hotplug: CPU failed to boot", r"CPU\d+: failed to boot"),
    ("hotplug_failure", "CPU hotplug: CPU did not die", r"CPU ?\d+:? (?:cpu )?didn't die"),
    ("hotplug_failure", "CPU hotplug: CPU failed to report state", r"CPU ?\d+:? failed to report"),
    (
        "hotplug_failure",
        "CPU hotplug: CPU may not have shut down cleanly",
        r"CPU\d+ may not have shut down cleanly",
    ),
    ("hotplug_failure", "CPU hotplug: CPU stuck in kernel", r"CPU\d+: stuck in kernel"),
    ("hotplug_failure", "CPU hotplug: do_boot_cpu failed", r"do_boot_cpu failed\("),
    ("hotplug_failure", "CPU hotplug: failed to bring up CPU", r"[Ff]ailed to bring up CPU"),
    # other fatal one-liners
    ("oom", "Out of memory and no killable processes", r"Out of memory and no killable processes"),
)
