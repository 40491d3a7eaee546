"""Night to night classification with fail:runs, on run directories written like kto does."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.matrix.history import classify

CELL = {"matrix": "n", "tree": "debian-6.1", "series": "none", "config": "default"}


def _night(
    root: Path,
    rid: str,
    jobs: dict[str, list[str | None]],
    key: str = "matrix:n",
    last_kernel: dict[str, list[str | None]] | None = None,
) -> Path:
    """jobs: cell test -> one entry per repeat: None = PASS, a title = FAIL with it, "ERROR",
    "SKIP".
    last_kernel: the same, for runs of the previous night's kernel (NEW confirmation)."""
    run = root / rid
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"label": "matrix-n", "compare_key": key}))
    runs = [(t, r, False) for t, r in jobs.items()]
    runs += [(t, r, True) for t, r in (last_kernel or {}).items()]
    for test, repeats, again in runs:
        for r, title in enumerate(repeats):
            kind = "lastkernel-r" if again else "r"
            d = run / f"debian-6.1.none.default.x86_64.{test}-{kind}{r}"
            d.mkdir()
            status = "PASS" if title is None else title if title in ("ERROR", "SKIP") else "FAIL"
            findings = [] if status != "FAIL" else [{"kind": "warning", "title": title}]
            verdict = {"status": status, "reason": "r", "title": title if findings else None}
            rec = {
                "arch": "x86_64",
                "test": test,
                "repeat": r,
                "status": status,
                "verdict": {**verdict, "findings": findings},
                "outcome": {"test_rc": 0},
                "cell": {**CELL, "arch": "x86_64", "test": test},
            }
            if again:
                rec["previous_kernel"] = {"run": "earlier", "kernel": "/k"}
            (d / "job.json").write_text(json.dumps(rec))
            (d / "findings.json").write_text(json.dumps({"findings": findings}))
            (d / "console.log").write_text("")
    return run


W = "WARNING in __mmdrop"


def test_new_fixed_persistent_unstable_infra(tmp_path: Path) -> None:
    _night(
        tmp_path,
        "20261201-010000-matrix-n-0001",
        {
            "a": [None, None],
            "b": [W, W],
            "c": [W, W],
            "d": [None, None],
            "e": [None, None],
        },
    )
    _night(
        tmp_path,
        "20261202-010000-matrix-n-0002",
        {
            "a": [None, None],
            "b": [W, W],
            "c": [W, W],
            "d": [W, None],
            "e": [None, None],
        },
    )
    run = _night(
        tmp_path,
        "20261203-010000-matrix-n-0003",
        {
            "a": [W, W, W],
            "b": [W, W],
            "c": [None, None],
            "d": [W, W],
            "e": ["ERROR", "ERROR"],
            "f": ["SKIP", "SKIP"],  # a test that does not apply: no line at all
        },
    )
    c = classify(run)
    got = {(ln.cls, ln.cell.rsplit(".", 1)[1], ln.title): ln for ln in c.lines}
    assert set(got) == {
        ("new", "a", W),
        ("persistent", "b", W),
        ("fixed", "c", W),
        ("unstable", "d", W),
        ("infra", "e", "no verdict (ERROR/MISS)"),
    }
    new = got[("new", "a", W)]
    assert str(new.now) == "3:3" and [str(t) for t in new.before] == ["0:2", "0:2"]
    assert "3:3 now vs 0:2 last time" in new.text()
    assert str(got[("unstable", "d", W)].now) == "2:2"
    assert c.history == ["20261202-010000-matrix-n-0002", "20261201-010000-matrix-n-0001"]
    # the per-cell strip: the test's own fail:runs, newest first; no verdict = None
    strips = {
        cell.rsplit(".", 1)[1]: [str(t) if t else None for t in s] for cell, s in c.strips.items()
    }
    assert strips["a"] == ["3:3", "0:2", "0:2"]
    assert strips["d"] == ["2:2", "1:2", "0:2"]
    assert strips["e"] == [None, "0:2", "0:2"]


