"""Reply mails about new findings: one RFC 5322 message per finding, written, never sent.

`kto report RUN --mail` writes `<run>/mail/NN-<slug>.eml` for each NEW finding of the
run's comparison (for a run with nothing to compare with: each failing job). A mail about a
job that tested a patch series answers the patch that touched the guilty file (else the
series' last patch): `In-Reply-To`/`References` carry its Message-Id, the subject is
`Re: <its subject>`. Cc: the maintainers and lists get_maintainer.pl named for the guilty
file (recorded in findings.json when the job ran); To: the patch's author with
`--to-author`, else the user's own address, so nothing reaches a stranger by accident.

The body is plain text: prose wrapped at 76 columns, every log line verbatim after one
space (never wrapped, and never a line `git am`/b4 would take for a patch: `diff -`,
`Index: `, `---` + space). Lines longer than SMTP's 998 octets make the body
quoted-printable; otherwise it goes as 7bit/8bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.records.layout import HTML, MAIL_DIR
from orchestrator.records.model import Job, Run
from orchestrator.records.reproduce import kto_command
from orchestrator.records.verdict import Status
from orchestrator.results import decoded
from orchestrator.results.compare import Comparison
from orchestrator.results.mailtext import (
    Identity,
    field,
    finish,
    msgid,
    new_message,
    set_body,
    slug,
    verbatim,
    wrap,
)


@dataclass(frozen=True)
class Subject:
    """What one mail is about: a job and its finding (None: a test failing without one)."""

    job: Job
    finding: dict[str, Any] | None
    why: str  # "new finding", "new failure", "failing job"

    @property
    def title(self) -> str:
        if self.finding:
            return str(self.finding.get("title"))
        return self.job.title or self.job.reason or "test failed"


def subjects(run: Run, comparison: Comparison) -> list[Subject]:
    """NEW findings (one mail each, from the first job that shows it), NEW test failures
    without findings; a run without an earlier one to compare with: each failing job."""
    failing = [j for j in run.jobs if j.status is Status.FAIL]
    if comparison.old_id is None:
        out = []
        for job in failing:
            findings = job.failing_findings()
            out.append(Subject(job, findings[0] if findings else None, "failing job"))
        return out
    out = []
    for change in comparison.regressions:
        if change.what == "finding":
            for job in failing:
                titles = job.failing_findings()
                hit = next((f for f in titles if f.get("title") == change.name), None)
                if hit is not None:
                    out.append(Subject(job, hit, "new finding"))
                    break
        else:
            tree_arch_config_test = change.name.split(" ")
            for job in failing:
                name = [job.tree, job.arch, job.config, job.test]
                if name == tree_arch_config_test and not job.failing_findings():
                    out.append(Subject(job, None, "new failure"))
                    break
    return out


def _series(job: Job) -> list[dict[str, Any]]:
    series = (job.build.get("inputs") or {}).get("series") or {}
    return [p for p in series.get("patches") or [] if isinstance(p, dict)]


def patch_for(patches: list[dict[str, Any]], guilty_file: str | None) -> dict[str, Any] | None:
    """The patch that touches the guilty file (the last such), else the series' last one."""
    if not patches:
        return None
    if guilty_file:
        touching = [p for p in patches if guilty_file in (p.get("files") or [])]
        if touching:
            return touching[-1]
    return patches[-1]


def _fail_runs(run: Run, job: Job, title: str) -> str:
    """fail:runs of the title among the job's repeats in this run."""
    same = [j for j in run.jobs if j.key == job.key and j.status in (Status.PASS, Status.FAIL)]
    hits = sum(1 for j in same if any(f.get("title") == title for f in j.failing_findings()))
    if not any(j.failing_findings() for j in same):
        hits = sum(1 for j in same if j.status is Status.FAIL)
    return f"{hits}:{len(same)}"


def _link(base_url: str | None, run: Run, job: Job) -> str | None:
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/{run.id}/{HTML}#job-{job.name}"


