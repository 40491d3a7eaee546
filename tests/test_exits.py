"""Exit codes come from one module (records/exits.py): an infrastructure outcome is never
1 (a kernel FAIL) and a kernel failure is never 0, whatever the command."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.records import exits
from orchestrator.records.verdict import Status

INFRA = (Status.ERROR, Status.MISS)


@pytest.mark.parametrize("status", list(Status))
def test_a_job_is_1_only_for_a_kernel_failure(status: Status) -> None:
    code = exits.of_job(status)
    assert code == {"PASS": 0, "XFAIL": 0, "SKIP": 0, "FAIL": 1, "ERROR": 3, "MISS": 3}[str(status)]
    assert exits.of_job(status, error_code=4) == 4  # the error that stopped it wins


def test_a_command_boot_passes_its_status_only_when_the_kernel_said_nothing() -> None:
    assert exits.of_job(Status.FAIL, test_rc=7) == 7
    assert exits.of_job(Status.FAIL, test_rc=7, findings=1) == 1


@pytest.mark.parametrize(
    "statuses", [list(c) for n in (1, 2, 3) for c in itertools.product(list(Status), repeat=n)]
)
def test_a_night_is_never_green_with_new_failures_or_infra(statuses: list[Status]) -> None:
    assert exits.of_night(False, 1, statuses) == 1
    assert exits.of_night(True, 1, statuses) == 3  # cut short: not a verdict yet
    quiet = exits.of_night(False, 0, statuses)
    assert quiet == (3 if any(s in INFRA for s in statuses) else 0)


def test_bisect_findings_and_hosts() -> None:
    assert exits.of_bisect(found=False, doubts=False) == 3
    assert exits.of_bisect(found=True, doubts=True) == 1
    assert exits.of_bisect(found=True, doubts=False) == 0
    assert (exits.of_findings(True), exits.of_findings(False)) == (1, 0)
    assert (exits.of_hosts(2), exits.of_hosts(0)) == (3, 0)