def test_the_report_shows_the_lists_and_the_strips(tmp_path: Path) -> None:
    from orchestrator.results.reports import write_reports

    _night(tmp_path, "20261201-010000-matrix-n-0001", {"a": [None, None], "b": [W, None]})
    run = _night(tmp_path, "20261202-010000-matrix-n-0002", {"a": [W, W], "b": [None, None]})
    html = write_reports(run, night=classify(run)).files["html"].read_text()
    assert "<h2>Night to night</h2>" in html
    assert '<td class="cls-new">NEW</td><td>debian-6.1.none.default.x86_64.a</td>' in html
    assert f"<td>{W}</td><td>2:2</td><td>0:2</td><td>-</td>" in html
    # a's strip, oldest first: green 0:2, then red 2:2
    a_row = next(
        r for r in html.split("<tr>") if r.startswith("<td>debian-6.1.none.default.x86_64.a")
    )
    assert a_row.index('title="0:2"') < a_row.index('title="2:2"')
    assert 'background:#c62828" title="2:2"' in a_row


def test_last_nights_kernel_rerun_counts_apart(tmp_path: Path) -> None:
    _night(tmp_path, "20261201-010000-matrix-n-0001", {"a": [None, None]})
    run = _night(
        tmp_path,
        "20261202-010000-matrix-n-0002",
        {"a": [W, W, W]},
        last_kernel={"a": [None, None]},
    )
    (line,) = classify(run).lines
    assert line.cls == "new" and str(line.now) == "3:3" and str(line.last_kernel) == "0:2"
    assert "3:3 now vs 0:2 last time; 0:2 with last time's kernel, re-run now" in line.text()


def test_a_plain_run_has_no_night_to_night(tmp_path: Path) -> None:
    from orchestrator.results.reports import write_reports

    run = _night(tmp_path, "20261201-010000-run-x-0001", {"a": [None]}, key="run:x")
    assert "Night to night" not in write_reports(run).files["html"].read_text()


def test_other_matrices_and_first_nights_are_not_history(tmp_path: Path) -> None:
    _night(tmp_path, "20261201-010000-matrix-n-0001", {"a": [W]}, key="matrix:other")
    run = _night(tmp_path, "20261202-010000-matrix-n-0002", {"a": [W]})
    c = classify(run)
    assert c.history == [] and [(ln.cls, str(ln.now)) for ln in c.lines] == [("new", "1:1")]


def _built_with(run: Path, compiler: str, tuxmake: str) -> None:
    for job in run.glob("*/job.json"):
        rec = json.loads(job.read_text())
        rec["build"] = {"key": "k", "compiler": compiler, "tuxmake": tuxmake}
        rec["qemu"] = {"version": "QEMU emulator version 7.2.15"}
        job.write_text(json.dumps(rec))


def test_every_tool_version_is_recorded_and_a_change_is_flagged(tmp_path: Path) -> None:
    from orchestrator import __version__
    from orchestrator.results.reports import finish_run

    first = _night(tmp_path, "20261201-010000-matrix-n-0001", {"a": [None]})
    _built_with(first, "gcc (Debian 12.2.0-14) 12.2.0", "1.30.0")
    finish_run(first, {}, classify=classify)
    second = _night(tmp_path, "20261202-010000-matrix-n-0002", {"a": [W]})
    _built_with(second, "gcc (Debian 13.1.0-1) 13.1.0", "1.30.0")
    report = finish_run(second, {}, classify=classify)
    versions = json.loads((second / "run.json").read_text())["versions"]
    assert versions == {
        "qemu": "QEMU emulator version 7.2.15",
        "compiler": "gcc (Debian 13.1.0-1) 13.1.0",
        "tuxmake": "1.30.0",
        "kto": __version__,
    }
    assert report.night.versions_changed == [
        "compiler: gcc (Debian 12.2.0-14) 12.2.0 -> gcc (Debian 13.1.0-1) 13.1.0"
    ]


def test_an_expected_finding_caught_every_night_is_not_new(tmp_path: Path) -> None:
    run = _night(tmp_path, "20261201-010000-matrix-n-0001", {"a": [W, W]})
    for job in run.glob("*/job.json"):  # what a cell with `expect: [W]` records
        rec = json.loads(job.read_text())
        rec.update(status="XFAIL", job={"arch": "x86_64", "expect": [W]})
        rec["verdict"]["status"] = "XFAIL"
        job.write_text(json.dumps(rec))
    c = classify(run)
    assert not c.lines, [ln.text() for ln in c.lines]
