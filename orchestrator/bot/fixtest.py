"""A proposed fix tested against a bug: `kto test BUG --patches FIX` (syzbot's `#syz test`).

The bug's own job is run again, at the same commit, with the fix applied, as many times as
the bug's measured rate says it would have shown by now: the smallest n with
1 - E[(1 - p)^n] >= confidence, p's uncertainty given the chosen cell's fail:runs in the
store integrated out (bugs/triage.py Rate.chance_seen: 3:3 needs 3 runs for 95 %, not the
point estimate's 1, which claimed 100 % after one clean run; 3:10 needs 11, 30:100 9). The
control below guards against a rate that was luck. The first run with the bug ends it:
present. After n clean runs the same job runs without the fix until the bug shows, at most
n times: the control says the bug still reproduces at this commit here, so the clean runs
mean something. The verdicts:

- gone: 0 of n with the fix, and the control reproduced;
- present: a run with the fix showed the bug;
- inconclusive: the control never showed it (the commit, the host or luck: cannot tell),
  or other findings took too many runs to say anything about this one;
- error: infrastructure (ERROR verdicts left too few judged runs), or the fix does not
  apply or build (its own message).

"Shows the bug" is decided by bisect's Target.judge on the store's own titles: the job's
findings' normalised titles (and the parser's alternative titles) among the bug's titles
(primary, together, alt, its dups'), or the verdict title of a FAIL without findings.

Every run is a JobSpec run by run_job in one run directory (`test-bug<N>`), closed by
finish_run (reports, and the store sees the runs) also after Ctrl-C or a crash; the result
is recorded on the bug (bugs/outcomes.py: save_fix_test, with an event) and optionally
written as a reply to the fix's mail.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import atomic, progress
from orchestrator.bisect.driver import Target
from orchestrator.bisect.search import Outcome
from orchestrator.bugs import query
from orchestrator.bugs.outcomes import FixTest, mail_dir, save_fix_test
from orchestrator.bugs.record import write_dashboard
from orchestrator.bugs.store import Store
from orchestrator.bugs.triage import Rate
from orchestrator.errors import UserError
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import JobResult, run_job
from orchestrator.parser.titles import normalise, sanitise
from orchestrator.records.layout import STACKED_SERIES
from orchestrator.records.model import load_job
from orchestrator.records.reproduce import kto_command
from orchestrator.records.runrecord import new_run_dir
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status
from orchestrator.results import mailtext
from orchestrator.results.mailtext import (
    Identity,
    finish,
    msgid,
    new_message,
    set_body,
    verbatim,
    wrap,
)
from orchestrator.results.reports import finish_run

if TYPE_CHECKING:
    from orchestrator.build.patches import Patch

STATE = "fixtest.json"  # the run dir's record of what ran, kept after every run
INFRA_IN_A_ROW = 3  # ERROR verdicts in a row that end a phase: the host, not bad luck


@dataclass(frozen=True)
class FixInfo:
    """The fix as its mails say it: for the reply's threading and addressee."""

    path: str  # absolute: the reproducer names it exactly
    subject: str | None = None  # the last patch's
    message_id: str | None = None
    author: str | None = None
    root_id: str | None = None  # the first patch's Message-Id (the thread's root)
    count: int = 0
    digest: str = "none"  # the series' hash over its diffs: the fix runs' cell


@dataclass(frozen=True)
class Subject:
    """What is run again: the bug's newest head incident in one cell, as a JobSpec."""

    bug: query.BugRow
    cell: str
    rate: Rate  # the bug's fail:runs in that cell
    commit: str
    spec: JobSpec  # the incident's spec at `commit`, no series
    job_dir: str  # the incident's job, for the record
    labels: dict[str, Any]  # the incident's cell as job.json names it (tree, series, ...)
    matrix_cell: bool  # the incident's job.json had those labels (a matrix job)
    titles: tuple[str, ...]  # the bug's normalised titles


