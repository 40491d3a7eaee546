"""Every command's exit code, decided here: the table in errors.py made into rules.

0 nothing wrong; 1 the kernel is wrong (a FAIL, a NEW failure, findings, a culprit below
the confidence asked for); 3 kto could not tell (ERROR, MISS, interrupted, a report that
could not be written); 2, 4, 5, 6 come from the error that stopped a command (errors.py).
An infrastructure outcome is never 1, and a kernel failure is never hidden behind a 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import EXIT_FAIL, EXIT_INFRA, EXIT_OK
from orchestrator.records.verdict import Status


def of_status(status: Status) -> int:
    """A verdict's exit code: PASS, XFAIL (caught as expected) and SKIP 0, FAIL 1, ERROR
    and MISS 3."""
    if status in (Status.PASS, Status.XFAIL, Status.SKIP):
        return EXIT_OK
    return EXIT_FAIL if status is Status.FAIL else EXIT_INFRA


def of_job(
    status: Status, error_code: int | None = None, test_rc: int | None = None, findings: int = 0
) -> int:
    """One job (`kto run`, `kto boot`, `kto job`): the error that stopped it, else its
    verdict; `kto boot -- CMD` passes the command's own status through when the kernel
    reported nothing."""
    if error_code is not None:
        return error_code
    if status is Status.FAIL and not findings and test_rc:
        return test_rc
    return of_status(status)


def of_night(interrupted: bool, new_failures: int, statuses: Iterable[Status]) -> int:
    """A matrix run: 1 for a NEW failure (confirmed or not), else 3 when any job could not
    judge its kernel or the night was cut short, else 0."""
    if interrupted:
        return EXIT_INFRA
    if new_failures:
        return EXIT_FAIL
    return EXIT_INFRA if any(s in (Status.ERROR, Status.MISS) for s in statuses) else EXIT_OK


def of_bisect(found: bool, doubts: bool) -> int:
    """A bisection: 0 a culprit as sure as asked, 1 a culprit with doubts (below the
    confidence, or its revert did not clear the target), 3 no culprit at all."""
    if not found:
        return EXIT_INFRA
    return EXIT_FAIL if doubts else EXIT_OK


def of_fix_test(verdict: str) -> int:
    """`kto test`: 0 the fix made the bug go away, 1 the bug is still there with it, 3 kto
    could not tell (the control never reproduced, infrastructure, the fix did not apply)."""
    if verdict == "gone":
        return EXIT_OK
    return EXIT_FAIL if verdict == "present" else EXIT_INFRA


def of_findings(found: bool) -> int:
    """`kto parse` and `kto compare`: 1 when there are findings (regressions), else 0."""
    return EXIT_FAIL if found else EXIT_OK


def of_hosts(failed: int) -> int:
    """`kto workers start`: 3 when any host could not be started."""
    return EXIT_INFRA if failed else EXIT_OK
