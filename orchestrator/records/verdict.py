"""From what happened on the console to a verdict, in KCIDB's status vocabulary.

FAIL means the kernel is wrong (findings, a failing test, a hang the kernel itself reported
or answered SysRq in); ERROR means the harness could not complete the test (QEMU died, a
guest that never booted without a kernel report, an interrupt); infra problems are never FAIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.records.outcome import ConsoleOutcome


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    MISS = "MISS"
    SKIP = "SKIP"
    XFAIL = "XFAIL"  # every expected finding seen and nothing else: "caught as expected"


@dataclass
class Verdict:
    """A job's status, why, the title of its first finding, and all findings."""

    status: Status
    reason: str
    title: str | None = None  # the first finding's title, the job's dedup key
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reason": self.reason,
            "title": self.title,
            "findings": self.findings,
        }


def _qemu_death(o: ConsoleOutcome) -> str | None:
    if o.qemu_signal:
        return f"QEMU was killed by signal {o.qemu_signal} from outside kto"
    if o.qemu_exit not in (0, None):
        tail = next((ln for ln in reversed(o.last_lines) if ln.strip()), "")
        return f"QEMU exited with status {o.qemu_exit}: {tail.strip()[:200]}"
    return None


def judge(
    o: ConsoleOutcome, findings: list[dict[str, Any]], infra_error: str | None = None
) -> Verdict:
    if findings:
        first = findings[0]
        extra = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        why = f"kernel reported {first['kind']}: {first['title']}{extra}"
        if o.killed:
            why += f"; guest stopped: {o.killed}"
        elif o.ended_early:
            why += f"; guest {o.ended_early}"
        return Verdict(Status.FAIL, why, first["title"], findings)
    if infra_error:
        return Verdict(Status.ERROR, infra_error)
    if o.killed and o.killed.startswith("interrupted"):
        return Verdict(Status.ERROR, f"run {o.killed}")
    if o.killed:
        if o.sysrq_answered:
            # The kernel is alive but the workload is stuck: a kernel-side hang with stacks.
            title = "kto: guest hang: " + o.killed.split(" (")[0]
            return Verdict(
                Status.FAIL,
                f"{o.killed}; kernel answered SysRq, stacks captured in console.log",
                title,
            )
        return Verdict(
            Status.ERROR,
            f"{o.killed}; the kernel did not answer SysRq (no evidence of a kernel bug)",
        )
    death = _qemu_death(o)
    if death and o.test_rc is None:
        return Verdict(Status.ERROR, death)
    if o.test_rc is None:
        if o.rebooted:
            return Verdict(Status.ERROR, "guest rebooted before the test finished")
        if not o.boot_ok:
            return Verdict(Status.ERROR, "QEMU exited before userspace was reached")
        return Verdict(Status.ERROR, "QEMU exited before the test finished")
    if o.test_rc != 0:
        return Verdict(
            Status.FAIL,
            f"test exited with status {o.test_rc}",
            f"kto: test failed with status {o.test_rc}",
        )
    return Verdict(Status.PASS, "test passed, no findings on the console")


EXPECTED_NOT_SEEN = "kto: expected finding not seen"


def expect(verdict: Verdict, titles: tuple[str, ...]) -> Verdict:
    """The verdict of a job that must produce `titles` (a seeded bug kto has to catch).

    All seen and no other finding: XFAIL, "caught as expected". One missing: FAIL (the
    catch is a regression), whatever else happened. Another finding besides the expected
    ones: FAIL with that one. A job that could not judge its kernel (ERROR, MISS, SKIP)
    stays what it is: infrastructure says nothing about the expectation.
    """
    if not titles or verdict.status not in (Status.PASS, Status.FAIL):
        return verdict
    seen = {str(f.get("title")) for f in verdict.findings}
    missing = [t for t in titles if t not in seen]
    if missing:
        reason = f"expected {missing[0]!r} not seen" + (
            f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        )
        return Verdict(
            Status.FAIL, f"{reason}; {verdict.reason}", EXPECTED_NOT_SEEN, verdict.findings
        )
    other = [f for f in verdict.findings if f.get("title") not in titles]
    if other:
        why = f"kernel reported {other[0].get('kind')}: {other[0]['title']} besides the expected"
        return Verdict(Status.FAIL, why, other[0]["title"], verdict.findings)
    if verdict.status is Status.FAIL and not verdict.findings:
        return verdict  # the test itself failed (or hung): not what was expected
    caught = "; ".join(titles)
    return Verdict(Status.XFAIL, f"caught as expected: {caught}", titles[0], verdict.findings)