@dataclass
class Phase:
    """One side of the test: with the fix or without it (the control)."""

    name: str  # "fix" | "control"
    wanted: int
    fails: int = 0
    runs: int = 0  # runs that judged this bug: clean or showing it
    infra: int = 0
    other: list[str] = field(default_factory=list)  # other findings: no vote either way
    stopped: str = ""  # why the phase ended without its runs (MISS, SKIP, errors)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def done(self) -> bool:
        return bool(self.fails or self.stopped or self.runs >= self.wanted)


def runs_needed(rate: Rate, confidence: float, max_runs: int) -> int:
    """The fewest runs with the fix after which, had it not fixed the bug, the bug would
    have shown with `confidence` (Rate.chance_seen: the rate's uncertainty integrated
    out), at most max_runs (a bug never seen gets the whole budget)."""
    if rate.fails <= 0:
        return max_runs
    return rate.runs_to_clear(confidence, max_runs)


def confidence_of(rate: Rate, n: int) -> float:
    """The chance that n runs of a bug with this fail:runs would have shown it."""
    return rate.chance_seen(n)


def pct(x: float) -> str:
    """A share as kto's text shows one: "30 %"; never 100 % for a chance below 1."""
    v = x * 100
    text = f"{v:.0f}"
    if text == "100" and x < 1:
        text = f"{math.floor(v * 10) / 10:.1f}"
    return f"{text} %"


# -- the input ----------------------------------------------------------------------------


def _read_patches(patches: str) -> tuple[Path, list[Patch]]:
    from orchestrator.build.patches import load_dir, load_mail

    path = Path(patches).expanduser()
    if not path.exists():
        raise UserError(
            f"--patches {patches}: no such file or directory",
            hint="give the fix as an mbox (`b4 am -o- MSGID`), a .patch file or a directory "
            "of patches",
        )
    if path.is_dir():
        return path, load_dir(path)
    with tempfile.TemporaryDirectory(prefix="kto-fix-") as tmp:
        return path, load_mail(path, Path(tmp))


def load_fix(patches: str) -> FixInfo:
    """The fix as a series: an mbox or a patch file, or a directory of patches. Parsed
    here, before any run, so a path that holds no patch is bad input (exit 2)."""
    return fix_info(*_read_patches(patches))


def fix_info(path: Path, found: list[Patch]) -> FixInfo:
    from orchestrator.build.patches import Series

    series = Series(str(path.resolve()), "dir" if path.is_dir() else "mbox", found)
    last, first = found[-1], found[0]
    return FixInfo(
        path=str(path.resolve()),
        subject=last.subject or None,
        message_id=last.message_id,
        author=last.author or None,
        root_id=first.message_id,
        count=len(found),
        digest=series.hash,
    )


def stacked(spec: JobSpec, extra: list[Patch]) -> list[Patch]:
    """A cell that tests a series gets the fix on top of it: its patches, then the fix's.
    Read before any run, so a series that is gone is bad input naming the cell's series."""
    from orchestrator.build.patches import load_series
    from orchestrator.build.trees import resolve_tree

    assert spec.patches
    try:
        if Path(spec.patches).expanduser().exists() or ".." not in spec.patches:
            _, own = _read_patches(spec.patches)  # an mbox or a directory, as the fix is
        else:  # a git range of the cell's tree
            own = load_series(spec.patches, resolve_tree(plan_job(spec).tree)).patches
    except UserError as exc:
        raise UserError(
            f"the cell's own series {spec.patches} (the fix goes on top of it): {exc}",
            hint="kto test needs the series the bug's job built; restore it, or test the "
            "fix in another of the bug's cells (--cell)",
        ) from exc
    mangled = [p for p in [*own, *extra] if p.mangled]
    if mangled:
        # A patch directory keeps no record of it, and git am would need
        # --ignore-whitespace for it: the stacked series would not apply.
        raise UserError(
            f'"{mangled[0].subject}" was recovered from a {mangled[0].mangled}; it cannot '
            "be stacked on the cell's series",
            hint="get the original patch (`b4 am MSGID`) and give that to --patches",
        )
    return [*own, *extra]


