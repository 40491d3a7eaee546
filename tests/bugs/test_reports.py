"""Known issues in every report: a finding of an open bug is shown as that bug in
report.html, JUnit (a testcase property) and KCIDB (issues + incidents, validated with
kcidb-io), and a store that cannot be written is exit 3 naming it, reports still written."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.bugs import store as store_mod
from orchestrator.cli import main

from .nights import MMDROP, PANIC, SEED003, night, rid

kcidb_schema = pytest.importorskip("kcidb_io.schema")

JOB = "debian-6.1.none.default.x86_64.onoff-r0"
LABEL = f"#1 {MMDROP}, open since 2026-12-01, 3:4 runs"


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    night(root, rid(1), {"x86_64.onoff": [SEED003, SEED003], "arm64.onoff": [None, None]})
    night(
        root,
        rid(2),
        {"x86_64.onoff": [SEED003, None], "arm64.onoff": [None, None], "x86_64.boot": [PANIC]},
    )
    return root


def test_report_html_shows_findings_as_bugs(results: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", rid(2)]) == 0
    assert f"bugs:     {results / 'bugs.html'}" in capsys.readouterr().out
    html = (results / rid(2) / "report.html").read_text()
    link = f'<a class="bug" href="../bugs.html#bug-1">{LABEL}</a>'
    assert html.count(link) == 1 + 3  # the run's bug list, and each finding of the job
    new = '<a class="bug new" href="../bugs.html#bug-2">#2 kernel panic: sysrq triggered crash, '
    assert new + "NEW bug, 1:1 runs</a>" in html
    assert html.index("<h2>Bugs</h2>") < html.index("<h2>Regressions</h2>")
    summary = json.loads((results / rid(2) / "summary.json").read_text())
    assert [(b["id"], b["new"], b["label"]) for b in summary["bugs"]] == [
        (2, True, "#2 kernel panic: sysrq triggered crash, NEW bug, 1:1 runs"),
        (1, False, LABEL),
    ]


def test_junit_has_a_bug_property_per_testcase(results: Path) -> None:
    assert main(["report", rid(2)]) == 0
    doc = ET.parse(results / rid(2) / "junit.xml").getroot()
    props = {
        (case.get("classname"), case.get("name")): [
            p.get("value")
            for p in case.findall("properties/property")
            if p.get("name") == "kto.bug"
        ]
        for case in doc.iter("testcase")
    }
    assert props[("x86_64.default.onoff", "onoff#0")] == [LABEL]
    assert props[("x86_64.default.onoff", "onoff#1")] == []
    assert props[("x86_64.default.boot", "boot")] == [
        "#2 kernel panic: sysrq triggered crash, NEW bug, 1:1 runs"
    ]
    # Still what CI reads: the failure is there, with the finding's title.
    (case,) = [
        c
        for c in doc.iter("testcase")
        if (c.get("classname"), c.get("name")) == ("x86_64.default.onoff", "onoff#0")
    ]
    assert case.find("failure").get("message") == MMDROP  # type: ignore[union-attr]


def test_kcidb_issues_are_bugs_and_validate(results: Path) -> None:
    assert main(["report", rid(2)]) == 0
    data = json.loads((results / rid(2) / "kcidb.json").read_text())
    kcidb_schema.V5_3.validate_exactly(data)
    assert kcidb_schema.LATEST.is_valid(data)
    issues = {i["misc"]["kto_bug"]: i for i in data["issues"]}
    assert set(issues) == {1, 2}
    assert issues[1]["report_subject"] == MMDROP and issues[1]["comment"] == LABEL
    assert issues[1]["misc"]["fail_runs"] == "3:4" and issues[1]["misc"]["state"] == "open"
    present = [i for i in data["incidents"] if i["present"]]
    # The three titles of seed 003's report are one issue: one bug.
    assert {i["issue_id"] for i in present if i["test_id"].endswith(JOB)} == {issues[1]["id"]}
    absent = [i for i in data["incidents"] if not i["present"]]
    assert sorted(i["test_id"].rsplit(".", 1)[-1] for i in absent) == ["onoff-r1"]
    assert absent[0]["issue_id"] == issues[1]["id"]


def test_kcidb_issue_of_an_invalid_bug_has_no_culprit(results: Path) -> None:
    assert main(["report", rid(2)]) == 0
    assert main(["bugs", "invalid", "2", "--reason", "sysrq crash on purpose"]) == 0
    assert main(["report", rid(2)]) == 0
    data = json.loads((results / rid(2) / "kcidb.json").read_text())
    kcidb_schema.V5_3.validate_exactly(data)
    (issue,) = [i for i in data["issues"] if i["misc"]["kto_bug"] == 2]
    assert issue["culprit"] == {"code": False, "tool": False, "harness": False}
    assert issue["version"] == 2  # a triage action is a new version of the issue


def test_a_store_that_is_not_a_database_is_exit_3_naming_it(
    results: Path, capsys: pytest.CaptureFixture
) -> None:
    (results / "bugs.sqlite").write_text("this is not a database, it is a note\n" * 100)
    assert main(["report", rid(2)]) == 3
    err = capsys.readouterr().err
    assert f"cannot write {results / 'bugs.sqlite'}: file is not a database" in err, err
    assert "move" in err and "Traceback" not in err
    # The run's own reports are written all the same, without bug numbers.
    assert 'class="bug' not in (results / rid(2) / "report.html").read_text()
    assert main(["bugs", "list"]) == 3


def test_a_store_held_by_a_stuck_writer_is_exit_3_naming_it(
    results: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["report", rid(1)]) == 0
    monkeypatch.setattr(store_mod, "BUSY_SECONDS", 0.2)
    holder = sqlite3.connect(results / "bugs.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another kto in the middle of a write, for ever
    try:
        assert main(["report", rid(2)]) == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert f"cannot write {results / 'bugs.sqlite'}: database is locked" in err, err
    assert main(["report", rid(2)]) == 0  # free again: the run goes in
