"""From a night's NEW bug to its culprit, unattended (0-day's loop, on one machine).

After the matrix has judged a night (and confirmed its NEW failures), each NEW bug whose
cell's tree moved since the last night the cell passed is bisected over
last-good-commit..tonight's commit, on that cell's own job spec, by the same driver
`kto bisect` runs. One bisect per bug (the cell that reproduces it best), all of a night's
bisects within one budget of runs and wall time (configs/bot.yaml, `--bisect-budget`,
`--bisect-minutes`); a bisect the budget cut short resumes the next night. The result is
recorded on the bug (bugs/outcomes.py); a plausible culprit found with enough confidence
gets a mail to its author (bot/culprit_mail.py), every night with NEW bugs a digest.

A bug is not bisected, and the night's summary says why, when: last night's kernel,
booted again tonight, shows it too (an old bug seen for the first time, not a change);
the cell's commit did not move; no earlier night of the cell passed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import progress
from orchestrator.bugs.outcomes import Bisection, bisections, save_bisection
from orchestrator.bugs.record import write_dashboard
from orchestrator.bugs.store import Store, now
from orchestrator.errors import KtoError, UserError
from orchestrator.parser.titles import normalise
from orchestrator.records.spec import JobSpec

if TYPE_CHECKING:
    from orchestrator.bisect.driver import BisectResult
    from orchestrator.matrix.driver import MatrixResult
    from orchestrator.results.mailtext import Identity

UNFINISHED = ("running", "interrupted")
RUN_CAP = 240  # runs one bisect may take over all the nights it goes on (3x kto bisect's)


@dataclass
class Plan:
    """One bug's bisect: where, between which commits, for which titles."""

    bug_id: int
    title: str
    cell: str
    good: str
    bad: str
    spec: JobSpec  # the cell's job spec (ref set per probe)
    titles: tuple[str, ...]  # the finding titles that are this bug, as the jobs print them
    tree: str
    night: str | None = None
    kind: str = "culprit"  # or "fix": good is the newer end, where the bug is gone


@dataclass
class Budget:
    runs: int
    deadline: float  # time.time()

    def left(self) -> int:
        return self.runs if time.time() < self.deadline else 0


@dataclass
class NightBisects:
    """What a night's bot did: bisections run (or resumed) and bugs left alone, with why."""

    done: list[Bisection] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (bug id, why not)
    mails: dict[int, Path] = field(default_factory=dict)  # bisection id -> culprit mail
    digest: Path | None = None


def _family(db: sqlite3.Connection, bug_id: int) -> list[int]:
    rows = db.execute("SELECT id FROM bugs WHERE id = ? OR dup_of = ?", (bug_id, bug_id))
    return [int(r["id"]) for r in rows]


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


def last_good(db: sqlite3.Connection, bug_id: int, cell: str, before: str) -> str | None:
    """The commit of the latest earlier night in which this cell was judged at its tree's
    head without the bug."""
    fam = _family(db, bug_id)
    row = db.execute(
        "SELECT j.git_commit FROM jobs j JOIN runs r ON r.id = j.run_id "
        "WHERE j.cell = ? AND j.judged AND j.head AND r.nightly AND j.run_id < ? "
        "AND j.git_commit IS NOT NULL AND NOT EXISTS (SELECT 1 FROM incidents i "
        f"WHERE i.job_id = j.id AND i.bug_id IN ({_marks(fam)})) "
        "ORDER BY j.run_id DESC LIMIT 1",
        (cell, before, *fam),
    ).fetchone()
    return str(row["git_commit"]) if row else None


def _incident_jobs(
    db: sqlite3.Connection, bug_id: int, run_id: str | None = None
) -> list[sqlite3.Row]:
    """The bug's head incidents of nightly runs (of `run_id` only, if given), with the
    cell's fail count: the best-reproducing cell first, then the newest run."""
    fam = _family(db, bug_id)
    where = "AND j.run_id = ?" if run_id else ""
    args: tuple[Any, ...] = (*fam, run_id) if run_id else tuple(fam)
    return list(
        db.execute(
            "SELECT j.*, i.title AS bug_title, (SELECT COUNT(*) FROM incidents k "
            "JOIN jobs jj ON jj.id = k.job_id WHERE jj.cell = j.cell AND jj.run_id = j.run_id "
            f"AND k.bug_id IN ({_marks(fam)})) AS cell_fails "
            "FROM incidents i JOIN jobs j ON j.id = i.job_id JOIN runs r ON r.id = j.run_id "
            f"WHERE i.bug_id IN ({_marks(fam)}) AND j.head AND r.nightly {where} "
            "ORDER BY j.run_id DESC, cell_fails DESC, j.arch",
            (*fam, *args),
        )
    )