def write_series(patches: list[Patch], where: Path) -> str:
    """Patches as one patch directory (its `series` file keeps the order) at `where`."""
    from orchestrator.build.patches import bare_subject

    where.mkdir(parents=True, exist_ok=True)
    names = []
    for i, p in enumerate(patches, 1):
        name = f"{i:04d}-{mailtext.slug(bare_subject(p.subject) or 'patch')}.patch"
        atomic.write_text(where / name, p.mbox())
        names.append(name)
    atomic.write_text(where / "series", "\n".join(names) + "\n")
    return str(where)


def bug_titles(db: sqlite3.Connection, bug: query.BugRow) -> tuple[str, ...]:
    """Every title that is this bug: its own (primary, together, alt) and its dups'."""
    ids = query.family_ids(db, bug)
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT DISTINCT title FROM titles WHERE bug_id IN ({marks})", ids)
    return tuple(sorted(str(r[0]) for r in rows))


def choose_cell(cells: list[query.Cell], wanted: str | None, bug: int) -> query.Cell:
    """The cell asked for, else where the bug reproduces most: the highest lower bound of
    its rate's interval (3:3 beats 1:1), then the most failures, then the newest."""
    if not cells:
        raise UserError(f"bug #{bug} has no cells: no job ever showed it")
    if wanted is not None:
        for c in cells:
            if c.cell == wanted:
                return c
        known = ", ".join(c.cell for c in cells)
        raise UserError(
            f"--cell {wanted}: bug #{bug} was not seen there", hint=f"its cells: {known}"
        )
    return max(cells, key=lambda c: (c.rate.interval()[0], c.rate.fails, c.last_run))


def subject(store: Store, bug_id: int, cell: str | None) -> Subject:
    """The job to run again: the bug's newest incident at a tree head in the cell whose
    job.json still has a readable JobSpec, at that job's commit."""
    db = store.db
    with store.errors():
        d = query.detail(db, bug_id, limit=1)
        chosen = choose_cell(d.cells, cell, bug_id)
        ids = query.family_ids(db, d.bug)
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            "SELECT DISTINCT j.path, j.git_commit, j.run_id FROM incidents i "
            "JOIN jobs j ON j.id = i.job_id "
            f"WHERE i.bug_id IN ({marks}) AND j.cell = ? AND j.head "
            "ORDER BY j.run_id DESC, j.name DESC",
            (*ids, chosen.cell),
        ).fetchall()
        titles = bug_titles(db, d.bug)
    unreadable = []
    for r in rows:
        job = load_job(Path(r["path"]))
        raw = job.record.get("job")
        if not isinstance(raw, dict):
            unreadable.append(str(r["path"]))
            continue
        spec = JobSpec.from_dict(raw)
        commit = job.commit or r["git_commit"]
        if spec.kernel:
            raise UserError(
                f"bug #{bug_id} in {chosen.cell}: its job booted a given kernel "
                f"({spec.kernel}), there is no tree to apply a fix to"
            )
        if not commit:
            unreadable.append(f"{r['path']} (no commit in its build record)")
            continue
        # Pinned to the incident's commit; `expect` would turn a clean fixed run into a
        # FAIL "expected ... not seen" and the bug into an XFAIL.
        pinned = replace(spec, ref=commit, repeat=0, expect=())
        labels = job.record.get("cell")
        matrix_cell = isinstance(labels, dict)
        if not isinstance(labels, dict):
            labels = {"tree": job.tree, "series": "none", "config": job.config}
            labels.update(arch=job.arch, test=job.test)
        return Subject(
            bug=d.bug,
            cell=chosen.cell,
            rate=chosen.rate,
            commit=commit,
            spec=pinned,
            job_dir=str(r["path"]),
            labels=dict(labels),
            matrix_cell=matrix_cell,
            titles=titles,
        )
    why = f"; unreadable: {', '.join(unreadable)}" if unreadable else ""
    raise UserError(
        f"bug #{bug_id}: no job at a tree head in {chosen.cell} to run again{why}",
        hint="its run directories may have been removed; `kto bugs show` lists its incidents",
    )


# -- judging a run -------------------------------------------------------------------------


