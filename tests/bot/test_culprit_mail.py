"""The culprit mail and the night's digest, from a real bisect run: the real driver on a
real git history (commits with real trailers), its probes faked the way tests/test_bisect.py
fakes them but showing the findings kto's parser finds in a real console (seed 003's
WARNING in __mmdrop with its rss-counter and pgtables consequences), in a store that knows
the bug from a matrix night. The .eml is read back by Python's parser and by git mailinfo."""

from __future__ import annotations

import copy
import email.policy
import hashlib
import json
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from orchestrator.bisect import driver
from orchestrator.bot import culprit_mail
from orchestrator.bot.culprit_mail import write_culprit_mail, write_digest
from orchestrator.bugs import outcomes
from orchestrator.bugs.record import record_run, write_dashboard
from orchestrator.bugs.store import Store, open_store
from orchestrator.errors import UserError
from orchestrator.job.runner import JobResult
from orchestrator.records.model import load_run
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict
from orchestrator.results.mailtext import Identity, safe_lines

from ..bugs.nights import MMDROP, PANIC, PGTABLES, RSS, SEED002, SEED003, night, rid
from ..conftest import REPO, git
from ..fakejob import record_job
from ..results.test_report_cli import chromium

ME = Identity("Tess Tester", "tess@example.org")
DEV = ("Dev Eloper", "dev@example.org")
THREAD = "20261201.1234-1-dev@example.org"
SUBJECT = "mm: keep the lazy mm reference across CPU offline"
FRAGMENTS = ("base-x86_64", "debug")
MAINTAINERS = {
    "file": "kernel/fork.c",
    "people": ["Ada Maintainer <ada@example.org>", "Dev Eloper <dev@example.org>"],
    "lists": ["linux-mm@kvack.org"],
    "note": None,
}


def _findings() -> list[dict[str, Any]]:
    """Seed 003's findings as the job's decode stage leaves them: get_maintainer.pl's
    recorded answer for the guilty file (tests/symbolize runs the script itself)."""
    found = copy.deepcopy(SEED003)
    found[0]["symbolized"] = {
        "guilty": {"function": "__mmdrop", "file": "kernel/fork.c", "line": 802},
        "maintainers": MAINTAINERS,
    }
    return found


def _history(repo: Path, n: int, culprit: int, trailers: bool) -> list[str]:
    # Without trailers the culprit's author is "Eloper, Dev": a comma in a name.
    author = f"{DEV[0]} <{DEV[1]}>" if trailers else f"Eloper, Dev <{DEV[1]}>"
    for i in range(1, n + 1):
        (repo / "mm" / "mmu_notifier.c").write_text(f"int step{i};\n")
        if i != culprit:
            git(repo, "commit", "-qam", f"mm: step {i}")
            continue
        msg = f"{SUBJECT}\n\nThe offline path drops the reference it was handed.\n"
        if trailers:
            msg += (
                "\nSigned-off-by: Dev Eloper <dev@example.org>\n"
                "Reviewed-by: Rev Iewer <rev@example.org>\n"
                "Acked-by: Ada Maintainer <ada@example.org>\n"
                f"Link: https://lore.kernel.org/r/{THREAD}\n"
                "Signed-off-by: Sam Subsystem <sam@example.org>\n"
            )
        git(repo, "commit", "-qam", msg, f"--author={author}")
    return git(repo, "rev-list", "--reverse", "HEAD").splitlines()


def _build(spec: JobSpec) -> dict[str, Any]:
    frags = []
    for name in FRAGMENTS:
        path = REPO / "configs" / "kconfig" / f"{name}.config"
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        frags.append({"name": name, "path": str(path), "sha256": sha})
    inputs = {
        "tree": spec.tree,
        "base_commit": spec.ref,
        "describe": f"v6.1-{str(spec.ref)[:7]}",
        "kconfig_base": "tinyconfig",
        "fragments": frags,
    }
    return {"inputs": inputs, "cache_hit": spec.repeat > 0, "compiled_s": 10.0}


