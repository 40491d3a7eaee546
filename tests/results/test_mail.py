"""`kto report --mail`: reply mails about new findings, from a real recorded run whose job
tested a two-patch series and whose finding was decoded against a real -g -O2 binary."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config.arch import load_profile
from orchestrator.records.model import load_run
from orchestrator.results.compare import compare
from orchestrator.results.mail import Identity, write_mails
from orchestrator.symbolize.decode import symbolize_findings
from tests.results.runs import PANIC_X86, as_pass, edit_json, make_run
from tests.symbolize.test_decode import build, marker_line, report_for

ME = Identity("Tess Tester", "tess@example.org")
AUTHOR = "Pat Author <pat@example.org>"
PATCHES = [
    {
        "subject": "[PATCH 1/2] frames: make outer call the helper",
        "index": 1,
        "total": 2,
        "message_id": "20261123.1-pat@example.org",
        "author": AUTHOR,
        "mangled": "",
        "files": ["frames.c"],
    },
    {
        "subject": "[PATCH 2/2] docs: describe outer",
        "index": 2,
        "total": 2,
        "message_id": "20261123.2-pat@example.org",
        "author": AUTHOR,
        "mangled": "",
        "files": ["Documentation/outer.rst"],
    },
]
SPEC = {
    "arch": "x86_64",
    "tree": "debian-6.1",
    "patches": "series.mbox",
    "test": "hotplug",
    "duration": 60,
    "boot": {"accel": "tcg"},
}
TITLE = "BUG: kernel NULL pointer dereference in outer"


def decoded_finding(tmp: Path, extra_report: str = "") -> dict:
    (tmp / "prog").mkdir(exist_ok=True)
    prog = build("x86_64", tmp / "prog")
    report = report_for(prog) + extra_report + "---[ end trace 0000000000000000 ]---\n"
    finding = {
        "kind": "bug",
        "title": TITLE,
        "function": "outer",
        "first_line": 10,
        "last_line": 20,
        "report": report,
    }
    (out,) = symbolize_findings([finding], prog.binary, prog.dir, load_profile("x86_64"))
    # get_maintainer.pl itself is tested in tests/symbolize; here its recorded answer.
    out["symbolized"]["maintainers"] = {
        "file": "frames.c",
        "people": ["Ada Maintainer <ada@example.org>"],
        "lists": ["linux-mm@kvack.org"],
        "note": None,
    }
    return out


def run_with(tmp: Path, finding: dict, run_id: str = "20261124-010000-mailtest-aaaa") -> Path:
    run = make_run(
        tmp / "results", run_id, [(PANIC_X86, "x86_64-hotplug", {"_findings": [finding]})]
    )
    job_json = run / "x86_64-hotplug" / "job.json"
    doc = json.loads(job_json.read_text())
    doc["build"]["inputs"]["series"] = {
        "source": "series.mbox",
        "kind": "mbox",
        "hash": "abc",
        "patches": PATCHES,
    }
    doc["verdict"]["title"] = TITLE
    edit_json(job_json, build=doc["build"], verdict=doc["verdict"], job=SPEC, test="hotplug")
    return run


def messages(run: Path, **kw) -> list[tuple[Path, email.message.EmailMessage]]:
    loaded = load_run(run)
    paths = write_mails(loaded, compare(None, loaded), ME, **kw)
    return [
        (p, email.message_from_bytes(p.read_bytes(), policy=email.policy.default)) for p in paths
    ]


def test_reply_threads_under_the_patch_that_touched_the_guilty_file(tmp_path: Path) -> None:
    run = run_with(tmp_path, decoded_finding(tmp_path))
    ((path, msg),) = messages(run)
    assert (
        path.parent == run / "mail"
        and path.name == "01-bug-kernel-null-pointer-dereference-in-outer.eml"
    )
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    assert msg["Subject"] == "Re: [PATCH 1/2] frames: make outer call the helper"
    assert msg["In-Reply-To"] == "<20261123.1-pat@example.org>"
    assert msg["References"].split() == ["<20261123.1-pat@example.org>"]
    assert msg["To"] == "Tess Tester <tess@example.org>"  # not the author without --to-author
    assert [str(a) for a in msg["Cc"].addresses] == [
        "Ada Maintainer <ada@example.org>",
        "linux-mm@kvack.org",
    ]
    assert msg["From"] == "Tess Tester <tess@example.org>"
    assert msg["Message-ID"].endswith("@example.org>")
    text = msg.get_content()
    assert f"guilty:    outer at frames.c:{marker_line('OUTER_CALL')}" in text
    assert f"helper frames.c:{marker_line('HELPER_CALL')} [inline]" in text
    assert "kto run --arch x86_64 --tree debian-6.1 --patches series.mbox" in text
    assert "--test hotplug --duration 60 --accel tcg" in text
    assert "kto build --tree debian-6.1 --arch x86_64" in text
    assert "Reported-by: kto <tess@example.org>" in text
    assert "fail:runs: 1:1 (this run)" in text
    for line in text.splitlines():
        if not line.startswith(" "):  # log and command lines are verbatim, one space in
            assert len(line) <= 76, line
    assert "<html" not in text.lower() and msg.get_content_type() == "text/plain"


def test_to_author_and_a_guilty_file_no_patch_touched(tmp_path: Path) -> None:
    finding = decoded_finding(tmp_path)
    finding["symbolized"]["guilty"]["file"] = "mm/elsewhere.c"
    run = run_with(tmp_path, finding)
    ((_, msg),) = messages(run, to_author=True, base_url="https://ci.example.org/kto")
    assert msg["To"] == AUTHOR
    assert msg["Subject"] == "Re: [PATCH 2/2] docs: describe outer"  # the series' last patch
    assert msg["In-Reply-To"] == "<20261123.2-pat@example.org>"
    assert msg["References"].split() == [
        "<20261123.1-pat@example.org>",
        "<20261123.2-pat@example.org>",
    ]
    link = "https://ci.example.org/kto/20261124-010000-mailtest-aaaa/report.html#job-x86_64-hotplug"
    assert f"Closes: {link}" in msg.get_content()


def test_git_mailinfo_finds_no_patch(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("no git")
    # Lines that would start a patch if they were not indented.
    nasty = "diff --git a/mm/x.c b/mm/x.c\n--- a/mm/x.c\n+++ b/mm/x.c\nIndex: mm/x.c\n---\n"
    run = run_with(tmp_path, decoded_finding(tmp_path, nasty))
    ((path, _),) = messages(run)
    subprocess.run(
        ["git", "mailinfo", str(tmp_path / "msg"), str(tmp_path / "patch")],
        stdin=path.open("rb"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert (tmp_path / "patch").read_text() == ""
    assert "diff --git a/mm/x.c" in (tmp_path / "msg").read_text()  # the text is all there


def test_a_log_line_too_long_for_smtp_is_never_wrapped(tmp_path: Path) -> None:
    long_line = "x" * 1200
    run = run_with(tmp_path, decoded_finding(tmp_path, long_line + "\n"))
    ((path, msg),) = messages(run)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert " " + long_line in msg.get_content().splitlines()
    assert all(len(line) <= 998 for line in path.read_bytes().split(b"\r\n"))


def test_short_lines_go_as_7bit(tmp_path: Path) -> None:
    ((_, msg),) = messages(run_with(tmp_path, decoded_finding(tmp_path)))
    assert msg["Content-Transfer-Encoding"] == "7bit"


def test_only_new_findings_get_a_mail(tmp_path: Path) -> None:
    finding = decoded_finding(tmp_path)
    old = run_with(tmp_path, finding, "20261123-010000-mailtest-aaaa")
    new = run_with(tmp_path, finding, "20261124-010000-mailtest-bbbb")
    loaded_old, loaded_new = load_run(old), load_run(new)
    assert write_mails(loaded_new, compare(loaded_old, loaded_new), ME) == []  # STILL: no mail
    shutil.rmtree(old / "x86_64-hotplug")
    shutil.copytree(PANIC_X86, old / "x86_64-hotplug")
    edit_json(old / "x86_64-hotplug" / "job.json", test="hotplug", **as_pass())
    (old / "x86_64-hotplug" / "findings.json").write_text('{"findings": []}')
    loaded_old = load_run(old)
    # The bot's mails of the night are not --mail's to replace.
    (new / "mail").mkdir()
    (new / "mail" / "digest.eml").write_text("From: kto\n\nx\n")
    (new / "mail" / "99-stale.eml").write_text("From: kto\n\nx\n")
    mails = write_mails(loaded_new, compare(loaded_old, loaded_new), ME)
    assert [p.name for p in mails] == ["01-bug-kernel-null-pointer-dereference-in-outer.eml"]
    assert sorted(p.name for p in (new / "mail").iterdir()) == [mails[0].name, "digest.eml"]


def test_kto_report_mail_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    run = run_with(tmp_path, decoded_finding(tmp_path))
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    assert main(["report", str(run), "--mail", "--to-author"]) == 0
    out = capsys.readouterr().out
    assert "mail:     1 message(s) (not sent)" in out
    msg = email.message_from_bytes(
        next((run / "mail").glob("*.eml")).read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == AUTHOR
    html = (run / "report.html").read_text()
    assert f"frames.c:{marker_line('OUTER_CALL')}" in html and "OUTER_CALL" in html  # source text
    junit = (run / "junit.xml").read_text()
    assert f"guilty: outer at frames.c:{marker_line('OUTER_CALL')}" in junit


def test_an_old_findings_json_without_symbols_still_mails(tmp_path: Path) -> None:
    finding = decoded_finding(tmp_path)
    del finding["symbolized"]
    ((_, msg),) = messages(run_with(tmp_path, finding))
    assert msg["Subject"] == "Re: [PATCH 2/2] docs: describe outer"  # no guilty file known
    assert msg["Cc"] is None
    assert "The report:" in msg.get_content()