def shows_bug(titles: tuple[str, ...], r: JobResult) -> Outcome:
    """Bisect's judgement with the store's titles: the findings are normalised as ingest
    normalises them (with their alternative titles), a FAIL without findings keeps its
    verdict title as ingest keeps it."""
    v = r.verdict
    named: list[dict[str, Any]] = []
    for f in v.findings or []:
        raw = [f.get("title"), *(f.get("alt_titles") or [])]
        for t in (normalise(str(t)) for t in raw if isinstance(t, str)):
            named.append({**f, "title": t})
    title = sanitise(v.title) if v.title else v.title
    as_stored = replace(r, verdict=replace(v, title=title, findings=named))
    return Target(titles=titles).judge(as_stored)


# -- the test -------------------------------------------------------------------------------


def _extra(s: Subject, fix: FixInfo | None) -> dict[str, Any]:
    """job.json's cell: the control is the incident's own cell; the fix runs are a cell of
    their own (the fix as the series), so clean runs of a patched kernel never count as
    quiet runs of the bug's cell."""
    if fix is None:
        # A job of `kto run` has no labels: its cell is named from its build, as before.
        return {"cell": s.labels} if s.matrix_cell else {}
    base = {k: v for k, v in s.labels.items() if k != "id"}  # the matrix's id: not this cell
    own = base.get("series")
    base["series"] = f"{own}+fix-{fix.digest}" if own and own != "none" else f"fix-{fix.digest}"
    return {"cell": base}


def _run_phase(
    run_dir: Path,
    s: Subject,
    ph: Phase,
    spec: JobSpec,
    extra: dict[str, Any],
    save: Callable[[], None],
) -> None:
    side = "with the fix" if ph.name == "fix" else "without the fix"
    in_a_row = 0
    while not ph.done():
        i = len(ph.jobs)
        # Every infrastructure error is one more try, within reason: 3 in a row, or as many
        # as the runs wanted, say the host cannot run this job now.
        if in_a_row >= INFRA_IN_A_ROW or ph.infra >= max(ph.wanted, INFRA_IN_A_ROW):
            ph.stopped = f"{ph.infra} infrastructure errors"
            break
        if len(ph.other) >= ph.wanted:
            ph.stopped = f"{len(ph.other)} runs showed other findings"
            break
        run = replace(spec, repeat=i)
        folder = f"{ph.name}-{spec.arch}-{spec.test_name}-r{i}"
        progress.say(f"test: {side}, run {i + 1} ({ph.runs}/{ph.wanted} judged)")
        result = run_job(run, run_dir / folder, plan=plan_job(run), extra=extra or None)
        v = result.verdict
        o = shows_bug(s.titles, result)
        ph.jobs.append({"folder": folder, "status": str(v.status), "outcome": o.to_dict()})
        if v.status in (Status.MISS, Status.SKIP):
            what = "the fix does not apply or build" if ph.name == "fix" else "no kernel"
            if v.status is Status.SKIP:
                what = "the test cannot run here"
            ph.stopped = f"{what}: {v.reason}"
            word = str(v.status)
        elif o.infra:
            ph.infra += 1
            in_a_row += 1
            word = f"infrastructure error, run again ({v.reason})"
        else:
            in_a_row = 0
            if o.unrelated:
                ph.other.append(str(v.title or v.reason))
                word = f"another finding, not counted ({v.title})"
            else:
                ph.runs += 1
                ph.fails += int(o.bad)
                word = f"the bug ({v.title})" if o.bad else f"clean ({v.status})"
        progress.say(f"test: {side}, run {i + 1}: {word}")
        save()


