"""The mail to a culprit's author, and the night's digest for the list: written, never sent.

When the bot bisects a NEW bug to a commit, the commit's author gets one RFC 5322 message
in the night's mail folder (0-day and syzbot do the same, but they send theirs; kto leaves
the sending to a person). It answers the patch's own thread when the commit says where the
patch was posted (a lore `Link:` or a `Message-Id:` trailer), is addressed To the author,
Cc the people of the commit's trailers and the maintainers and lists get_maintainer.pl named
for the guilty file, and holds what a developer needs to act without asking: the culprit,
the range, the confidence, fail:runs at the parent and at the culprit per title, the
decoded report, the config, the exact commands that reproduce it, and the tags for a fix.

Everything comes from the records: the bisect run directory (bisect.json, run.json, one job
folder per probe), the bug store, and the commit itself through the one git wrapper. The
text follows results/mailtext.py, and no body line can start the way a patch does, so
`git am`/b4 applied to a reply never take the report for a diff (`mailtext.safe_lines`).
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orchestrator import atomic
from orchestrator.bugs import query
from orchestrator.bugs.outcomes import Bisection, bug_url, extid, mail_dir
from orchestrator.bugs.store import Store
from orchestrator.errors import KtoError, UserError
from orchestrator.git import Git
from orchestrator.records import runrecord
from orchestrator.records.model import Job, load_job
from orchestrator.records.reproduce import kto_command
from orchestrator.records.verdict import Status
from orchestrator.results import decoded
from orchestrator.results.mailtext import (
    Identity,
    field,
    finish,
    msgid,
    new_message,
    set_body,
    verbatim,
    wrap,
)

BISECT_STATE = "bisect.json"  # orchestrator/bisect/driver.py STATE, read as data (evidence)
JUDGED = (Status.PASS, Status.FAIL, Status.XFAIL)
# The people of a commit besides its author, the way the kernel names them.
PEOPLE_TAGS = (
    "Signed-off-by",
    "Reviewed-by",
    "Acked-by",
    "Tested-by",
    "Co-developed-by",
    "Reported-by",
)
_TAG = re.compile(r"^(?P<key>[A-Za-z-]+):\s*(?P<value>.+?)\s*$")
# Where a patch was posted: lore's short form, its /all/ or /<list>/ form, patch.msgid.link.
_LINK = re.compile(
    r"https?://(?:lore\.kernel\.org/(?:r|all|[a-z0-9._-]+)|patch\.msgid\.link)/(?P<id>[^/\s>]+)"
)


@dataclass
class Commit:
    """The culprit as its commit says it."""

    sha: str
    subject: str
    author: str  # "Name <address>"
    trailers: list[tuple[str, str]] = dataclasses.field(
        default_factory=list
    )  # (key, value), in order

    def people(self) -> list[str]:
        """Everyone the trailers name (signers, reviewers, ...), deduplicated by address,
        the author left out: the author is To."""
        own = _address(self.author)
        seen: dict[str, str] = {}
        for key, value in self.trailers:
            if key.lower() not in {t.lower() for t in PEOPLE_TAGS}:
                continue
            for name, addr in email.utils.getaddresses([value]):
                if "@" not in addr or addr.lower() == own:
                    continue
                seen.setdefault(addr.lower(), email.utils.formataddr((name, addr)))
        return list(seen.values())

    def thread(self) -> str | None:
        """The Message-Id of the mail that posted this patch, when the commit says it: a
        Message-Id trailer, else patch.msgid.link, else the last lore link (maintainers'
        tools add the patch's link last; an earlier one is often the report it answers)."""
        lore: list[str] = []
        for key, value in self.trailers:
            if key.lower() == "message-id":
                found = value.strip().strip("<>")
                if "@" in found:
                    return found
            if key.lower() == "link" and (m := _LINK.search(value)):
                ident = unquote(m.group("id"))
                if "@" in ident:
                    if "patch.msgid.link" in m.group(0):
                        return ident
                    lore.append(ident)
        return lore[-1] if lore else None


@dataclass
class Evidence:
    """What the bisect run says about the culprit: its probes at the parent and at the
    culprit, the report to show and the spec that reproduces it."""

    run_dir: Path
    state: dict[str, Any]
    record: dict[str, Any]  # run.json's bisect section
    k: int  # the culprit's index in state["commits"]
    jobs: dict[str, list[tuple[Job, dict[str, Any]]]]  # commit -> [(job, outcome)]

    @property
    def commits(self) -> list[str]:
        return list(self.state["commits"])

    @property
    def culprit(self) -> str:
        return self.commits[self.k]

    @property
    def parent(self) -> str | None:
        return self.commits[self.k - 1] if self.k > 0 else None

    @property
    def targets(self) -> list[str]:
        return list((self.state.get("target") or {}).get("titles") or [])

    def at(self, commit: str | None) -> list[tuple[Job, dict[str, Any]]]:
        return self.jobs.get(commit or "", [])

    def bad_probe(self) -> tuple[Job, dict[str, Any]] | None:
        """A culprit probe that showed the target, and its target finding (the decoded one
        if any run decoded it)."""
        best: tuple[Job, dict[str, Any]] | None = None
        for job, outcome in self.at(self.culprit):
            if not outcome.get("bad"):
                continue
            for f in job.failing_findings():
                if f.get("title") in self.targets or not self.targets:
                    if decoded.is_decoded(f):
                        return job, f
                    best = best or (job, f)
        return best

    def spec_job(self) -> Job | None:
        """A culprit probe whose job.json holds its JobSpec (any: they share it)."""
        for job, _ in self.at(self.culprit):
            if job.record.get("job"):
                return job
        return None

    def rate(self) -> tuple[int, int]:
        """(showed the target, gave a verdict) over every run at the culprit and after."""
        bad = runs = 0
        for commit in self.commits[self.k :]:
            for _, o in self.at(commit):
                if not (o.get("skip") or o.get("unrelated") or o.get("infra")):
                    runs += 1
                    bad += int(bool(o.get("bad")))
        return bad, runs


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _address(author: str) -> str:
    return email.utils.parseaddr(author)[1].lower()


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(doc, dict):
        raise UserError(f"{path}: not a JSON object")
    return doc


def evidence(store: Store, b: Bisection) -> Evidence:
    """The bisect run of `b`, read back; a UserError when there is no culprit to tell."""
    if b.kind != "culprit" or b.status != "found" or not b.commit:
        raise UserError(
            f"bug #{b.bug_id}: bisection {b.run_id} found no culprit (kind {b.kind}, "
            f"status {b.status}): there is nobody to write to",
            hint="only a found culprit is mailed; `kto bugs show` lists the bisections",
        )
    run_dir = store.root / b.run_id
    if not (run_dir / BISECT_STATE).is_file():
        raise UserError(
            f"bug #{b.bug_id}: {run_dir} holds no {BISECT_STATE}: the bisect run is gone",
            hint="a culprit mail is written from the bisect run's own records",
        )
    # bisect.json is read as data, not through bisect.driver.State: the driver's fields
    # may grow, and this mail needs only the commits, the target, the runs and the tree.
    state = _read(run_dir / BISECT_STATE)
    commits = [str(c) for c in state.get("commits") or []]
    hits = [i for i, c in enumerate(commits) if c.startswith(b.commit) or b.commit.startswith(c)]
    if not hits:
        raise UserError(f"bug #{b.bug_id}: {b.commit[:12]} is not in {run_dir}/{BISECT_STATE}")
    record: dict[str, Any] = dict(runrecord.read(run_dir))
    jobs: dict[str, list[tuple[Job, dict[str, Any]]]] = {}
    for r in state.get("runs") or []:
        folder = run_dir / str(r.get("folder"))
        if folder.is_dir():
            jobs.setdefault(str(r.get("commit")), []).append((load_job(folder), r["outcome"]))
    return Evidence(run_dir, state, record.get("bisect") or {}, hits[0], jobs)


def read_commit(ev: Evidence, b: Bisection) -> Commit:
    """The culprit's author, subject and trailers from the tree itself; from the bisect's
    own record when the tree is gone (run.json keeps the Link and Message-Id lines)."""
    from orchestrator.build.trees import resolve_tree

    sha = ev.culprit
    try:
        repo = resolve_tree(str(ev.state.get("tree"))).repo
        out = Git(repo).out("log", "-1", "--format=%an%n%ae%n%s%n%(trailers:only,unfold)", sha)
        name, addr, subject, *rest = out.split("\n")
        # quoted as a header needs it: "Doe, John" is one name, not two addresses
        author = email.utils.formataddr((name, addr))
        trailers = []
        for line in rest:
            if m := _TAG.match(line):
                trailers.append((m.group("key"), m.group("value")))
        return Commit(sha, subject, author, trailers)
    except (KtoError, ValueError):
        info = ev.record.get("culprit") or {}
        kept = []
        for line in info.get("trailers") or []:
            if m := _TAG.match(str(line)):
                kept.append((m.group("key"), m.group("value")))
        author = str(info.get("author") or b.author or "")
        return Commit(sha, str(info.get("subject") or b.subject or ""), author, kept)


def _titles_of(job: Job) -> set[str]:
    titles = {str(f.get("title")) for f in job.failing_findings()}
    if not titles and job.status is Status.FAIL and job.title:
        titles.add(job.title)  # a test's own failure, a hang: named by its verdict
    return titles


def fail_runs_table(ev: Evidence) -> list[str]:
    """fail:runs per title at the culprit's parent and at the culprit: the target titles
    first, then every other title either of them showed."""
    parent, culprit = ev.at(ev.parent), ev.at(ev.culprit)
    judged = {
        c: [j for j, _ in jobs if j.status in JUDGED]
        for c, jobs in (("parent", parent), ("culprit", culprit))
    }
    seen: list[str] = list(ev.targets)
    for job in judged["parent"] + judged["culprit"]:
        seen += sorted(t for t in _titles_of(job) if t not in seen)

    def rate(which: str, title: str) -> str:
        jobs = judged[which]
        return f"{sum(title in _titles_of(j) for j in jobs)}:{len(jobs)}"

    head = f"{'parent':<14}{'culprit':<14}title"
    shas = f"{(ev.parent or '(none)')[:12]:<14}{ev.culprit[:12]:<14}"
    rows = [f"{rate('parent', t):<14}{rate('culprit', t):<14}{t}" for t in seen]
    return [verbatim(line.rstrip()) for line in (head, shas, *rows)]


def _fragments(job: Job) -> list[str]:
    """Each fragment of the probe's build with its lines, read from the file the build
    used (when it still holds what was built: the sha256 says)."""
    import hashlib

    out: list[str] = []
    for frag in (job.build.get("inputs") or {}).get("fragments") or []:
        name, path = str(frag.get("name")), Path(str(frag.get("path") or ""))
        try:
            data = path.read_bytes()
        except OSError:
            out += wrap(f"{name}: {path} is gone (sha256 {frag.get('sha256')})")
            continue
        if frag.get("sha256") and hashlib.sha256(data).hexdigest() != frag.get("sha256"):
            out += wrap(f"{name}: {path} changed since the build (sha256 {frag.get('sha256')})")
            continue
        out.append(verbatim(f"# {name}.config"))
        out += [verbatim(line) for line in data.decode(errors="replace").splitlines()]
    return out


def bisect_command(ev: Evidence) -> str | None:
    """`kto bisect` with the same probe, range and target, from the probe's `kto run`."""
    base = dict(ev.state.get("base") or {})
    base.pop("ref", None)
    line = kto_command(base)
    if not line or " -- " in line:
        return None
    argv = shlex.split(line)
    if argv[:2] != ["kto", "run"]:
        return None  # a given kernel has no commits to bisect
    out = ["kto", "bisect"]
    args = iter(argv[2:])
    for arg in args:
        if arg in ("--trusted", "--sandbox", "--no-sandbox", "--i-trust-this-series"):
            continue  # build-trust options of `kto run`, not of `kto bisect`
        if arg in ("--arg", "--patches"):
            next(args, None)  # `kto bisect` takes neither: a series is not bisected
            continue
        out.append(arg)
    out += ["--good", ev.commits[0], "--bad", ev.commits[-1]]
    for title in ev.targets:
        out += ["--title", title]
    return shlex.join(out)


def _best_finding(store: Store, bug: query.Detail) -> dict[str, Any] | None:
    if bug.best is None:
        return None
    path = Path(bug.best.path)
    if path.is_dir() and bug.best.finding is not None:
        findings = load_job(path).findings
        if 0 <= bug.best.finding < len(findings):
            return findings[bug.best.finding]
    if bug.bug.best_report:
        return {"title": bug.best.title, "report": bug.bug.best_report}
    return None


def _confidence(ev: Evidence, b: Bisection) -> float | None:
    conf = b.confidence if b.confidence is not None else ev.record.get("confidence")
    return float(conf) if conf is not None else None


def culprit_body(
    store: Store,
    b: Bisection,
    ev: Evidence,
    commit: Commit,
    bug: query.Detail,
    finding: tuple[Job | None, dict[str, Any]] | None,
    identity: Identity,
    template: str,
) -> str:
    sha12 = commit.sha[:12]
    title = bug.bug.title
    spec_job = ev.spec_job()
    out: list[str] = ["Hello,", ""]
    out += wrap(
        f"kto, the kernel test orchestrator, found a new bug in its nightly tests and "
        f'bisected it to your commit {sha12} ("{commit.subject}"):'
    )
    out.append("")
    out += field("commit", f'{commit.sha} ("{commit.subject}")')
    out += field("author", commit.author)
    out += field("bug", f"{title} (#{b.bug_id}, {extid(store, b.bug_id)})")
    describe = (spec_job.build.get("inputs") or {}).get("describe") if spec_job else None
    tree = str(ev.state.get("tree"))
    out += field("tree", f"{tree} ({describe})" if describe else tree)
    out += field("cell", b.cell)
    span = len(ev.commits) - 1
    tested = len(ev.jobs)
    runs = sum(len(v) for v in ev.jobs.values())
    out += field(
        "range",
        f"{ev.commits[0][:12]}..{ev.commits[-1][:12]} ({_n(span, 'commit')}; "
        f"{_n(runs, 'run')} over {_n(tested, 'commit')})",
    )
    conf = _confidence(ev, b)
    if conf is not None:
        # not field(): its key column is one letter too narrow for "confidence:"
        out.append(f"confidence: {conf:.1%} that this commit is the first bad one")
    bad, judged = ev.rate()
    if judged and bad < judged:
        out += field(
            "flaky",
            f"reproduces in about {round(100 * bad / judged)} % of boots (fail:runs "
            f"{bad}:{judged} from the culprit on)",
        )
    if spec_job is not None:
        out += field("arch", spec_job.arch)
        out += field("test", spec_job.test)
    out.append("")
    out += wrap("fail:runs at the culprit's parent and at the culprit, per title:")
    out.append("")
    out += fail_runs_table(ev)
    out.append("")
    if finding is not None:
        job, f = finding
        where = " (the bug's best report)"
        if job is not None:
            where = f" ({job.name}/console.log, lines {f.get('first_line')}-{f.get('last_line')})"
        if where_guilty := decoded.guilty_summary(f):
            out += field("guilty", where_guilty)
            out.append("")
        if decoded.is_decoded(f):
            out += wrap(f"The report{where}, its frames decoded with the kernel's own vmlinux:")
        else:
            out += wrap(f"The report{where}:")
        out.append("")
        text = decoded.decoded_text(f).rstrip("\n")
        out += [verbatim(line) for line in text.split("\n")]
        out.append("")
        for note in decoded.notes(f):
            out += wrap(f"({note})")
    if spec_job is not None:
        out += wrap(f"The config: {spec_job.config} ({spec_job.arch}), its fragments:")
        out.append("")
        out += _fragments(spec_job) or [verbatim("(no fragment recorded)")]
        out.append("")
    commands = []
    if spec_job is not None and (cmd := kto_command(spec_job.record.get("job") or {})):
        commands.append(("To reproduce it with kto, at the culprit:", cmd))
    if cmd := bisect_command(ev):
        commands.append(("The bisection, to run it again:", cmd))
    for what, cmd in commands:
        out += wrap(what)
        out.append("")
        out.append(verbatim(cmd))
        out.append("")
    out += wrap(f"Results: {ev.run_dir.name} (bisect.json and one folder per run).")
    out.append("")
    out += wrap("If you fix the issue, kindly add these tags to the commit:")
    out.append("")
    out.append(f"Reported-by: {identity.address or 'kto <kto@localhost>'}")
    out.append(f"Closes: {bug_url(store, b.bug_id, template)}")
    out.append(f'Fixes: {sha12} ("{commit.subject}")')
    return finish(out)


def write_culprit_mail(
    store: Store,
    bisection: Bisection,
    out_dir: Path,
    identity: Identity,
    *,
    bug_url_template: str = "",
) -> Path:
    """One .eml to the culprit's author in out_dir (written atomically); its path.

    The caller decides whether the culprit deserves a stranger's time
    (`bisection.mailable`); a bisection without a culprit is a UserError.
    """
    b = bisection
    ev = evidence(store, b)
    commit = read_commit(ev, b)
    with store.errors():
        bug = query.detail(store.db, b.bug_id, limit=0)
    probe = ev.bad_probe()
    finding: tuple[Job | None, dict[str, Any]] | None = probe
    if finding is None and (best := _best_finding(store, bug)) is not None:
        finding = (None, best)
    msg = new_message(identity, f"culprit/{extid(store, b.bug_id)}/{commit.sha}")
    to = commit.author
    msg["To"] = to
    people, lists = decoded.recipients(finding[1]) if finding else ([], [])
    own = _address(to)
    cc: dict[str, str] = {}
    for addr in [*commit.people(), *people, *lists]:
        key = _address(addr) or addr.lower()
        if key and key != own:
            cc.setdefault(key, addr)
    if cc:
        msg["Cc"] = ", ".join(cc.values())
    parent = msgid(commit.thread())
    if parent:
        msg["Subject"] = f"Re: [PATCH] {commit.subject}"
        msg["In-Reply-To"] = parent
        msg["References"] = parent
    else:
        msg["Subject"] = f'[kto] {bug.bug.title} (bisected to {commit.sha[:12]} "{commit.subject}")'
    set_body(msg, culprit_body(store, b, ev, commit, bug, finding, identity, bug_url_template))
    path = out_dir / f"bug-{b.bug_id}-culprit-{commit.sha[:12]}.eml"
    atomic.write_bytes(path, msg.as_bytes())
    return path


# -- the night's digest --------------------------------------------------------------------
def what_was_done(store: Store, b: Bisection) -> str:
    """One line on a bisection, as the digest says it."""
    what = "culprit" if b.kind == "culprit" else "fix"
    if b.status == "found" and b.commit:
        conf = f", {b.confidence:.1%} confidence" if b.confidence is not None else ""
        found = f'{what} {b.commit[:12]} ("{b.subject}") by {b.author}{conf}'
        if b.flags:
            return f"{found}; flagged, not mailed: {'; '.join(b.flags)}"
        if b.kind != "culprit":
            return found
        return f"{found}; mailed: {Path(b.mail).name}" if b.mail else f"{found}; no mail written"
    said = _run_note(store, b)
    if b.status in ("running", "interrupted", "budget"):
        left = f": {said}" if said else f" (resumes next night: {b.run_id})"
        return f"{what} bisect cut short by the budget{left}"
    word = "no culprit" if b.status == "not-found" else "bisect refused"
    return f"{what} bisect: {word}" + (f": {said}" if said else f" ({b.run_id})")


def _run_note(store: Store, b: Bisection) -> str:
    """Why a bisection ended without a culprit, as its run.json says it."""
    section = runrecord.read(store.root / b.run_id).get("bisect")
    if not isinstance(section, dict):
        return ""
    return str(section.get("reason") or section.get("note") or "")


def write_digest(
    night_dir: Path,
    store: Store,
    bisections: list[Bisection],
    not_bisected: list[tuple[int, str]],
    identity: Identity,
    *,
    bug_url_template: str = "",
) -> Path:
    """The night's NEW bugs and what the bot did about each, to the user's own address:
    night_dir/mail/digest.eml (written atomically); its path."""
    done: dict[int, list[str]] = {}
    for b in bisections:
        done.setdefault(b.bug_id, []).append(what_was_done(store, b))
    for bug_id, reason in not_bisected:
        done.setdefault(bug_id, []).append(f"not bisected: {reason}")
    night = night_dir.name
    n = len(done)
    msg = new_message(identity, f"digest/{night}")
    msg["To"] = identity.address or "kto <kto@localhost>"
    msg["Subject"] = f"[kto] {night}: {n} new bug{'s' if n != 1 else ''}"
    out: list[str] = []
    out += wrap(f"kto's night {night} found {n} new bug{'s' if n != 1 else ''}.")
    for bug_id, lines in done.items():
        with store.errors():
            d = query.detail(store.db, bug_id, limit=0)
        out.append("")
        out += wrap(f"#{bug_id} {d.bug.title}")
        out += field("fail:runs", f"{d.bug.rate} ({d.bug.rate.words()})")
        for c in d.cells:
            out += field("cell", f"{c.cell} {c.rate}")
        for line in lines:
            out += field("bot", line)
        out += field("bug", bug_url(store, bug_id, bug_url_template))
    set_body(msg, finish(out))
    path = mail_dir(night_dir) / "digest.eml"
    atomic.write_bytes(path, msg.as_bytes())
    return path