def _titles_of(job_dir: Path, bug_titles: set[str]) -> tuple[str, ...]:
    """The job's own finding titles that normalise to one of the bug's titles."""
    from orchestrator.records.model import load_job

    job = load_job(job_dir)
    raw = [str(f.get("title")) for f in job.failing_findings()]
    hits = tuple(dict.fromkeys(t for t in raw if normalise(t) in bug_titles or t in bug_titles))
    if not hits and job.title in bug_titles:
        hits = (str(job.title),)
    return hits


def _bug_titles(db: sqlite3.Connection, bug_id: int) -> set[str]:
    fam = _family(db, bug_id)
    rows = db.execute(f"SELECT title FROM titles WHERE bug_id IN ({_marks(fam)})", fam)
    return {str(r["title"]) for r in rows}


def plan_for_bug(store: Store, bug_id: int, night: str | None = None) -> Plan:
    """The bisect of one bug: its best cell in `night` (default: its latest night), from the
    last night that cell passed to the commit it failed at. UserError when there is none."""
    plan, first_run = _latest(store, bug_id, night)
    good = last_good(store.db, bug_id, plan.cell, first_run)
    if not good:
        raise UserError(
            f"bug #{bug_id}: no earlier night of {plan.cell} passed: no good commit to start from",
            hint="give one by hand: kto bisect --good COMMIT --bad " + (plan.bad[:12] or "COMMIT"),
        )
    if good == plan.bad:
        raise UserError(
            f"bug #{bug_id}: {plan.cell} did not move ({plan.bad[:12]} passed before): not a "
            "regression of a change to bisect (an old bug seen now, or a flaky one)"
        )
    return replace(plan, good=good)


def _latest(store: Store, bug_id: int, night: str | None) -> tuple[Plan, str]:
    """The bug's latest night (or `night`) in its best cell: the commit it showed at, the
    cell's spec and the titles as its job printed them (good still unknown); and the run
    it was first seen in."""
    from orchestrator.bugs.query import get
    from orchestrator.records.model import load_job

    db = store.db
    bug = get(db, bug_id)
    rows = _incident_jobs(db, bug_id, night)
    if not rows:
        raise UserError(
            f"bug #{bug_id} has no incident in a nightly run at a tree's head"
            + (f" in {night}" if night else ""),
            hint="kto bisect --good A --bad B bisects any range by hand",
        )
    latest = rows[0]["run_id"]
    best = next(r for r in rows if r["run_id"] == latest)
    job = load_job(Path(best["path"]))
    spec = JobSpec.from_dict(dict(job.record.get("job") or {}))
    titles = _titles_of(Path(best["path"]), _bug_titles(db, bug_id)) or (str(best["bug_title"]),)
    plan = Plan(
        bug_id=bug_id,
        title=bug.title,
        cell=str(best["cell"]),
        good="",
        bad=str(best["git_commit"] or ""),
        spec=replace(spec, repeat=0),
        titles=titles,
        tree=str(best["tree"]),
        night=night,
    )
    return plan, str(bug.first_run or latest)