def verdict_of(fix: Phase, control: Phase, rate: Rate, confidence: float = 0.0) -> tuple[str, str]:
    """The verdict and its sentence. Gone needs the confidence asked for: a rare bug whose
    runs the cap cut short is inconclusive, never a green "gone" at 75 %."""
    n = fix.wanted
    if fix.fails:
        return "present", (
            f"present: the bug showed with the fix in run {len(fix.jobs)} "
            f"({fix.fails} of {fix.runs} judged runs)"
        )
    if fix.stopped:
        if fix.stopped.startswith("the fix does not apply"):
            return "error", f"error: {fix.stopped}"
        if fix.infra:
            return "error", f"error: {fix.stopped}; {fix.runs} of {n} runs judged with the fix"
        return "inconclusive", (
            f"inconclusive: {fix.stopped} with the fix; {fix.runs} of {n} runs judged"
        )
    if control.fails and confidence_of(rate, fix.runs) < confidence:
        return "inconclusive", (
            f"inconclusive: 0 of {fix.runs} runs with the fix, but at about "
            f"{pct(rate.mean)} per run ({rate} before) that is only "
            f"{pct(confidence_of(rate, fix.runs))} confidence, under the "
            f"{pct(confidence)} asked (raise --runs)"
        )
    if control.fails:
        return "gone", (
            f"gone: 0 of {fix.runs} runs; at about {pct(rate.mean)} per run ({rate} before) "
            f"that is {pct(confidence_of(rate, fix.runs))} confidence"
        )
    if control.stopped.endswith("other findings"):
        return "inconclusive", (
            f"inconclusive: 0 of {fix.runs} runs with the fix, but without it "
            f"{control.stopped}: cannot tell"
        )
    if control.stopped:
        return "error", (
            f"error: without the fix, {control.stopped}; 0 of {fix.runs} runs with the fix "
            "cannot be weighed"
        )
    return "inconclusive", (
        f"inconclusive: 0 of {fix.runs} runs with the fix, but the bug did not show without "
        f"it either (0 of {control.runs}): it no longer reproduces here, cannot tell"
    )


def test_fix(
    store: Store,
    bug_id: int,
    patches: str,
    *,
    confidence: float,
    max_runs: int,
    cell: str | None,
    identity: Identity,
    mail: bool,
) -> FixTest:
    """Test FIX against bug BUG_ID (see the module doc); the FixTest recorded on the bug.
    Bad input (an unknown bug or cell, no patch at `patches`) is a UserError before
    anything runs. A cell that tests a series gets the fix on top of that series."""
    if not 0.5 <= confidence < 1:
        raise UserError(f"--confidence {confidence}: not between 0.5 and 1 (say 0.95)")
    if max_runs < 1:
        raise UserError(f"--runs {max_runs}: at least 1")
    s = subject(store, bug_id, cell)
    fix_path, fix_patches = _read_patches(patches)
    fix = fix_info(fix_path, fix_patches)
    # Bad input (an arch or test this kto lacks, a cell's series gone) fails before the run dir.
    plan_job(replace(s.spec, patches=fix.path))
    n = runs_needed(s.rate, confidence, max_runs)
    on_top = stacked(s.spec, fix_patches) if s.spec.patches else None
    run_dir = new_run_dir(f"test-bug{bug_id}", root=store.root)
    if on_top is not None:
        fixed = replace(s.spec, patches=write_series(on_top, run_dir / STACKED_SERIES))
    else:
        fixed = replace(s.spec, patches=fix.path)
    progress.say(
        f"test: bug #{bug_id} {s.bug.title} in {s.cell} at {s.commit[:12]}: {s.rate} runs "
        f"there (about {pct(s.rate.mean)}): {n} run(s) with the fix for "
        f"{pct(confidence_of(s.rate, n))} confidence"
    )
    fx, ctl = Phase("fix", n), Phase("control", n)

    def save() -> None:
        atomic.write_json(
            run_dir / STATE,
            {
                "bug": bug_id,
                "cell": s.cell,
                "commit": s.commit,
                "rate": str(s.rate),
                "p": s.rate.mean,
                "runs": n,
                "fix": asdict(fix),
                "phases": [asdict(fx), asdict(ctl)],
            },
        )

    save()
    t = FixTest(bug_id, run_dir.name, fix.path, "error", 0, 0, 0, 0)
    status, sentence = "interrupted", ""
    try:
        _run_phase(run_dir, s, fx, fixed, _extra(s, fix), save)
        if not (fx.fails or fx.stopped):
            _run_phase(run_dir, s, ctl, s.spec, _extra(s, None), save)
        t.verdict, sentence = verdict_of(fx, ctl, s.rate, confidence)
        status = "finished"
    finally:
        # Ctrl-C or a crash still records what ran: the run's reports and store ingest,
        # and an "error" fix test on the bug with the counts so far.
        t.fails, t.runs, t.control_fails, t.control_runs = fx.fails, fx.runs, ctl.fails, ctl.runs
        if status != "finished":
            sentence = f"error: interrupted after {len(fx.jobs) + len(ctl.jobs)} run(s)"
        if t.verdict == "gone":
            t.confidence = confidence_of(s.rate, fx.runs)
        save()
        try:
            finish_run(run_dir, {}, status)
        finally:
            try:
                # After the reports: the run's loader takes every folder for a job.
                if mail and status == "finished":
                    t.mail = str(write_reply(run_dir, s, fix, t, sentence, identity, fixed))
            finally:
                save_fix_test(store, t)
                write_dashboard(store)  # bugs.html shows the fix test with the bug
                atomic.write_json(run_dir / STATE, {**_state(run_dir), "verdict": sentence})
    progress.say(f"test: {sentence}")
    return t


