"""Regressions between runs: new / fixed / still / flaky per test and per finding title."""

from __future__ import annotations

from pathlib import Path

from orchestrator.records import waivers
from orchestrator.records.model import load_run
from orchestrator.results.compare import compare, summary_lines

from .runs import PANIC_X86, as_pass, make_run

PANIC = "kernel panic: sysrq triggered crash"


def _test(name: str, passing: bool = False, **extra: object) -> tuple[Path, str, dict]:
    changes = {**(as_pass() if passing else {}), "test": name, **extra}
    return (PANIC_X86, f"x86_64-{name}-r{extra.get('repeat', 0)}", changes)


def _runs(tmp_path: Path):
    old = make_run(
        tmp_path,
        "20261123-100000-night-x86_64-0001",
        [
            _test("newly", passing=True),
            _test("fixed"),
            _test("still"),
            _test("flaky", passing=True),
            _test("gone"),  # not run in the new run: not "fixed"
            _test("infra", passing=True),
        ],
    )
    new = make_run(
        tmp_path,
        "20261123-110000-night-x86_64-0002",
        [
            _test("newly"),
            _test("fixed", passing=True),
            _test("still"),
            _test("flaky", passing=True),
            _test("flaky", repeat=1),
            _test("infra", passing=True, status="RUNNING"),
        ],
    )
    return old, new


def test_per_test_classes(tmp_path: Path) -> None:
    old, new = (load_run(p) for p in _runs(tmp_path))
    c = compare(old, new)
    got = {ch.name.split()[-1]: ch.cls for ch in c.changes if ch.what == "test"}
    assert got == {"newly": "new", "fixed": "fixed", "still": "still", "flaky": "flaky"}
    flaky = next(ch for ch in c.changes if ch.name.endswith("flaky"))
    assert flaky.old == "PASS" and flaky.new == "FAIL 1/2 PASS 1/2"
    assert len(c.infra) == 1 and "x86_64-infra-r0: ERROR" in c.infra[0]
    assert [ch.name.split()[-1] for ch in c.regressions] == ["newly"]


def test_per_finding_title(tmp_path: Path) -> None:
    old, new = (load_run(p) for p in _runs(tmp_path))
    (finding,) = [ch for ch in compare(old, new).changes if ch.what == "finding"]
    # The same title is new on one test, still on another, flaky on a third: flaky wins.
    assert finding.name == PANIC and finding.cls == "flaky"
    only_still = compare(old, old)
    (same,) = [ch for ch in only_still.changes if ch.what == "finding"]
    assert same.cls == "still" and same.old == same.new == "3 job(s)"


def test_first_run_and_waived(tmp_path: Path) -> None:
    _, new_dir = _runs(tmp_path)
    c = compare(None, load_run(new_dir))
    assert {ch.cls for ch in c.changes} == {"new", "flaky"}
    assert "no earlier run" in summary_lines(c)[0]
    known = waivers.parse({"waivers": [{"title": PANIC, "reason": "known"}]}, "t")
    old, new = (load_run(p, known) for p in _runs(tmp_path / "w"))
    c = compare(old, new)
    finding = next(ch for ch in c.changes if ch.what == "finding")
    assert finding.waived
    # With the panic waived, the FAIL jobs become ERROR (the panic stopped the test): infra.
    assert not c.regressions and len(c.infra) == 4


def test_summary_text(tmp_path: Path) -> None:
    old, new = (load_run(p) for p in _runs(tmp_path))
    lines = summary_lines(compare(old, new))
    assert lines[0] == (
        "regressions vs 20261123-100000-night-x86_64-0001: tests 1 new, 1 fixed, 1 still, "
        "1 flaky; findings 0 new, 0 fixed, 0 still, 1 flaky"
    )
    assert any(ln.startswith("  NEW   test    debian-6.1 x86_64") for ln in lines)
    assert lines[-1].startswith("  INFRA x86_64-infra-r0: ERROR")


def test_finding_classed_per_test_not_by_the_last_test(tmp_path: Path) -> None:
    # Last night the panic was seen on "b" only; tonight on "a" and "b": new on "a".
    old = make_run(
        tmp_path, "20261124-100000-night-x86_64-0001", [_test("a", passing=True), _test("b")]
    )
    new = make_run(tmp_path, "20261124-110000-night-x86_64-0002", [_test("a"), _test("b")])
    (finding,) = [
        ch for ch in compare(load_run(old), load_run(new)).changes if ch.what == "finding"
    ]
    assert finding.cls == "new"


def test_a_failure_that_turns_into_error_or_skip_is_infra_not_fixed(tmp_path: Path) -> None:
    # Last time the panic was a FAIL; tonight the host broke (ERROR) or the test did not
    # apply (SKIP): neither says anything about the kernel, so neither is "fixed".
    def stopped(status: str) -> dict[str, object]:
        verdict = {"status": status, "reason": "boot failed: QEMU died", "findings": []}
        return {"status": status, "verdict": verdict, "_findings": []}

    old = make_run(
        tmp_path,
        "20261123-100000-night-x86_64-0001",
        [_test("errored"), _test("skipped")],
    )
    new = make_run(
        tmp_path,
        "20261123-110000-night-x86_64-0002",
        [_test("errored", **stopped("ERROR")), _test("skipped", **stopped("SKIP"))],
    )
    c = compare(load_run(old), load_run(new))
    assert not c.of("fixed"), [ch.to_dict() for ch in c.of("fixed")]
    assert len(c.infra) == 1 and "x86_64-errored-r0: ERROR" in c.infra[0], c.infra
