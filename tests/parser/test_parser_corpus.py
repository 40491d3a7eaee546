"""syzkaller's Linux report corpus (tests/data/syzkaller/, Apache-2.0; provenance and
fields in its README.md), parsed in-process.

Floors sit just below the measured score (304/304 exact and detection when
written) so a regression fails here. Alt titles count as matches, as in
syzkaller's own deduplication.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from orchestrator.parser import parse_text

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "syzkaller" / "linux-reports.jsonl.gz"
EXACT_FLOOR = 0.99
DETECTION_FLOOR = 0.99


@pytest.fixture(scope="module")
def results() -> list[tuple[dict, str | None]]:
    out = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == 304, f"{CORPUS}: {len(lines)} records, expected 304"
    for line in lines:
        rec = json.loads(line)
        log = rec["log"]
        if rec.get("log_b64"):
            log = base64.b64decode(rec["log_b64"]).decode("utf-8", "replace")
        findings = parse_text(log)
        out.append((rec, findings[0].title if findings else None))
    return out


def test_exact_title_rate(results: list[tuple[dict, str | None]]) -> None:
    titled = [(rec, got) for rec, got in results if rec["title"]]
    misses = [
        (rec["id"], rec["title"], got)
        for rec, got in titled
        if got not in [rec["title"], *rec["alt_titles"]]
    ]
    rate = 1 - len(misses) / len(titled)
    assert rate >= EXACT_FLOOR, f"exact title {rate:.1%} < {EXACT_FLOOR:.0%}; misses: {misses}"


def test_crash_detection_rate(results: list[tuple[dict, str | None]]) -> None:
    wrong = [
        (rec["id"], rec["title"], got) for rec, got in results if bool(got) != rec["expect_crash"]
    ]
    rate = 1 - len(wrong) / len(results)
    assert rate >= DETECTION_FLOOR, f"detection {rate:.1%} < {DETECTION_FLOOR:.0%}; wrong: {wrong}"
