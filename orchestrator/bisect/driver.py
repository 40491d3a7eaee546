"""`kto bisect`: the commit between GOOD and BAD that introduced a finding, flake-aware.

Every probe is a JobSpec at one commit (ref = its sha) run by run_job, so builds are the
build cache's and incremental in the tree's build dir. Each run's verdict becomes an
Outcome for bisect/search.py: the target finding seen (bad), a clean run (good), another
finding (votes neither way), a build that fails (skip), an infrastructure error (neither
way; the search runs it again once, a second one is a skip). The search loop is
search.run_search, the one bench/bisect_sim.py measures: this module only runs the probes
it asks for and keeps them. The state lives in the run dir (bisect.json, one job folder per
run), so `--resume` replays the kept runs and re-runs none of them; the decisive marks also
go to git's own bisect state in kto's worktree of the tree (`git bisect log` works there; a
person can take over with `git bisect` commands).

A fix bisection (`fix`: the first commit where the finding is gone, as syzbot's fix
bisection) is the same search on the range reversed: --bad is the older end, --good the
newer, and commits[] runs newest first, so the model's "first bad commit" k is the last
commit that still shows the target and the fix is the one after it in history, k - 1.

`bisect()` is the entry for any caller (the bot bisects a night's NEW bug with a wall-time
deadline and reads a BisectResult); `run_bisect` is `kto bisect`'s printing of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator import atomic, progress
from orchestrator.bisect.plausible import commit_info, flags
from orchestrator.bisect.search import Evidence, Outcome, Search, run_search, runs_to_clear
from orchestrator.config.bot import settings
from orchestrator.errors import UserError
from orchestrator.git import Git
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import JobResult, load_result, run_job
from orchestrator.records import exits, runrecord
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status
from orchestrator.results.reports import finish_run

STATE = "bisect.json"


class OutOfTime(Exception):
    """The wall-time deadline passed before a probe round could start."""


def _now() -> float:
    # One place the deadline reads the clock (tests move it without sleeping).
    return time.time()


@dataclass
class BisectResult:
    """What a bisection ended with, for callers that do not read its printout.

    status: "found" (a commit is named, `confidence` its posterior mass, below the asked
    confidence when the run budget ran out: `note` says so), "not-found" (the search ran
    and puts the target at good already: nothing in the range), "refused" (the ends do not
    bracket the target: bad never shows it, good does, or an end cannot be tested) or
    "budget" (the wall-time deadline passed; the state is kept and a later call with the
    same run dir goes on, re-running nothing kept)."""

    status: str
    culprit: dict[str, Any] | None  # sha, subject, author, parents, trailers
    confidence: float
    flags: list[str]
    note: str
    exit_code: int
    run_dir: Path
    revert: str = ""  # --verify-revert's one-line verdict
    cost: dict[str, Any] = field(default_factory=dict)
    fix: bool = False  # `culprit` is the commit that fixed the target (a fix bisection)


@dataclass
class Target:
    """What "bad" means: a finding with one of these titles, of this kind, or any failure."""

    titles: tuple[str, ...] = ()
    kind: str | None = None
    any_failure: bool = False

    def describe(self) -> str:
        if self.any_failure:
            return "any failure"
        if self.kind:
            return f"a {self.kind} finding"
        return " or ".join(repr(t) for t in self.titles) or "(the titles seen on BAD)"

    def judge(self, r: JobResult) -> Outcome:
        v = r.verdict
        if v.status is Status.PASS:
            return Outcome()
        if v.status is Status.ERROR:
            return Outcome(infra=True)  # QEMU died, the host failed: nothing about the kernel
        if v.status in (Status.MISS, Status.SKIP):
            return Outcome(skip=True)  # no kernel, or a test that cannot run on it
        findings = v.findings or []
        if self.any_failure:
            return Outcome(bad=True)
        hit = any(
            (self.kind and f.get("kind") == self.kind)
            or f.get("title") in self.titles
            # the same report titled after another function where inlining differs
            or any(t in self.titles for t in f.get("alt_titles") or ())
            for f in findings
        )
        if not findings and v.title in self.titles:
            hit = True  # a test's own failure or a hang, named as the target
        if v.status is Status.XFAIL and not hit:
            # Only what the cell expects (a seeded bug it must catch): a clean run as far as
            # the target goes. As "unrelated" it voted neither way, and a bisect in a cell
            # with expectations could never clear a commit.
            return Outcome()
        return Outcome(bad=bool(hit), unrelated=not hit)


@dataclass
class State:
    tree: str
    commits: list[str]  # [good, ..., bad]: 0 good, n bad
    base: dict[str, Any]  # the JobSpec fields every probe shares (ref set per commit)
    target: dict[str, Any]
    confidence: float
    max_runs: int
    runs: list[dict[str, Any]] = field(default_factory=list)  # {commit, folder, outcome}
    verify_revert: bool = False
    revert_runs: list[dict[str, Any]] = field(default_factory=list)  # {folder, outcome}
    parallel: int = 1  # commits probed at once (the matrix's executor: local pool or Dask)
    scheduler: str | None = None  # a Dask scheduler address for the probes
    steps: int = 0  # search rounds: one run, or one batch of parallel probes
    wall_s: float = 0.0  # time spent bisecting, summed over --resume sessions
    # a fix bisection: commits[] is [good (newer), ..., bad (older)] and the answer is the
    # commit after the last bad one in history (bisect.json of an older kto: a culprit one)
    fix: bool = False

    def save(self, run_dir: Path) -> None:
        atomic.write_json(run_dir / STATE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> State:
        try:
            return cls(**json.loads((run_dir / STATE).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"{run_dir}: not a bisect run ({exc})") from exc


def commit_range(git: Git, good: str, bad: str, fix: bool = False) -> list[str]:
    """[good, ..., bad], every commit the bisection may probe. For a fix bisection good is
    the newer end: bad must be its ancestor, and the list runs newest first."""

    def sha(ref: str) -> str:
        res = git("rev-parse", "--verify", f"{ref}^{{commit}}", check=False)
        if res.returncode != 0:
            raise UserError(f"{ref!r} is not a commit of {git.repo}")
        return res.stdout.strip()

    g, b = sha(good), sha(bad)
    if g == b:
        raise UserError(f"--good and --bad are the same commit ({g[:12]})")
    if fix:
        if git("merge-base", "--is-ancestor", b, g, check=False).returncode != 0:
            raise UserError(
                f"--bad {bad} is not an ancestor of --good {good}",
                hint="a fix bisection needs --bad (the target shows) older than --good (it "
                "is gone) on the same history",
            )
        return commit_range(git, bad, good)[::-1]
    if git("merge-base", "--is-ancestor", g, b, check=False).returncode != 0:
        raise UserError(
            f"--good {good} is not an ancestor of --bad {bad}",
            hint="bisect needs good to be older than bad on the same history (a commit "
            "that fixed the finding: --fix)",
        )
    middle = git.out("rev-list", "--reverse", "--topo-order", "--ancestry-path", f"{g}..{b}")
    return [g, *[c for c in middle.splitlines() if c != b], b]


class Bisect:
    def __init__(self, run_dir: Path, state: State, deadline: float | None = None) -> None:
        self.run_dir = run_dir
        self.state = state
        self.deadline = deadline
        self.search = Search(len(state.commits) - 1)
        self.target = Target(**{**state.target, "titles": tuple(state.target.get("titles", ()))})
        # the kept runs, counted the way run_search counted them when they ran
        for r in state.runs:
            self.search.add(state.commits.index(r["commit"]), Outcome.from_dict(r["outcome"]))

    def spec(self, i: int, repeat: int) -> JobSpec:
        base = JobSpec.from_dict({**self.state.base, "ref": self.state.commits[i]})
        return replace(base, repeat=repeat)

    def _execute(self, picks: list[int]) -> list[tuple[int, str, JobResult]]:
        """One run of each picked commit: here when it is one and no cluster is named,
        else through the matrix's executor (local pool within the host's budget, or the
        Dask cluster: this host may have no toolchain for the arch). Either way each probe
        is a JobSpec built and judged by the same job code, read back the same way."""
        probes = []
        for i in picks:
            commit = self.state.commits[i]
            repeat = sum(1 for r in self.state.runs if r["commit"] == commit)
            probes.append((i, f"{i:03d}-{commit[:12]}-r{repeat}", self.spec(i, repeat)))
        if len(probes) == 1 and not self.state.scheduler:
            i, folder, spec = probes[0]
            run = f"run {spec.repeat + 1}"
            progress.say(f"bisect: commit {i}/{self.search.n} {self.state.commits[i][:12]} {run}")
            return [(i, folder, run_job(spec, self.run_dir / folder, plan=plan_job(spec)))]
        from orchestrator.matrix.driver import execute
        from orchestrator.matrix.jobs import MatrixJob

        shown = ", ".join(f"{i} {self.state.commits[i][:12]}" for i in picks)
        progress.say(f"bisect: {len(picks)} commit(s) at once: {shown}")
        jobs = [MatrixJob(None, s, plan_job(s), f, {"bisect_probe": i}) for i, f, s in probes]
        execute(self.run_dir, jobs, None, self.state.scheduler)
        return [(i, f, load_result(s, self.run_dir / f)) for i, f, s in probes]

    def probe(self, picks: list[int]) -> list[tuple[int, Outcome]]:
        """One round for run_search: run the picked commits (one here, several through the
        matrix's executor), keep each run in bisect.json as soon as it is judged, and say
        what each showed. Retrying an infrastructure error is run_search's decision. Past
        the deadline no round starts: nothing of it is kept, so a resume runs it whole."""
        self._check_deadline()
        self.state.steps += 1
        return [(i, self._judge(i, folder, r)) for i, folder, r in self._execute(picks)]

    def _judge(self, i: int, folder: str, result: JobResult) -> Outcome:
        if not (self.target.titles or self.target.kind or self.target.any_failure):
            # The default target: the titles the bad commit shows.
            titles = tuple(f["title"] for f in result.verdict.findings or [])
            if i == self.search.n and titles:
                self.target = replace(self.target, titles=titles)
                self.state.target["titles"] = list(titles)
        o = self.target.judge(result)
        self.state.runs.append(
            {"commit": self.state.commits[i], "folder": folder, "outcome": o.to_dict()}
        )
        self.state.save(self.run_dir)
        v = result.verdict
        tail = ""
        if o.infra:
            again = any(j == i for j in self.search.pending_retry())
            tail = "; twice in a row: skipped" if again else "; run again once"
        progress.say(
            f"bisect: {self.state.commits[i][:12]} {o.word()} ({v.title or v.reason}){tail}"
        )
        return o

    def _check_deadline(self) -> None:
        if self.deadline is not None and _now() >= self.deadline:
            raise OutOfTime

    def _round_done(self, s: Search) -> None:
        progress.say(f"bisect: confidence {s.best()[1]:.0%}")

    def verify_revert(self, git: Git, k: int) -> str:
        """The culprit reverted on top of BAD, run as many times as the model says a clean
        commit needs: the target must not appear. What it showed, as one line."""
        st = self.state
        culprit, bad = st.commits[k], st.commits[-1]
        series = self.run_dir / "revert"
        if not series.is_dir():
            # Not git.out: stripping would cut a diff's last context line (a lone space).
            diff = git("diff", "--binary", culprit, f"{culprit}^").stdout
            subject = git.out("log", "-1", "--format=%s", culprit).strip()
            series.mkdir()
            atomic.write_text(
                series / "0001-revert.patch",
                f'From: kto bisect <kto@localhost>\nSubject: [PATCH] Revert "{subject}"\n\n'
                f"This reverts commit {culprit} on top of {bad} (kto bisect "
                f"--verify-revert).\n---\n{diff}",
            )
        needed = runs_to_clear(self.search.p(), st.confidence)
        base = JobSpec.from_dict({**st.base, "ref": bad, "patches": str(series)})

        def enough() -> bool:
            outcomes = [Outcome.from_dict(r["outcome"]) for r in st.revert_runs]
            if any(o.skip for o in outcomes):
                return True
            # an infrastructure error says nothing: run again, twice at most
            return sum(o.votes for o in outcomes) >= needed or sum(o.infra for o in outcomes) > 2

        while not enough():
            self._check_deadline()
            r = len(st.revert_runs)
            folder = f"revert-{culprit[:12]}-r{r}"
            progress.say(f"bisect: culprit reverted on bad, run {r + 1}/{needed}")
            spec = replace(base, repeat=r)
            result = run_job(spec, self.run_dir / folder, plan=plan_job(spec))
            o = Outcome(skip=True) if result.verdict.status is Status.MISS else None
            st.revert_runs.append(
                {"folder": folder, "outcome": (o or self.target.judge(result)).to_dict()}
            )
            st.save(self.run_dir)
        outcomes = [Outcome.from_dict(r["outcome"]) for r in st.revert_runs]
        if any(o.skip for o in outcomes):
            return f"the revert of {culprit[:12]} does not apply on {bad[:12]}"
        judged = [o for o in outcomes if o.votes]
        seen = sum(o.bad for o in judged)
        if seen:
            verdict = "NOT confirmed: the target still appears"
        elif len(judged) >= needed:
            verdict = "confirmed: the target is gone"
        else:  # infrastructure errors took the runs
            verdict = f"inconclusive ({len(judged)} verdicts of the {needed} needed)"
        return f"revert on bad {verdict} (fail:runs {seen}:{len(judged)})"

    def go(self) -> tuple[int | None, str]:
        """The culprit (None: refused) and a note on any doubt."""
        st = self.state
        res = run_search(self.search, self.probe, st.confidence, st.max_runs, st.parallel,
                         after=self._round_done)  # fmt: skip
        if res.culprit is None or res.confidence >= st.confidence:
            return res.culprit, res.reason
        low = f"LOW CONFIDENCE: {res.confidence:.0%} after {res.runs} runs (budget spent)"
        return res.culprit, low

    def no_culprit_status(self) -> str:
        """Why the search named nothing: "not-found" when the ends were fine (bad showed
        the target, good did not, both testable) and the model puts the target at good
        already; else "refused"."""
        s, n = self.search, self.search.n
        ends_fine = (
            s.evidence.get(n, Evidence()).bad > 0
            and not s.evidence.get(0, Evidence()).bad
            and not {0, n} & s.skipped
        )
        return "not-found" if ends_fine else "refused"


def _job_record(job_dir: Path) -> dict[str, Any]:
    """A probe's job.json, read the way every driver reads one (records.model)."""
    from orchestrator.records.model import load_job

    return load_job(job_dir).record


def table(state: State) -> list[str]:
    rows: dict[str, Evidence] = {}
    skips: dict[str, int] = {}
    for r in state.runs:
        o = Outcome.from_dict(r["outcome"])
        e = rows.setdefault(r["commit"], Evidence())
        if o.votes:
            e.runs += 1
            e.bad += int(o.bad)
        skips[r["commit"]] = skips.get(r["commit"], 0) + int(not o.votes)
    out = []
    for i, c in enumerate(state.commits):
        if c in rows:
            note = f" (+{skips[c]} without a verdict)" if skips[c] else ""
            out.append(f"  {i:3d} {c[:12]}  fail:runs {rows[c]}{note}")
    return out


def cost(run_dir: Path, state: State) -> dict[str, Any]:
    """What the search spent: rounds, boots, kernels compiled (not from the build cache)
    and their compile time, and wall time (the revert check not included)."""
    boots = compiled = 0
    compile_s = 0.0
    for r in state.runs:
        rec = _job_record(run_dir / r["folder"])
        boots += int(bool((rec.get("durations") or {}).get("guest")))
        built = rec.get("build") or {}
        if built.get("cache_hit") is False:
            compiled += 1
            compile_s += float(built.get("compiled_s") or 0)
    return {
        "steps": state.steps,
        "runs": len(state.runs),
        "boots": boots,
        "compiled": compiled,
        "compile_s": round(compile_s, 1),
        "commits_tested": len({r["commit"] for r in state.runs}),
        "wall_s": round(state.wall_s, 1),
    }


def describe_cost(c: dict[str, Any]) -> str:
    m, sec = divmod(int(c["wall_s"]), 60)
    return (
        f"{c['steps']} steps, {c['runs']} runs ({c['boots']} boots) over "
        f"{c['commits_tested']} commits, {c['compiled']} kernels compiled "
        f"({c['compile_s']:.0f} s), wall {m} min {sec:02d} s"
    )


def mark_git_bisect(git: Git, state: State, culprit: int | None) -> None:
    """Git's own bisect state in kto's worktree, without checking anything out. A fix
    bisection uses the terms broken (old) and fixed (new): git's "bad" must be newer."""
    c = state.commits
    git("bisect", "reset", check=False)
    if state.fix:  # c[0] is the newer end
        seen, gone = "broken", "fixed"
        git("bisect", "start", "--term-old=broken", "--term-new=fixed", "--no-checkout",
            c[0], c[-1], check=False)  # fmt: skip
    else:
        seen, gone = "bad", "good"
        git("bisect", "start", "--no-checkout", c[-1], c[0], check=False)
    for r in state.runs:
        o = Outcome.from_dict(r["outcome"])
        if o.bad:
            git("bisect", seen, r["commit"], check=False)
        elif o.skip:
            git("bisect", "skip", r["commit"], check=False)
    if culprit is not None and culprit > 0:
        git("bisect", gone, c[culprit - 1], check=False)
        git("bisect", seen, c[culprit], check=False)


def _fix_words(note: str) -> str:
    """The search's reasons say "regression"; in a fix bisection the same facts read as
    "not fixed"."""
    return note.replace("not a regression here", "not fixed in this range").replace(
        "than in the range", "than fixed in the range"
    )


class Busy(UserError):
    """Another kto is running this bisect (the night's bot and a `kto bisect` by hand)."""


def bisect(run_dir: Path, state: State, deadline: float | None = None) -> BisectResult:
    """`_bisect` with the run dir to itself (Busy when another kto has it): two processes
    on one bisect.json would each keep their own runs and probe the same commits twice."""
    from contextlib import ExitStack

    from orchestrator.locks import file_lock

    with ExitStack() as stack:
        try:
            stack.enter_context(
                file_lock(run_dir / "bisect.lock", f"bisect run {run_dir.name}", wait=False)
            )
        except UserError as exc:
            raise Busy(exc.message, hint=exc.hint) from None
        return _bisect(run_dir, state, deadline)


def _bisect(run_dir: Path, state: State, deadline: float | None = None) -> BisectResult:
    """Run (or go on with) the bisection in `run_dir` and say what it ended with; run.json
    and bisect.json hold the same. `deadline` (time.time() epoch): no probe round starts
    after it; the state is saved as for an interrupt, run.json's status is "budget", and a
    later call on the same run dir goes on. Nothing is printed on stdout (progress lines go
    to stderr); Ctrl-C saves the state and propagates."""
    from orchestrator.build.trees import resolve_tree, tree_lock

    b = Bisect(run_dir, state, deadline)
    tree = resolve_tree(state.tree)
    git = Git(tree.worktree)
    status = "interrupted"
    k: int | None = None
    note = revert = ""
    info: dict[str, Any] | None = None
    t0 = time.monotonic()
    try:
        k, note = b.go()
        if k is not None:
            # a fix bisection names the commit after the last one that showed the target
            info = commit_info(git, state.commits[k - 1 if state.fix else k])
            if state.verify_revert and not state.fix:
                if len(info["parents"]) > 1:
                    revert = "revert not tried: the culprit is a merge"
                else:
                    revert = b.verify_revert(Git(tree.repo), k)
        status = "finished"
    except OutOfTime:
        status = "budget"
    finally:
        state.wall_s += time.monotonic() - t0
        state.save(run_dir)
        finish_run(run_dir, {}, status)
    spent = cost(run_dir, state)
    runrecord.update(run_dir, bisect_cost=spent)
    no_answer = exits.of_bisect(found=False, doubts=False)
    if status == "budget":
        best, mass = b.search.best()
        note = (
            f"wall-time budget ran out after {len(state.runs)} runs (likeliest so far: "
            f"{state.commits[best][:12]} at {mass:.0%}); go on with --resume {run_dir}"
        )
        doc0 = {"status": "budget", "culprit": None, "note": note, "fix": state.fix}
        runrecord.update(run_dir, bisect=doc0)
        return BisectResult(
            "budget", None, 0.0, [], note, no_answer, run_dir, cost=spent, fix=state.fix
        )
    with tree_lock(tree):
        mark_git_bisect(git, state, k)
    if state.fix:
        note = _fix_words(note)
    if k is None or info is None:
        what = b.no_culprit_status()
        doc0 = {"status": what, "culprit": None, "reason": note, "fix": state.fix}
        runrecord.update(run_dir, bisect=doc0)
        return BisectResult(
            what, None, 0.0, [], note, no_answer, run_dir, cost=spent, fix=state.fix
        )
    conf = b.search.best()[1]
    found = flags(
        git, info, run_dir, state,
        arch=str(state.base.get("arch")), floor=settings().bisect.floor, confidence=conf,
    )  # fmt: skip
    if "NOT confirmed" in revert:
        note = note or revert
    doc: dict[str, Any] = {
        "status": "found", "culprit": info, "confidence": conf, "flags": found, "note": note,
        "fix": state.fix,
    }  # fmt: skip
    if state.verify_revert:
        doc["revert"] = revert
    runrecord.update(run_dir, bisect=doc)
    code = exits.of_bisect(found=True, doubts=bool(note))
    return BisectResult("found", info, conf, found, note, code, run_dir, revert, spent, state.fix)


def run_bisect(run_dir: Path, state: State, deadline: float | None = None) -> int:
    """`kto bisect`: bisect() and its printout; the exit code."""
    return print_result(state, bisect(run_dir, state, deadline))


def print_result(state: State, res: BisectResult) -> int:
    """What a bisection found, as `kto bisect` prints it; its exit code."""
    from orchestrator.build.trees import resolve_tree

    target = Target(**{**state.target, "titles": tuple(state.target.get("titles", ()))})
    print(f"bisect {state.tree}: target {target.describe()}; {len(state.runs)} runs")
    print("\n".join(table(state)))
    print(f"cost: {describe_cost(res.cost)}")
    if res.status == "budget":
        print(f"stopped: {res.note}")
        return res.exit_code
    if res.culprit is None:
        print(f"no culprit: {res.note}")
        return res.exit_code
    info = res.culprit
    first = "first fixed commit" if res.fix else "first bad commit"
    print(f"{first} ({res.confidence:.1%} confidence): {info['sha'][:12]} {info['subject']}")
    print(f"  author: {info['author']}")
    for t in info["trailers"]:
        print(f"  {t}")
    for f in res.flags:
        print(f"  suspicious: {f}")
    if res.note and res.note != res.revert:
        print(f"  {res.note}")
    if res.revert:
        print(f"  {res.revert}")
    print(f"  git bisect log: git -C {resolve_tree(state.tree).worktree} bisect log")
    return res.exit_code


def start(
    tree: str,
    good: str,
    bad: str,
    base: JobSpec,
    target: Target,
    confidence: float,
    max_runs: int,
    verify_revert: bool = False,
    parallel: int = 1,
    scheduler: str | None = None,
    fix: bool = False,
) -> tuple[Path, State]:
    """A new bisect run dir and its state. `fix`: find the commit where the target is gone
    (--bad older, --good newer)."""
    from orchestrator.build.trees import resolve_tree

    if not 0.5 <= confidence < 1:
        raise UserError(f"--confidence {confidence}: between 0.5 and 1 (say 0.95)")
    if max_runs < 3:
        raise UserError(f"--max-runs {max_runs}: at least 3")
    if not 1 <= parallel <= 16:
        raise UserError(f"--parallel {parallel}: between 1 and 16 commits at once")
    if fix and verify_revert:
        raise UserError(
            "--verify-revert does not apply to --fix",
            hint="it reverts a culprit on top of bad; a fix is checked by the runs after it",
        )
    t = resolve_tree(tree)
    commits = commit_range(Git(t.repo), good, bad, fix)
    plan_job(replace(base, ref=commits[-1]))  # bad input fails before any directory
    run_dir = runrecord.new_run_dir(f"bisect-{'fix-' if fix else ''}{base.arch}")
    state = State(
        tree=tree,
        commits=commits,
        base=base.to_dict(),
        target={
            "titles": list(target.titles),
            "kind": target.kind,
            "any_failure": target.any_failure,
        },
        confidence=confidence,
        max_runs=max_runs,
        verify_revert=verify_revert,
        parallel=parallel,
        scheduler=scheduler,
        fix=fix,
    )
    state.save(run_dir)
    runrecord.update(run_dir, compare_key=f"bisect:{base.id}")
    what = "fix bisect" if fix else "bisect"
    progress.say(f"{what}: {len(commits) - 1} commits between {good} and {bad}; {run_dir}")
    return run_dir, state