def _fake_jobs(monkeypatch: pytest.MonkeyPatch, commits: list[str], culprit: int, flaky: bool):
    """Probes that show seed 003's findings from the culprit on (every other run of a
    commit when flaky), a clean boot before it."""

    def fake_run_job(spec: JobSpec, job_dir: Path, **_kw: Any) -> JobResult:
        i = commits.index(str(spec.ref))
        job_dir.mkdir(parents=True, exist_ok=True)
        if i >= culprit and not (flaky and spec.repeat % 2):
            found = _findings()
            v = Verdict(Status.FAIL, f"kernel reported warning: {MMDROP}", MMDROP, found)
        else:
            v = Verdict(Status.PASS, "test passed")
        return record_job(
            spec, job_dir, v, job=spec.to_dict(), build=_build(spec), durations={"guest": 2.5}
        )

    monkeypatch.setattr(driver, "run_job", fake_run_job)


@dataclass
class World:
    root: Path
    night: Path
    store: Store
    bisection: outcomes.Bisection
    commits: list[str]
    k: int
    run_dir: Path


def _world(
    tiny_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    trailers: bool,
    flaky: bool = False,
) -> World:
    root = tmp_path / "results"
    monkeypatch.setenv("KTO_RESULTS", str(root))
    # The night that found the bug (seed 003 in both repeats of the onoff cell) and two more.
    cells = {"x86_64.onoff": [SEED003, SEED003], "x86_64.boot": [PANIC], "x86_64.kvm": [SEED002]}
    night_dir = night(root, rid(1), cells)
    record_run(load_run(night_dir))
    k = 5
    commits = _history(tiny_repo, 8, k, trailers)
    _fake_jobs(monkeypatch, commits, k, flaky)
    base = JobSpec(
        arch="x86_64", tree=str(tiny_repo), test="rcutorture-onoff", duration=60,
        fragments=("debug",),
    )  # fmt: skip
    run_dir, state = driver.start(
        str(tiny_repo), commits[0], commits[-1], base, driver.Target(), 0.95, 60
    )
    driver.run_bisect(run_dir, state)
    doc = json.loads((run_dir / "run.json").read_text())["bisect"]
    assert doc["culprit"]["sha"] == commits[k], doc
    store = open_store(root)
    bug_id = int(
        store.db.execute("SELECT bug_id FROM titles WHERE title = ?", (MMDROP,)).fetchone()[0]
    )
    b = outcomes.Bisection(
        bug_id=bug_id,
        kind="culprit",
        run_id=run_dir.name,
        cell="debian-6.1.none.default.x86_64.onoff",
        good=commits[0],
        bad=commits[-1],
        night=night_dir.name,
        status="found",
        commit=commits[k],
        subject=doc["culprit"]["subject"],
        author=doc["culprit"]["author"],
        confidence=doc["confidence"],
        flags=doc["flags"],
    )
    outcomes.save_bisection(store, b)
    return World(root, night_dir, store, b, commits, k, run_dir)


def _parse(path: Path) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parse(path.open("rb"))
    assert isinstance(msg, EmailMessage)
    return msg


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _headers_fit(path: Path) -> None:
    head = path.read_bytes().split(b"\n\n", 1)[0]
    assert max(len(line.rstrip(b"\r")) for line in head.split(b"\n")) <= 998


