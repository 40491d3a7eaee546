"""bugs.html, written beside the store with every run, as a real browser reads it: headless
chromium's DOM (not the file's text), open bugs first, newest first, per-bug history."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.cli import main

from ..results.test_report_cli import chromium
from .nights import MMDROP, PANIC, SEED002, SEED003, night, rid


class _Dom(HTMLParser):
    """Row ids per table id, and each bug section's history boxes, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.boxes: dict[str, list[str]] = {}
        self.tbody = 0
        self._table: str | None = None
        self._section: str | None = None
        self._in_strip = False
        self._box = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.rows[str(self._table)] = []
        elif tag == "tbody":
            self.tbody += 1
        elif tag == "tr" and self._table and a.get("id"):
            self.rows[self._table].append(str(a["id"]))
        elif tag == "section":
            self._section = a.get("id")
            self.boxes[str(self._section)] = []
        elif tag == "p" and a.get("class") == "strip":
            self._in_strip = True
        elif tag == "span" and a.get("class") == "box" and self._in_strip:
            self._box = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "p":
            self._in_strip = False
        elif tag == "span":
            self._box = False

    def handle_data(self, data: str) -> None:
        if self._box and self._section:
            self.boxes[self._section].append(data)


def test_bugs_html_renders_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    monkeypatch.setenv("KTO_BUGS_QUIET_NIGHTS", "1")
    # Night 1: the panic (2:2) and seed 003; nights 2 and 3: seed 003 again, seed 002 new
    # on night 2, no panic: 8 clean runs, what a 2:2 bug needs to count as fixed.
    night(root, rid(1), {"x86_64.onoff": [SEED003, None], "x86_64.boot": [PANIC, PANIC]})
    night(
        root,
        rid(2),
        {
            "x86_64.onoff": [SEED003, SEED003],
            "x86_64.boot": [None] * 4,
            "x86_64.kvm": [SEED002, SEED002],
        },
    )
    night(
        root,
        rid(3),
        {"x86_64.onoff": [None, SEED003], "x86_64.kvm": [None, None], "x86_64.boot": [None] * 4},
    )
    for day in (1, 2, 3):
        assert main(["report", rid(day)]) in (0, 1)
    capsys.readouterr()
    html = root / "bugs.html"
    dom = chromium("--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Dom()
    parsed.feed(dom.stdout)
    # A browser's DOM: tables got their implied <tbody>, which the file does not have.
    assert parsed.tbody >= 2 and "<tbody>" not in html.read_text()
    # Open bugs first, newest first (#3 seed 002, first seen night 2, then seed 003's #2),
    # then the closed one (#1, the panic: night 1 ingests the boot job before onoff).
    assert parsed.rows["open-bugs"] == ["row-3", "row-2"]
    assert parsed.rows["closed-bugs"] == ["row-1"]
    assert re.search(r'id="row-1">.*?fixed.*?</tr>', dom.stdout, re.S)
    # The history strip across nights, oldest first: fail:runs of the bug in its cells.
    assert parsed.boxes["bug-2"] == ["1:2", "2:2", "1:2"]
    assert parsed.boxes["bug-3"] == ["2:2", "0:2"]
    assert parsed.boxes["bug-1"] == ["2:2", "0:4", "0:4"]
    assert f"<h2>#2 {MMDROP} " in dom.stdout
    assert "stopped reproducing for 2 nights at the tree" in dom.stdout
    # Links relative to the results root: the best report's console and decoded report.
    assert f'href="{rid(3)}/debian-6.1.none.default.x86_64.onoff-r1/console.log"' in dom.stdout
    assert f'href="{rid(3)}/report.html#job-debian-6.1.none.default.x86_64.onoff-r1"' in dom.stdout
    png = tmp_path / "bugs.png"
    shot = chromium(f"--screenshot={png}", "--window-size=1400,1000", html.as_uri())
    assert shot.returncode == 0 and png.stat().st_size > 10_000, shot.stderr[-2000:]
