"""JUnit read back with junitparser (as Jenkins/GitLab would count it) and KCIDB validated
against the v5 schema with kcidb-io, on recorded runs edited into every status."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from orchestrator.records.model import Run, load_run
from orchestrator.results import junit, kcidb

from .runs import EXIT3_ARM, PANIC_X86, SMOKE_X86, make_run

kcidb_schema = pytest.importorskip("kcidb_io.schema")


@pytest.fixture
def every_status(tmp_path: Path) -> Run:
    """One job per status on two arches: PASS, FAIL (panic), FAIL (exit 3), SKIP,
    ERROR (killed mid-run), MISS (no record)."""
    skip = {"status": "SKIP", "verdict": {"status": "SKIP", "reason": "needs 2 CPUs"}}
    run = make_run(
        tmp_path,
        "20261123-140000-run-x86_64-00aa",
        [
            (SMOKE_X86, "x86_64-smoke", {}),
            (PANIC_X86, "x86_64-command", {}),
            (EXIT3_ARM, "arm64-command", {}),
            (SMOKE_X86, "x86_64-hotplug", {**skip, "test": "hotplug"}),
            (SMOKE_X86, "x86_64-stress", {"status": "RUNNING", "test": "stress"}),
            (SMOKE_X86, "arm64-boot", {}),
        ],
    )
    (run / "arm64-boot" / "job.json").unlink()
    return load_run(run)


# The fixture's jobs: one of every status (KCIDB's statuses are kto's).
STATUSES = {
    "x86_64-smoke": "PASS",
    "x86_64-command": "FAIL",
    "arm64-command": "FAIL",
    "x86_64-hotplug": "SKIP",
    "x86_64-stress": "ERROR",
    "arm64-boot": "MISS",
}


def test_statuses_of_the_fixture(every_status: Run) -> None:
    got = {j.name: str(j.status) for j in every_status.jobs}
    assert got == STATUSES


def test_junit_counts_as_ci_would(every_status: Run, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(junit.render(every_status))
    xml = JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    # One suite per (tree, arch, config); the MISS job has no build, so "unknown" tree.
    assert set(suites) == {
        "debian-6.1.x86_64.tinyconfig+debug",
        "debian-6.1.arm64.tinyconfig+debug",
        "unknown.arm64.unknown",
    }
    kinds: Counter[str] = Counter()
    for suite in xml:
        counted = Counter(type(r).__name__ for case in suite for r in case.result)
        # Jenkins reads the elements, some dashboards the suite attributes: they agree.
        assert suite.failures == counted["Failure"]
        assert suite.errors == counted["Error"]
        assert suite.skipped == counted["Skipped"]
        assert suite.tests == len(list(suite))
        kinds += counted
    assert kinds == Counter(Failure=2, Error=2, Skipped=1)
    # GitLab shows failed = failures + errors: the jobs that are not PASS/SKIP.
    failed_names = {
        c.classname for s in xml for c in s if any(isinstance(r, Failure | Error) for r in c.result)
    }
    assert failed_names == {
        "x86_64.tinyconfig+debug.command",
        "arm64.tinyconfig+debug.command",
        "x86_64.tinyconfig+debug.stress",
        "arm64.unknown.boot",
    }
    cases = {c.classname: c for s in xml for c in s}
    panic = cases["x86_64.tinyconfig+debug.command"]
    (failure,) = panic.result
    assert failure.message == "kernel panic: sysrq triggered crash"
    assert "Kernel panic - not syncing: sysrq triggered crash" in failure.text
    assert "--- console.log (tail) ---" in panic.system_out
    assert panic.time == pytest.approx(1.417)
    assert isinstance(cases["x86_64.tinyconfig+debug.hotplug"].result[0], Skipped)
    stress = cases["x86_64.tinyconfig+debug.stress"]
    assert "did not finish" in stress.result[0].message
    assert "missing: job.json: status RUNNING" in stress.system_out
    props = {p.name: p.value for p in suites["debian-6.1.x86_64.tinyconfig+debug"].properties()}
    assert props["commit"] == "22c59337993006cf14b97356d39926eaa6c31378"
    assert props["patchset"] == "none" and props["qemu"].startswith("QEMU emulator version 7")


def test_junit_repeats_get_distinct_names(tmp_path: Path) -> None:
    run = make_run(
        tmp_path,
        "20261123-140000-run-x86_64-00ab",
        [(SMOKE_X86, "x86_64-smoke-r0", {}), (SMOKE_X86, "x86_64-smoke-r1", {"repeat": 1})],
    )
    xml = JUnitXml.fromstring(junit.render(load_run(run)).encode())
    assert sorted(c.name for s in xml for c in s) == ["smoke#0", "smoke#1"]


def test_kcidb_export_validates_against_v5(every_status: Run) -> None:
    data = json.loads(json.dumps(kcidb.export(every_status)))  # what lands on disk
    kcidb_schema.V5_3.validate_exactly(data)
    assert kcidb_schema.LATEST.is_valid(data)
    tests = {t["id"].rsplit(".", 1)[1]: t for t in data["tests"]}
    assert {k: t["status"] for k, t in tests.items()} == STATUSES
    assert "Kernel panic - not syncing" in tests["x86_64-command"]["log_excerpt"]
    assert tests["x86_64-command"]["log_url"].startswith("file:///")
    # Every link resolves inside the export.
    builds = {b["id"] for b in data["builds"]}
    checkouts = {c["id"] for c in data["checkouts"]}
    assert all(t["build_id"] in builds for t in data["tests"])
    assert all(b["checkout_id"] in checkouts for b in data["builds"])
    (issue,) = data["issues"]
    assert issue["report_subject"] == "kernel panic: sysrq triggered crash"
    (incident,) = data["incidents"]
    assert incident["issue_id"] == issue["id"] and incident["test_id"] in {
        t["id"] for t in data["tests"]
    }
    checkout = next(c for c in data["checkouts"] if c["tree_name"] == "debian-6.1")
    assert checkout["git_commit_hash"] == "22c59337993006cf14b97356d39926eaa6c31378"
    assert checkout["patchset_hash"] == ""


def test_kcidb_issue_ids_are_stable_across_runs(tmp_path: Path) -> None:
    a = make_run(tmp_path, "20261123-140000-run-x86_64-0001", [(PANIC_X86, "x86_64-c", {})])
    b = make_run(tmp_path, "20261123-150000-run-x86_64-0002", [(PANIC_X86, "x86_64-c", {})])
    ea, eb = kcidb.export(load_run(a)), kcidb.export(load_run(b))
    assert ea["issues"] == eb["issues"]
    assert ea["tests"][0]["id"] != eb["tests"][0]["id"]


def test_kcidb_base_url_and_bad_strings(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20261123-140000-run-x86_64-0003", [(PANIC_X86, "x86_64-c", {})])
    findings = run / "x86_64-c" / "findings.json"
    doc = json.loads(findings.read_text())
    doc["findings"][0]["report"] = "NUL\0in report" + "x" * 40000
    findings.write_text(json.dumps(doc))
    data = kcidb.export(load_run(run), base_url="https://ci.example.org/kto/")
    kcidb_schema.V5_3.validate_exactly(data)
    test = data["tests"][0]
    assert test["log_url"] == (
        "https://ci.example.org/kto/20261123-140000-run-x86_64-0003/x86_64-c/console.log"
    )
    assert len(test["log_excerpt"]) == kcidb.EXCERPT_LIMIT and "\0" not in test["log_excerpt"]
