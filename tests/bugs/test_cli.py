"""`kto bugs`: list with its filters, show, and triage by hand (who, when, why recorded),
through the command line on a results root of recorded nights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.records.model import load_run

from .nights import MMDROP, PANIC, SEED002, SEED003, night, rid

MMU = SEED002[0]["title"]


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three nights already on disk (imported on first use): seed 003 on x86_64 and arm64,
    seed 002 on x86_64 on the second tree from night 2, the panic once on night 1."""
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    # Who triages: a git identity of the test's own (no repository here, no user config).
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Tess Triage\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)
    night(
        root,
        rid(1),
        {"x86_64.onoff": [SEED003, None], "arm64.onoff": [SEED003, None], "x86_64.boot": [PANIC]},
    )
    night(
        root,
        rid(2),
        {
            "x86_64.onoff": [SEED003, SEED003],
            "arm64.onoff": [None, None],
            "debian-6.12.x86_64.kvm": [SEED002, SEED002],
        },
    )
    night(
        root,
        rid(3),
        {
            "x86_64.onoff": [SEED003, None],
            "arm64.onoff": [None, None],
            "debian-6.12.x86_64.kvm": [SEED002, None],
        },
    )
    return root


def _listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["bugs", "list", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_imports_and_filters(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bugs"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{results / 'bugs.sqlite'}: 3 open, 0 fixed, 0 invalid, 0 dup"
    assert lines[1].split()[:3] == ["bug", "state", "title"]
    # Newest first: seed 002's bug (first seen night 2) before the two of night 1.
    assert [ln.split()[0] for ln in lines[2:]] == ["#3", "#2", "#1"]
    row = next(ln for ln in lines if MMDROP in ln)
    assert "2026-12-01  2026-12-03  5:8" in row and "flaky (≈62 %, 31-86 %)" in row
    assert {b["title"] for b in _listed(capsys, "--arch", "arm64")} == {MMDROP}
    assert {b["title"] for b in _listed(capsys, "--tree", "debian-6.12")} == {MMU}
    assert {b["title"] for b in _listed(capsys, "--since", "2026-12-02")} == {MMDROP, MMU}
    assert _listed(capsys, "--state", "fixed") == []


def test_show_has_cells_history_report_and_reproducer(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bugs", "show", "#1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"#1 {MMDROP}  [open]\n")
    assert "  together:   BUG: Bad rss-counter state" in out
    assert f"first seen: 2026-12-01  {rid(1)}/debian-6.1.none.default.arm64.onoff-r0 at " in out
    assert "debian-6.1.none.default.arm64.onoff   1:2" in out
    assert "debian-6.1.none.default.x86_64.onoff  4:6" in out
    # The history strip: both cells, per night.
    assert "12-01 2:4  12-02 2:4  12-03 1:4" in out
    assert "incidents (newest 15 of 15):" in out
    assert (
        "    WARNING: CPU: 1 PID: 233 at kernel/fork.c:802 __mmdrop+0xb6/0xd0\n" in out
    )  # the best report, as the kernel printed it
    assert "reproducer: kto run --arch x86_64 --tree debian-6.1 --test onoff --duration 20" in out
    assert "kto  created: first seen" in out


def test_triage_records_who_when_and_why(
    results: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        main(["bugs", "close", "2", "--commit", "abc123", "--reason", "sysrq is on purpose"]) == 0
    )
    assert "#2 kernel panic: sysrq triggered crash: fixed (Tess Triage)" in capsys.readouterr().out
    assert main(["bugs", "dup", "3", "1", "--reason", "same mm teardown"]) == 0
    capsys.readouterr()
    (bug,) = [b for b in _listed(capsys, "--state", "all") if b["id"] == 1]
    assert bug["fails"] == 8  # seed 002's 3 failing runs count as #1's now
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")  # no git identity: $USER
    monkeypatch.setenv("USER", "nightly")
    assert main(["bugs", "undup", "3", "--reason", "different trees"]) == 0
    assert main(["bugs", "invalid", "3", "--reason", "a test bug"]) == 0
    assert main(["bugs", "reopen", "3", "--reason", "no, a kernel bug"]) == 0
    capsys.readouterr()
    assert main(["bugs", "show", "3"]) == 0
    out = capsys.readouterr().out
    events = out[out.index("  events:") :].splitlines()[1:]
    assert [e.split(None, 3)[1:3] for e in events] == [
        ["kto", "created:"],
        ["Tess", "Triage"],
        ["nightly", "undup:"],
        ["nightly", "invalid:"],
        ["nightly", "reopen:"],
    ]
    assert "dup: dup of #1: same mm teardown" in events[1]
    assert main(["bugs", "show", "2"]) == 0
    out = capsys.readouterr().out
    assert "[fixed]" in out and "fixed by:   abc123" in out
    assert "closed:     sysrq is on purpose (fixed by abc123) (Tess Triage, 20" in out


def test_a_dup_s_findings_show_as_its_bug(results: Path, capsys: pytest.CaptureFixture) -> None:
    from orchestrator.bugs.record import record_run

    assert main(["bugs", "dup", "3", "1", "--reason", "r"]) == 0
    known = record_run(load_run(night(results, rid(4), {"debian-6.12.x86_64.kvm": [SEED002]})))
    ref = known.of("debian-6.12.none.default.x86_64.kvm-r0", MMU)
    assert ref is not None and (ref.id, ref.matched) == (1, 3)
    assert ref.label().startswith(f"#1 {MMDROP}, open since 2026-12-01, ")
    assert ref.label().endswith("(as its dup #3)")


def test_undup_title_splits_a_secondary_title_off(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bugs", "undup", "1", "--title", "BUG: Bad rss-counter state"]) == 0
    assert "#4 BUG: Bad rss-counter state: split off #1" in capsys.readouterr().out
    bugs = {b["id"]: b for b in _listed(capsys)}
    assert bugs[4]["fails"] == bugs[1]["fails"] == 5 and bugs[4]["incidents"] == 5
    assert main(["bugs", "undup", "1", "--title", MMDROP]) == 2
    assert "is #1 WARNING in __mmdrop's own title" in capsys.readouterr().err


def test_bad_input_is_exit_2_naming_it(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bugs", "show", "42"]) == 2
    err = capsys.readouterr().err
    assert "no bug #42 in the store (bugs are #1 to #3)" in err and "kto bugs list" in err
    assert main(["bugs", "close", "42", "--reason", "x"]) == 2
    assert main(["bugs", "list", "--since", "last week"]) == 2
    assert "--since last week: not a date" in capsys.readouterr().err
    assert main(["bugs", "dup", "1", "1", "--reason", "x"]) == 2
    assert main(["bugs", "reopen", "1", "--reason", "x"]) == 2
    assert "is open already" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bugs", "show", "WARNING"])
    assert exc.value.code == 2
    assert "'WARNING' is not a bug number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bugs", "close", "1"])  # no --reason
    assert "--reason" in capsys.readouterr().err


def test_reopen_refuses_when_its_return_is_open(
    results: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.bugs.record import record_run

    assert main(["bugs", "close", "2", "--reason", "fixed upstream"]) == 0
    record_run(load_run(night(results, rid(4), {"x86_64.boot": [PANIC]})))  # back: #4 (2)
    assert main(["bugs", "reopen", "2", "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "#4 kernel panic: sysrq triggered crash (2) is open with the same title" in err
    assert "kto bugs dup 4 2" in err
    assert main(["bugs", "dup", "4", "2", "--reason", "the same"]) == 0
    assert main(["bugs", "reopen", "2", "--reason", "it never was fixed"]) == 0
    capsys.readouterr()
    bugs = {b["id"]: b for b in _listed(capsys, "--state", "all")}
    assert bugs[2]["state"] == "open" and bugs[2]["fails"] == 2


def test_a_reader_that_goes_away_is_not_a_store_error(results: Path) -> None:
    # `kto bugs show 1 | head`: head exits, kto's next write fails with EPIPE. That was
    # reported as "cannot write bugs.sqlite: Broken pipe", blaming a store that was fine.
    import os
    import subprocess
    import sys

    assert main(["bugs", "list"]) == 0  # the store exists, imported
    read, write = os.pipe()
    os.close(read)  # the reader is gone before kto writes
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "bugs", "show", "1"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KTO_RESULTS": str(results)},
    )
    os.close(write)
    assert "bugs.sqlite" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 3


def test_the_list_filters_work_without_the_list_action(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `kto bugs --state all` was "invalid choice: 'all'" (the filters were list's only).
    assert main(["bugs", "invalid", "2", "--reason", "a harness problem"]) == 0
    capsys.readouterr()
    everything = _listed(capsys, "--state", "all")
    assert len(everything) > len(_listed(capsys))
    for argv in (["--state", "all", "--json"], ["--state", "all", "list", "--json"]):
        assert main(["bugs", *argv]) == 0
        assert json.loads(capsys.readouterr().out) == everything, argv