def sentence_of(store: Store, t: FixTest) -> str:
    """The verdict sentence of a fix test, as its run directory keeps it."""
    return str(_state(store.root / t.run_id).get("verdict") or t.verdict)


def _state(run_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((run_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


# -- the reply ------------------------------------------------------------------------------


def reply_body(s: Subject, fix: FixInfo, t: FixTest, sentence: str, identity: Identity,
               fixed: JobSpec) -> str:  # fmt: skip
    out = ["Hello,", ""]
    what = f'"{fix.subject}"' if fix.subject else fix.path
    out += wrap(f"kto, the kernel test orchestrator, tested {what} against bug #{s.bug.id}, "
                f'"{s.bug.title}":')  # fmt: skip
    out.append("")
    out += wrap(sentence + ".")
    out.append("")
    out += mailtext.field("with fix", f"{t.fails}:{t.runs} (fail:runs)")
    out += mailtext.field("without", f"{t.control_fails}:{t.control_runs} (same cell and commit)")
    out += mailtext.field("bug", f"#{s.bug.id} {s.bug.title}, {s.rate} runs in this cell")
    out += mailtext.field("cell", s.cell)
    out += mailtext.field("commit", s.commit)
    out += mailtext.field("results", f"run {t.run_id}")
    out.append("")
    commands = [c for c in (kto_command(fixed.to_dict()), kto_command(s.spec.to_dict())) if c]
    if commands:
        out += wrap("To reproduce it with kto, with the fix and without it:")
        out.append("")
        out += [verbatim(c) for c in commands]
        out.append("")
    if t.verdict == "gone":
        out += wrap("If you send the fix on, kindly add this tag:")
        out.append("")
        out.append(f"Tested-by: kto <{identity.email or 'kto@localhost'}>")
    return finish(out)


def write_reply(
    run_dir: Path,
    s: Subject,
    fix: FixInfo,
    t: FixTest,
    sentence: str,
    identity: Identity,
    fixed: JobSpec,
) -> Path:
    """The reply to the fix's mail (its last patch), written into <run>/mail/; kto never
    sends it."""
    msg = new_message(identity, f"{t.run_id}/fix-test")
    if fix.author:
        msg["To"] = fix.author
    elif identity.address:
        msg["To"] = identity.address
    parent = msgid(fix.message_id)
    if fix.subject:
        msg["Subject"] = f"Re: {fix.subject}"
    else:
        msg["Subject"] = f"[kto] fix test for #{s.bug.id}: {t.verdict}"
    if parent:
        root = msgid(fix.root_id)
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join(dict.fromkeys(r for r in (root, parent) if r))
    set_body(msg, reply_body(s, fix, t, sentence, identity, fixed))
    path = mail_dir(run_dir) / f"fix-test-bug{s.bug.id}.eml"
    atomic.write_bytes(path, msg.as_bytes())
    return path