def _mailinfo(path: Path, tmp: Path) -> tuple[str, str, str]:
    """git mailinfo's view: (its header lines, the message it keeps, the patch it finds)."""
    tmp.mkdir(exist_ok=True)
    res = subprocess.run(
        ["git", "mailinfo", "msg", "patch"],
        cwd=tmp,
        stdin=path.open("rb"),
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout, (tmp / "msg").read_text(), (tmp / "patch").read_text()


def test_culprit_mail_answers_the_patch_thread(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tiny_repo, tmp_path, monkeypatch, trailers=True)
    sha, sha12, parent12 = w.commits[w.k], w.commits[w.k][:12], w.commits[w.k - 1][:12]
    out = outcomes.mail_dir(w.night)
    path = write_culprit_mail(w.store, w.bisection, out, ME, bug_url_template="")
    assert path == out / f"bug-{w.bisection.bug_id}-culprit-{sha12}.eml"
    msg = _parse(path)
    _headers_fit(path)
    assert msg["From"] == "Tess Tester <tess@example.org>"
    assert msg["To"] == "Dev Eloper <dev@example.org>"
    cc = [a.addr_spec for a in msg["Cc"].addresses]
    # The commit's people and get_maintainer's, once each; the author is To, not Cc.
    assert cc == [
        "rev@example.org",
        "ada@example.org",
        "sam@example.org",
        "linux-mm@kvack.org",
    ], cc
    # It answers the mail that posted the patch, as the commit's Link: says.
    assert msg["In-Reply-To"] == f"<{THREAD}>"
    assert msg["References"] == f"<{THREAD}>"
    assert msg["Subject"] == f"Re: [PATCH] {SUBJECT}"
    assert msg["Date"] and msg["Message-ID"]
    body = _text(msg)
    assert sha in body and f'"{SUBJECT}"' in body and "Dev Eloper <dev@example.org>" in body
    assert f"{w.commits[0][:12]}..{w.commits[-1][:12]} (8 commits" in body
    # fail:runs per title, the culprit's parent against the culprit.
    state = driver.State.load(w.run_dir)
    at_parent = sum(r["commit"] == w.commits[w.k - 1] for r in state.runs)
    at_culprit = sum(r["commit"] == sha for r in state.runs)
    assert at_parent and at_culprit
    assert f" parent        culprit       title\n {parent12}  {sha12}\n" in body
    for title in (MMDROP, RSS, PGTABLES):
        row = f" {f'0:{at_parent}':<14}{f'{at_culprit}:{at_culprit}':<14}{title}\n"
        assert row in body, (row, body)
    # The report from a bad run at the culprit, verbatim, and where it is.
    assert " WARNING: CPU: 1 PID: 233 at kernel/fork.c:802 __mmdrop+0xb6/0xd0\n" in body
    assert "guilty:    __mmdrop at kernel/fork.c:802" in body
    # The config, with each fragment's lines.
    assert "tinyconfig+debug (x86_64)" in body
    for name in FRAGMENTS:
        frag = (REPO / "configs" / "kconfig" / f"{name}.config").read_text().splitlines()
        assert f" # {name}.config\n" in body
        assert all(f"\n {line}\n" in body for line in frag if line), name
    # The exact reproducer at the culprit, and the bisection again.
    run = (
        f" kto run --arch x86_64 --tree {tiny_repo} --ref {sha} --config debug "
        "--test rcutorture-onoff --duration 60\n"
    )
    assert run in body, body
    assert f" kto bisect --arch x86_64 --tree {tiny_repo} --config debug" in body
    assert f"--good {w.commits[0]} --bad {w.commits[-1]} --title 'WARNING in __mmdrop'" in body
    ext = outcomes.extid(w.store, w.bisection.bug_id)
    assert "\nReported-by: Tess Tester <tess@example.org>\n" in body
    assert f"\nCloses: {(w.root / 'bugs.html').resolve().as_uri()}#bug-{ext}\n" in body
    assert f'\nFixes: {sha12} ("{SUBJECT}")\n' in body
    assert "reproduces in about" not in body  # every run at the culprit showed it
    # Written again: the same message id (a resent file threads the same way).
    again = _parse(write_culprit_mail(w.store, w.bisection, out, ME))
    assert again["Message-ID"] == msg["Message-ID"]
    # git am's reader: the sender and the patch's subject, and no patch in the report.
    info, kept, patch = _mailinfo(path, tmp_path / "mailinfo")
    assert "Author: Tess Tester\nEmail: tess@example.org\n" in info
    assert f"Subject: {SUBJECT}\n" in info
    assert patch == "", patch[:500]
    assert "---[ end trace 0000000000000000 ]---" in kept


def test_culprit_mail_without_a_thread(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tiny_repo, tmp_path, monkeypatch, trailers=False, flaky=True)
    sha12 = w.commits[w.k][:12]
    tmpl = "https://bugs.example.org/bug?extid={extid}"
    path = write_culprit_mail(
        w.store, w.bisection, tmp_path / "out", Identity(), bug_url_template=tmpl
    )
    msg = _parse(path)
    _headers_fit(path)
    assert msg["From"] == "kto <kto@localhost>"
    assert msg["To"] == '"Eloper, Dev" <dev@example.org>'  # one address, not "Eloper" and "Dev"
    assert [a.addr_spec for a in msg["To"].addresses] == ["dev@example.org"]
    assert msg["In-Reply-To"] is None and msg["References"] is None
    title = f'{MMDROP} (bisected to {sha12} "{SUBJECT}")'
    assert msg["Subject"] == f"[kto] {title}"
    # Only get_maintainer's people: the commit names nobody else, and the author is To.
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["ada@example.org", "linux-mm@kvack.org"]
    body = _text(msg)
    state = driver.State.load(w.run_dir)
    judged = [r for r in state.runs if w.commits.index(r["commit"]) >= w.k]
    bad = sum(r["outcome"]["bad"] for r in judged)
    assert 0 < bad < len(judged)
    assert f"reproduces in about {round(100 * bad / len(judged))} % of boots" in body
    ext = outcomes.extid(w.store, w.bisection.bug_id)
    assert "\nReported-by: kto <kto@localhost>\n" in body
    assert f"\nCloses: https://bugs.example.org/bug?extid={ext}\n" in body
    info, _kept, patch = _mailinfo(path, tmp_path / "mailinfo")
    assert f"Subject: {title}\n" in info and "Email: kto@localhost\n" in info
    assert patch == ""


def test_no_body_line_starts_a_patch(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Everything kto does not write itself (a subject, a title, a fragment) can be any
    # text; a culprit subject that the prose wraps onto a line of its own must not become
    # a patch for git am, nor "From " an mbox separator.
    w = _world(tiny_repo, tmp_path, monkeypatch, trailers=False)
    # The prose wraps this subject right before its " --- ": the line would start a patch.
    hostile = "z" * 73 + " --- a/mm/memory.c"
    monkeypatch.setattr(
        culprit_mail,
        "read_commit",
        lambda ev, b: culprit_mail.Commit(ev.culprit, hostile, "Dev Eloper <dev@example.org>"),
    )
    path = write_culprit_mail(w.store, w.bisection, tmp_path / "out", ME)
    assert '\n --- a/mm/memory.c"):\n' in _text(_parse(path))
    assert _mailinfo(path, tmp_path / "mailinfo")[2] == ""
    # The rule itself, on every shape mailinfo and mbox take for a start.
    assert safe_lines(["diff --git a/x b/x", "Index: x", "--- a/x", "---", "From x", "ok"]) == [
        " diff --git a/x b/x",
        " Index: x",
        " --- a/x",
        " ---",
        " From x",
        "ok",
    ]
    assert safe_lines(["---[ end trace ]---", "-- ", "------------[ cut here ]"]) == [
        "---[ end trace ]---",
        "-- ",
        "------------[ cut here ]",
    ]


def test_a_bisection_without_a_culprit_is_refused(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tiny_repo, tmp_path, monkeypatch, trailers=False)
    w.bisection.status, w.bisection.commit = "not-found", None
    with pytest.raises(UserError, match="found no culprit"):
        write_culprit_mail(w.store, w.bisection, tmp_path / "out", ME)
    w.bisection.status, w.bisection.commit = "found", w.commits[w.k]
    w.bisection.run_id = "20261201-000000-bisect-gone-0000"
    with pytest.raises(UserError, match="the bisect run is gone"):
        write_culprit_mail(w.store, w.bisection, tmp_path / "out", ME)


def test_digest_lists_each_new_bug_and_what_was_done(
    tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tiny_repo, tmp_path, monkeypatch, trailers=True)
    mail = write_culprit_mail(w.store, w.bisection, outcomes.mail_dir(w.night), ME)
    w.bisection.mail = str(mail)
    outcomes.save_bisection(w.store, w.bisection)
    # A second NEW bug that night (the panic cell), whose bisect the budget cut short, and
    # a third the bot did not bisect.
    db = w.store.db
    other = [
        int(r[0])
        for r in db.execute("SELECT id FROM bugs WHERE id != ? ORDER BY id", (w.bisection.bug_id,))
    ]
    assert len(other) >= 2, other
    cut = outcomes.Bisection(
        bug_id=other[0], kind="culprit", run_id=w.run_dir.name, cell="c", good="a" * 40,
        bad="b" * 40, status="interrupted",
    )  # fmt: skip
    flagged = outcomes.Bisection(
        bug_id=other[0], kind="culprit", run_id=w.run_dir.name, cell="c", good="a" * 40,
        bad="b" * 40, status="found", commit="c" * 40, subject="Merge branch 'x'",
        author="M <m@example.org>", confidence=0.97, flags=["a merge commit: either side"],
    )  # fmt: skip
    path = write_digest(
        w.night,
        w.store,
        [w.bisection, cut, flagged],
        [(other[1], "the tree did not move since the cell passed")],
        ME,
    )
    assert path == w.night / "mail" / "digest.eml"
    msg = _parse(path)
    _headers_fit(path)
    assert msg["To"] == "Tess Tester <tess@example.org>"
    assert msg["Subject"] == f"[kto] {w.night.name}: 3 new bugs"
    body = _text(msg)
    flat = " ".join(body.split())  # what each bug says, wherever the fields wrap
    sha12 = w.commits[w.k][:12]
    for bug_id in (w.bisection.bug_id, *other[:2]):
        assert f"\n#{bug_id} " in body
    assert f"\n#{w.bisection.bug_id} {MMDROP}\n" in body
    assert "cell: debian-6.1.none.default.x86_64.onoff 2:2" in flat
    assert f'culprit {sha12} ("{SUBJECT}") by Dev Eloper <dev@example.org>' in flat
    assert f"mailed: {mail.name}" in flat
    assert "flagged, not mailed: a merge commit: either side" in flat
    assert "culprit bisect cut short by the budget" in flat
    assert "not bisected: the tree did not move since the cell passed" in flat
    assert _mailinfo(path, tmp_path / "mailinfo")[2] == ""
    # The dashboard: the bug's stable anchor (the Closes: link's) and its bisections.
    outcomes.save_bisection(w.store, cut)
    outcomes.save_bisection(w.store, flagged)
    write_dashboard(w.store)
    closes = outcomes.bug_url(w.store, w.bisection.bug_id)  # the culprit mail's Closes:
    dom = chromium("--dump-dom", closes)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    anchor = closes.rpartition("#")[2]
    assert anchor == outcomes.dashboard_anchor(w.store, w.bisection.bug_id)
    section = html[html.index(f'id="{anchor}"') :].split("</section>")[0]
    assert f"<h2>#{w.bisection.bug_id} {MMDROP} " in section
    assert f"{sha12} {SUBJECT}" in section and mail.name in section
    other_section = html[html.index(f'id="bug-{other[0]}"') :].split("</section>")[0]
    assert "a merge commit: either side" in other_section
    assert "interrupted" in other_section