def plan_fix_for_bug(store: Store, bug_id: int) -> Plan:
    """The fix bisection of a bug that stopped showing: in its best cell, from the last
    night it showed (bad, the older end) to the latest night that cell passed after it."""
    db = store.db
    # Its latest incident is the older end; no passing night before the bug is needed.
    plan, _first = _latest(store, bug_id, None)
    fam = _family(db, bug_id)
    row = db.execute(
        "SELECT j.git_commit FROM jobs j JOIN runs r ON r.id = j.run_id "
        "WHERE j.cell = ? AND j.judged AND j.head AND r.nightly AND j.git_commit IS NOT NULL "
        "AND j.run_id > (SELECT MAX(jj.run_id) FROM incidents i JOIN jobs jj ON jj.id = i.job_id "
        f"WHERE i.bug_id IN ({_marks(fam)}) AND jj.cell = ?) AND NOT EXISTS (SELECT 1 FROM "
        f"incidents k WHERE k.job_id = j.id AND k.bug_id IN ({_marks(fam)})) "
        "ORDER BY j.run_id DESC LIMIT 1",
        (plan.cell, *fam, plan.cell, *fam),
    ).fetchone()
    if not row:
        raise UserError(
            f"bug #{bug_id}: no night of {plan.cell} passed after it last showed: "
            "nothing to bisect a fix in",
            hint="kto bisect --fix --bad OLD --good NEW bisects any range by hand",
        )
    old, new = plan.bad, str(row["git_commit"])
    if old == new:
        raise UserError(
            f"bug #{bug_id}: {plan.cell} passed at the commit it last showed at ({old[:12]}): "
            "a flaky bug gone quiet, not a fix to bisect"
        )
    return replace(plan, good=new, bad=old, kind="fix", night=None)


def _why_not(result: MatrixResult, bug_id: int, cell: str, title: str) -> str | None:
    """A reason the night's evidence says this NEW bug is not a regression of the move."""
    for line in result.classified.new if result.classified else []:
        same = normalise(line.title) == normalise(title) or line.title == title
        if line.cell == cell and same and line.last_kernel and line.last_kernel.fails:
            return (
                f"last night's kernel shows it too ({line.last_kernel} re-run tonight): "
                "an old bug seen now, not a change to bisect"
            )
    return None


def new_bugs(result: MatrixResult) -> list[int]:
    """The night's NEW bugs, once each: first seen tonight, and behind a NEW line of the
    night's classification (a finding the cell expects, XFAIL, is neither a failure nor
    a regression: `make run`'s seeded bug is not bisected)."""
    known, night = result.report.known, result.classified
    if not known or not night:
        return []
    out: list[int] = []
    for line in night.new:
        ref = known.in_cell(line.cell, line.title)
        if ref is not None and ref.new and ref.id not in out:
            out.append(ref.id)
    return out


def bisect_night(
    result: MatrixResult,
    *,
    budget_runs: int,
    budget_minutes: float,
    identity: Identity,
    scheduler: str | None = None,
) -> NightBisects:
    """Bisect the night's NEW bugs (and go on with bisects an earlier budget cut short),
    record each on its bug, write the culprit mails and the night's digest."""
    from orchestrator.bugs.store import open_store

    out = NightBisects()
    budget = Budget(budget_runs, time.time() + budget_minutes * 60)
    night = result.run_dir.name
    with open_store(result.run_dir.parent) as store:
        todo: list[tuple[Plan | Bisection, int]] = []
        for b in _unfinished(store):
            todo.append((b, b.bug_id))
        for bug_id in new_bugs(result):
            if any(b.bug_id == bug_id for b in bisections(store.db, bug_id, "culprit")):
                continue  # one bisect per bug, whatever cell shows it next
            try:
                plan = plan_for_bug(store, bug_id, night)
            except UserError as exc:
                out.skipped.append((bug_id, exc.message.removeprefix(f"bug #{bug_id}: ")))
                continue
            if why := _why_not(result, bug_id, plan.cell, plan.titles[0]):
                out.skipped.append((bug_id, why))
                continue
            todo.append((plan, bug_id))
        for item, bug_id in todo:
            if budget.left() <= 0:
                if isinstance(item, Plan):
                    # Recorded, with no run yet: the next night goes on with it (a NEW bug
                    # is new one night only, and would never be bisected).
                    _record_only(store, item, scheduler)
                out.skipped.append((bug_id, "the night's bisect budget is spent: next night"))
                continue
            try:
                b, _res = run_plan(store, item, budget, scheduler=scheduler)
            except KtoError as exc:
                # One bug's bisect that cannot run (its range gone from the tree, a build
                # host missing) does not take the night's other bugs with it.
                out.skipped.append((bug_id, f"bisect failed: {exc.message}"))
                continue
            out.done.append(b)
            if b.mailable:
                try:
                    out.mails[int(b.id or 0)] = mail_culprit(store, b, result.run_dir, identity)
                except KtoError as exc:
                    out.skipped.append((bug_id, f"culprit found, its mail failed: {exc.message}"))
        if out.done or out.skipped:
            out.digest = _digest(store, result.run_dir, out, identity)
    return out


