"""Expected findings: a job that must produce a finding (a seeded bug kto has to catch) is
XFAIL, "caught as expected", when it does and nothing else shows; FAIL "expected ... not
seen" when it does not. The verdict is the job's own, so every report and driver agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.matrix.spec import load_matrix
from orchestrator.records import exits
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import EXPECTED_NOT_SEEN, Status, Verdict, expect
from orchestrator.results.compare import compare

from .results.runs import PANIC_X86, as_pass, make_run

T = "mmu_notifier: created two mmu_notifier's with invalidate_range_end()"
W = {"kind": "warning", "title": T}
OTHER = {"kind": "bug", "title": "BUG: Bad rss-counter state"}


def test_caught_and_nothing_else_is_xfail_exit_0() -> None:
    v = expect(Verdict(Status.FAIL, "kernel reported warning", T, [W]), (T,))
    assert v.status is Status.XFAIL and v.reason == f"caught as expected: {T}"
    assert exits.of_status(v.status) == 0


def test_not_seen_is_a_fail_naming_what_was_expected() -> None:
    v = expect(Verdict(Status.PASS, "test passed"), (T,))
    assert v.status is Status.FAIL and v.title == EXPECTED_NOT_SEEN
    assert v.reason.startswith(f"expected {T!r} not seen")
    assert exits.of_status(v.status) == 1


def test_another_finding_besides_the_expected_one_is_a_fail() -> None:
    v = expect(Verdict(Status.FAIL, "kernel reported warning", T, [W, OTHER]), (T,))
    assert v.status is Status.FAIL and v.title == OTHER["title"]


@pytest.mark.parametrize("status", [Status.ERROR, Status.MISS, Status.SKIP])
def test_infrastructure_says_nothing_about_the_expectation(status: Status) -> None:
    assert expect(Verdict(status, "QEMU died"), (T,)).status is status


def test_no_expectation_changes_nothing() -> None:
    v = Verdict(Status.FAIL, "kernel reported warning", T, [W])
    assert expect(v, ()) is v


def test_the_spec_keeps_its_id_without_expectations_and_round_trips_with() -> None:
    plain = JobSpec(arch="x86_64", test="hotplug")
    assert "expect" not in plain.to_dict()  # last night's ids stay what they were
    spec = JobSpec(arch="x86_64", test="hotplug", expect=(T,))
    assert spec.id != plain.id and JobSpec.from_dict(spec.to_dict()) == spec


def test_the_quick_matrix_expects_seed_002_in_its_kvm_cell_only() -> None:
    m = load_matrix(Path(__file__).resolve().parents[1] / "configs" / "matrix" / "quick.yaml")
    expecting = {c.folder: c.expect for c in m.cells if c.expect}
    assert expecting == {"debian-6.1.seed-002.default.x86_64.kvm-mmu-notifier": (T,)}
    (spec,) = [s for c, s in m.jobs() if c.expect]
    assert spec.expect == (T,)


def test_an_expected_finding_is_not_a_regression(tmp_path: Path) -> None:
    from orchestrator.records.model import load_run

    spec = JobSpec(arch="x86_64", test="command", expect=("kernel panic: sysrq triggered crash",))
    caught = {"status": "XFAIL", "job": spec.to_dict()}
    old = make_run(tmp_path, "20261123-100000-n-0001", [(PANIC_X86, "x86_64-c-r0", as_pass())])
    new = make_run(tmp_path, "20261123-110000-n-0002", [(PANIC_X86, "x86_64-c-r0", caught)])
    c = compare(load_run(old), load_run(new))
    assert not c.regressions, [ch.to_dict() for ch in c.changes]
    assert any(ch.expected for ch in c.changes)