def body(
    run: Run,
    s: Subject,
    patch: dict[str, Any] | None,
    identity: Identity,
    base_url: str | None = None,
    history: str | None = None,
) -> str:
    job, f = s.job, s.finding or {}
    inputs = job.build.get("inputs") or {}
    out: list[str] = ["Hello,", ""]
    if patch:
        what = f'"{patch.get("subject")}" (patch {patch.get("index")}/{patch.get("total")})'
        out += wrap(f"kto, the kernel test orchestrator, found a problem while testing {what}:")
    else:
        out += wrap(f"kto, the kernel test orchestrator, found a problem in {job.tree}:")
    out.append("")
    out += field("tree", f"{job.tree} ({inputs.get('describe') or 'unknown version'})")
    out += field("commit", inputs.get("base_commit") or job.commit or "unknown")
    head = inputs.get("head_commit")
    if head and head != inputs.get("base_commit"):
        out += field("head", f"{head} (with the series)")
    accel = (job.record.get("accel") or {}).get("accel")
    out += field("arch", f"{job.arch} ({accel})" if accel else job.arch)
    out += field("config", job.config)
    out += field("test", job.test)
    out += field("result", f"{job.status}: {s.title}")
    out += field("fail:runs", history or f"{_fail_runs(run, job, s.title)} (this run)")
    if f:
        lines = f"console lines {f.get('first_line')}-{f.get('last_line')}"
        out += field("finding", f"{f.get('kind')}, {lines} of {job.name}/console.log")
        if where := decoded.guilty_summary(f):
            out += field("guilty", where)
    out.append("")
    if f:
        if decoded.is_decoded(f):
            out += wrap("The report, its frames decoded with the kernel's own vmlinux:")
            text = decoded.decoded_text(f)
        else:
            out += wrap("The report:")
            text = str(f.get("report") or "")
        out.append("")
        out += [verbatim(line) for line in text.rstrip("\n").split("\n")]
        out.append("")
        for note in decoded.notes(f):
            out += wrap(f"({note})")
        if decoded.notes(f):
            out.append("")
    elif tail := job.console_tail(30):
        out += wrap("The end of the console:")
        out.append("")
        out += [verbatim(line) for line in tail.split("\n")]
        out.append("")
    commands = [c for c in (kto_command(job.record.get("job") or {}),) if c]
    if build_cmd := job.build.get("reproducer"):
        commands.append(str(build_cmd))
    if commands:
        out += wrap("To reproduce it with kto:")
        out.append("")
        out += [verbatim(c) for c in commands]
        out.append("")
    if link := _link(base_url, run, job):
        out += field("results", link)
    else:
        out += wrap(f"Results: run {run.id}, job {job.name}.")
    out.append("")
    out += wrap("If you fix the issue, kindly add these tags to the commit:")
    out.append("")
    out.append(f"Reported-by: kto <{identity.email or 'kto@localhost'}>")
    if link:
        out.append(f"Closes: {link}")
    return finish(out)


def compose(
    run: Run,
    s: Subject,
    identity: Identity,
    *,
    to_author: bool = False,
    base_url: str | None = None,
    history: str | None = None,
) -> EmailMessage:
    f = s.finding or {}
    guilty = (decoded.symbolized(f).get("guilty") or {}).get("file")
    patches = _series(s.job)
    patch = patch_for(patches, guilty)
    digest = hashlib.sha256(f"{run.id}/{s.job.name}/{s.title}".encode()).hexdigest()[:16]
    msg = new_message(identity, f"{run.id}/{s.job.name}/{s.title}")
    msg.replace_header("Message-ID", f"<kto.{run.id}.{digest}@{identity.domain}>")
    to = patch.get("author") if patch and to_author else identity.address
    if to:
        msg["To"] = to
    people, lists = decoded.recipients(f)
    cc = [a for a in dict.fromkeys(people + lists) if a != to]
    if cc:
        msg["Cc"] = ", ".join(cc)
    if patch:
        msg["Subject"] = f"Re: {patch.get('subject')}"
        parent = msgid(patch.get("message_id"))
        root = msgid(patches[0].get("message_id"))
        if parent:
            msg["In-Reply-To"] = parent
            msg["References"] = " ".join(dict.fromkeys(r for r in (root, parent) if r))
    else:
        msg["Subject"] = f"[kto] {s.title} ({s.job.tree}, {s.job.arch})"
    text = body(run, s, patch, identity, base_url, history)
    set_body(msg, text)
    return msg


def write_mails(
    run: Run,
    comparison: Comparison,
    identity: Identity,
    *,
    to_author: bool = False,
    base_url: str | None = None,
    history: dict[tuple[str, str], str] | None = None,
) -> list[Path]:
    """One .eml per subject into <run>/mail/ (each written atomically); their paths.

    history: (job name, title) -> fail:runs text across earlier runs, where known.
    """
    mail_dir = run.path / MAIL_DIR
    for old in mail_dir.glob("[0-9][0-9]-*.eml") if mail_dir.is_dir() else ():
        old.unlink()  # the previous --mail's messages only (the bot's mails stay)
    paths = []
    for n, s in enumerate(subjects(run, comparison), 1):
        hist = (history or {}).get((s.job.name, s.title))
        msg = compose(run, s, identity, to_author=to_author, base_url=base_url, history=hist)
        path = mail_dir / f"{n:02d}-{slug(s.title)}.eml"
        atomic.write_bytes(path, msg.as_bytes())
        paths.append(path)
    return paths