def _start(
    store: Store, item: Plan, max_runs: int, scheduler: str | None, confidence: float
) -> tuple[Path, Any, Bisection]:
    from orchestrator.bisect import driver

    run_dir, state = driver.start(
        item.tree,
        item.good,
        item.bad,
        item.spec,
        driver.Target(titles=item.titles),
        confidence,
        max_runs,
        scheduler=scheduler,
        fix=item.kind == "fix",
    )
    rec = Bisection(
        bug_id=item.bug_id,
        kind=item.kind,
        run_id=run_dir.name,
        cell=item.cell,
        good=item.good,
        bad=item.bad,
        night=item.night,
        started=now(),
    )
    save_bisection(store, rec)
    return run_dir, state, rec


def _record_only(store: Store, item: Plan, scheduler: str | None) -> None:
    from orchestrator.config.bot import settings

    _run_dir, _state, rec = _start(store, item, 3, scheduler, settings().bisect.confidence)
    rec.status = "interrupted"
    save_bisection(store, rec)


def has_unfinished(results_root: Path) -> bool:
    """A bisect an earlier night's budget cut short (cheap: no store is created)."""
    from orchestrator.bugs.store import db_path, open_store

    if not db_path(results_root).is_file():
        return False
    with open_store(results_root) as store:
        return bool(_unfinished(store))


def _unfinished(store: Store) -> list[Bisection]:
    rows = store.db.execute(
        "SELECT * FROM bisections WHERE kind = 'culprit' AND status IN (?, ?) ORDER BY id",
        UNFINISHED,
    )
    return [Bisection.of(r) for r in rows]


def run_plan(
    store: Store,
    item: Plan | Bisection,
    budget: Budget,
    *,
    scheduler: str | None = None,
    confidence: float | None = None,
    show: bool = False,
) -> tuple[Bisection, BisectResult]:
    """Start a planned bisect (or resume a recorded one) within the budget; the bisection
    as recorded on the bug when it stopped. `show`: print it as `kto bisect` does."""
    from orchestrator.bisect import driver
    from orchestrator.config.bot import settings

    conf = confidence or settings().bisect.confidence
    if isinstance(item, Plan):
        run_dir, state, rec = _start(store, item, max(3, budget.runs), scheduler, conf)
        what = "the fix of " if item.kind == "fix" else ""
        old, new = (item.bad, item.good) if item.kind == "fix" else (item.good, item.bad)
        progress.say(
            f"bot: bisecting {what}bug #{item.bug_id} {item.title} in {item.cell}: "
            f"{old[:12]}..{new[:12]} ({len(state.commits) - 1} commits)"
        )
    else:
        rec = item
        run_dir = store.root / rec.run_id
        try:
            state = driver.State.load(run_dir)
        except KtoError:
            rec.status, rec.finished = "refused", now()  # its run dir is gone: start none
            save_bisection(store, rec)
            raise
        used = len(state.runs)
        state.max_runs = used + max(3, budget.runs)
        state.scheduler = scheduler  # tonight's executor, not the night it started on
        progress.say(f"bot: resuming the bisect of bug #{rec.bug_id} ({used} runs kept)")
    before = len(state.runs)
    try:
        res = driver.bisect(run_dir, state, deadline=budget.deadline)
        if show:
            driver.print_result(state, res)
    except driver.Busy:
        raise  # another kto has it: nothing about the bisect changed
    except UserError:
        # Bad input (its range gone from the tree): not resumed every night to fail the
        # same way; a person looks (kto bugs show).
        rec.status, rec.finished = "refused", now()
        save_bisection(store, rec)
        raise
    except BaseException:
        # An infrastructure failure (a scheduler gone, the disk full): kept, and the next
        # night goes on with it.
        rec.status = "interrupted"
        save_bisection(store, rec)
        raise
    budget.runs -= len(state.runs) - before
    rec.status = {"budget": "interrupted"}.get(res.status, res.status)
    short = res.status == "found" and res.confidence < conf and len(state.runs) >= state.max_runs
    if short and len(state.runs) < RUN_CAP:
        rec.status = "interrupted"  # the night's runs ran out, not the evidence: go on
    culprit = res.culprit or {}
    rec.commit = culprit.get("sha")
    rec.subject = culprit.get("subject")
    rec.author = culprit.get("author")
    rec.confidence = res.confidence if culprit else None
    rec.flags = list(res.flags)
    if rec.status != "interrupted":
        rec.finished = now()
    save_bisection(store, rec)
    if rec.kind == "fix" and rec.status == "found" and rec.commit and not rec.flags:
        from orchestrator.bugs.actions import fixed_by

        sure = f"{rec.confidence:.2%}" if rec.confidence is not None else "?"
        fixed_by(store, rec.bug_id, rec.commit, "kto bisect --fix", f"fix bisection, {sure}")
    write_dashboard(store)  # bugs.html shows the bisection (and the fix) with the bug
    return rec, res


