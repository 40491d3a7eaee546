"""When a finding means the verdict is known: stop the guest early instead of waiting for
the silence timeout.

A fatal finding (BUG, Oops, GPF, panic, a lockdep deadlock, a hung task, a hard lockup) has
made the job a FAIL and the guest will rarely recover: once its report is complete (the
console went quiet) or the grace is over, kto captures SysRq evidence and stops QEMU. A
stall (RCU stall, soft lockup) stops the guest only if the system stays stuck: no console
output at all for the grace. Anything else (a WARNING on a still-healthy guest, KASAN)
keeps the test running: later findings and the workload's own result still count.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.records.spec import DEFAULT_GRACE

EVIDENCE_SECONDS = 7.0  # what SysRq w/t/l may take at most when stopping early (3 keys)
QUIET = 2.0  # console silence after a fatal report that says the report is complete

# Finding kind -> policy: "stop" (fatal) or "stuck" (fatal only if the console stays silent).
POLICY_BY_KIND = {
    "bug": "stop",
    "oops": "stop",
    "gpf": "stop",
    "panic": "stop",
    "hung_task": "stop",
    "hard_lockup": "stop",
    "rcu_stall": "stuck",
    "soft_lockup": "stuck",
}
# Lockdep reports are warnings, except a deadlock the validator proved.
POLICY_BY_TITLE_PREFIX = (("possible deadlock in", "stop"),)


def policy(kind: str, title: str, panicked: bool = False) -> str | None:
    if panicked:
        return "stop"
    for prefix, pol in POLICY_BY_TITLE_PREFIX:
        if title.startswith(prefix):
            return pol
    return POLICY_BY_KIND.get(kind)


@dataclass
class FatalWatch:
    """Fed every finding as it completes; asked on every console loop whether to stop."""

    grace: float = DEFAULT_GRACE  # 0: never stop early
    seen_at: float | None = None
    title: str = ""
    kind: str = ""
    pol: str = ""

    def feed(self, kind: str, title: str, panicked: bool, now: float) -> None:
        pol = policy(kind, title, panicked)
        if pol is None or self.grace <= 0:
            return
        if self.seen_at is None or (pol == "stop" and self.pol != "stop"):
            self.seen_at, self.title, self.kind, self.pol = now, title, kind, pol

    def should_stop(self, now: float, last_output: float) -> str | None:
        if self.seen_at is None:
            return None
        since, quiet = now - self.seen_at, now - last_output
        if self.pol == "stop":
            budget = max(0.0, self.grace - EVIDENCE_SECONDS)
            if quiet >= min(QUIET, budget) or since >= budget:
                return f"stopped {max(0.0, since):.1f} s after the fatal finding: {self.title}"
        elif quiet >= self.grace:
            return f"stuck for {quiet:.0f} s after: {self.title}"
        return None