def mail_culprit(store: Store, b: Bisection, night_dir: Path, identity: Identity) -> Path:
    from orchestrator.bot.culprit_mail import write_culprit_mail
    from orchestrator.bugs.outcomes import mail_dir
    from orchestrator.config.bot import settings

    path = write_culprit_mail(
        store, b, mail_dir(night_dir), identity, bug_url_template=settings().mail.bug_url
    )
    b.mail = str(path)
    save_bisection(store, b)
    write_dashboard(store)
    return path


def _digest(store: Store, night_dir: Path, out: NightBisects, identity: Identity) -> Path:
    from orchestrator.bot.culprit_mail import write_digest
    from orchestrator.config.bot import settings

    return write_digest(
        night_dir,
        store,
        out.done,
        out.skipped,
        identity,
        bug_url_template=settings().mail.bug_url,
    )


def bisect_bug(
    bug_id: int,
    *,
    fix: bool,
    max_runs: int,
    confidence: float,
    identity: Identity,
    scheduler: str | None = None,
) -> int:
    """`kto bisect --bug N [--fix]`: the bot's bisect of one bug, by hand, printed as
    `kto bisect` prints; recorded on the bug, the culprit mailed (into the bisect's own
    run dir) or the bug marked fixed by the fix found. The exit code of `kto bisect`."""
    from orchestrator.bugs.store import open_store

    with open_store() as store:
        plan = plan_fix_for_bug(store, bug_id) if fix else plan_for_bug(store, bug_id)
        rec, res = run_plan(
            store,
            plan,
            Budget(max_runs, float("inf")),
            scheduler=scheduler,
            confidence=confidence,
            show=True,
        )
        if rec.mailable:
            print(f"  mail: {mail_culprit(store, rec, res.run_dir, identity)}")
        elif rec.kind == "culprit" and rec.flags:
            print("  not mailed: the culprit is implausible (suspicious: above)")
        if rec.kind == "fix" and rec.status == "found" and not rec.flags:
            print(f"  bug #{bug_id} marked fixed by {str(rec.commit)[:12]}")
    return res.exit_code


def summary(out: NightBisects) -> list[str]:
    """The night summary's lines about the bot."""
    from orchestrator.bugs.outcomes import describe_bisection

    lines = []
    for b in out.done:
        lines.append(f"  bisect bug #{b.bug_id}: {describe_bisection(b)}")
        if b.flags:
            lines.append("    not mailed: the culprit is implausible (flags above)")
        elif b.status == "interrupted":
            lines.append(f"    budget spent: the next night goes on ({b.run_id})")
        if b.id is not None and (mail := out.mails.get(b.id)):
            lines.append(f"    mail: {mail}")
    for bug_id, why in out.skipped:
        lines.append(f"  bug #{bug_id} not bisected: {why}")
    if out.digest:
        lines.append(f"  digest: {out.digest}")
    return lines
