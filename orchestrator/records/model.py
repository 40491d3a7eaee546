"""A run directory read back as data: Run and Job models, tolerant of half-written runs.

Everything here reads files and writes nothing, so JUnit, KCIDB, HTML and comparisons are
pure functions of a loaded Run. A job killed mid-write (job.json still RUNNING, a missing
findings.json, truncated JSON) still loads: what could not be read is listed in `missing`
and the job gets an honest status (ERROR when it started but never finished, MISS when there
is no record at all), never a silent PASS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.errors import UserError
from orchestrator.paths import results_dir
from orchestrator.records import runrecord
from orchestrator.records import waivers as waivers_mod
from orchestrator.records.layout import CONSOLE, FINDINGS, JOB_RECORD, NOT_JOBS, RUN_RECORD
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.verdict import Status, judge
from orchestrator.records.waivers import Waivers

_RUN_ID = re.compile(r"^(\d{8}-\d{6})-(?P<label>.+)-[0-9a-f]{4}$")


@dataclass
class Job:
    name: str  # the job's folder name in the run dir, unique within a run
    path: Path
    arch: str
    test: str
    tree: str
    config: str
    repeat: int
    status: Status  # effective status, waivers applied
    raw_status: str  # what job.json says (RUNNING for a job killed mid-run)
    reason: str
    title: str | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    waived: list[str] = field(default_factory=list)  # titles of waived findings
    missing: list[str] = field(default_factory=list)  # files absent, truncated or stale
    record: dict[str, Any] = field(default_factory=dict)  # job.json as read ({} if unreadable)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a test is across runs: repeats of it share the key."""
        return (self.tree, self.config, self.arch, self.test)

    @property
    def seconds(self) -> float:
        durations = self.record.get("durations") or {}
        outcome = self.record.get("outcome") or {}
        return float(outcome.get("seconds") or sum(durations.values()) or 0.0)

    @property
    def build(self) -> dict[str, Any]:
        return self.record.get("build") or {}

    @property
    def expected(self) -> tuple[str, ...]:
        """The finding titles the job had to produce (its JobSpec's `expect`)."""
        return tuple((self.record.get("job") or {}).get("expect") or ())

    @property
    def commit(self) -> str | None:
        return (self.build.get("inputs") or {}).get("base_commit")

    @property
    def patchset(self) -> str | None:
        series = (self.build.get("inputs") or {}).get("series") or {}
        return series.get("hash")

    @property
    def qemu_version(self) -> str | None:
        return (self.record.get("qemu") or {}).get("version")

    def has(self, filename: str) -> bool:
        return (self.path / filename).is_file()

    def console_tail(self, lines: int = 60) -> str:
        """The last lines of console.log (bounded read: consoles can be huge)."""
        path = self.path / CONSOLE
        if not path.is_file():
            return ""
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
        # Serial consoles end lines with \r\r\n; a bare \r is not a line of its own.
        text = text.replace("\r", "")
        return "\n".join(text.splitlines()[-lines:])

    def failing_findings(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("title") not in self.waived]


@dataclass
class Run:
    id: str
    path: Path
    record: dict[str, Any]  # run.json ({} if absent or unreadable)
    jobs: list[Job]
    missing: list[str] = field(default_factory=list)  # run-level problems

    @property
    def label(self) -> str:
        if self.record.get("label"):
            return str(self.record["label"])
        m = _RUN_ID.match(self.id)
        return m.group("label") if m else self.id

    def worst(self) -> Status:
        order = [Status.FAIL, Status.ERROR, Status.MISS, Status.XFAIL, Status.PASS, Status.SKIP]
        statuses = {j.status for j in self.jobs}
        return next((s for s in order if s in statuses), Status.MISS)


def _read_json(path: Path, missing: list[str], what: str) -> Any:
    if not path.is_file():
        missing.append(f"{what}: missing")
        return None
    try:
        return json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as exc:
        missing.append(f"{what}: unreadable JSON ({exc.msg} at line {exc.lineno}; truncated?)")
        return None


def config_name(build: dict[str, Any], arch: str) -> str:
    """tinyconfig+net+debug: the base plus fragments, without the arch (it is a column).

    The arch's own base fragment is dropped and per-arch variants (net-arm64) lose their
    suffix, so the same matrix row holds the same config on every arch.
    """
    inputs = build.get("inputs") or {}
    base = inputs.get("kconfig_base")
    if not base:
        return "unknown"
    frags = [str(f.get("name", "?")) for f in inputs.get("fragments") or []]
    names = [base, *(f.removesuffix(f"-{arch}") for f in frags if f != f"base-{arch}")]
    # Dots separate classname parts in JUnit and path parts in KCIDB.
    return "+".join(n.replace(".", "_") for n in names)


def _outcome(d: dict[str, Any]) -> ConsoleOutcome:
    known = ConsoleOutcome.__dataclass_fields__
    return ConsoleOutcome(**{k: v for k, v in d.items() if k in known})


def load_job(path: Path, waivers: Waivers | None = None) -> Job:
    missing: list[str] = []
    rec = _read_json(path / JOB_RECORD, missing, JOB_RECORD)
    rec = rec if isinstance(rec, dict) else {}
    # A skipped test never booted, nor did one whose kernel did not build (MISS): no
    # console, no findings, and nothing is missing.
    booted = rec.get("status") not in ("SKIP", "MISS")
    fdoc = _read_json(path / FINDINGS, missing, FINDINGS) if booted else None
    if booted and not (path / CONSOLE).is_file():
        missing.append(f"{CONSOLE}: missing")
    verdict = rec.get("verdict") or {}
    if isinstance(fdoc, dict) and isinstance(fdoc.get("findings"), list):
        findings = fdoc["findings"]
    else:
        # job.json carries a copy; a job killed before either was written has none.
        findings = list(verdict.get("findings") or [])

    arch, _, test = path.name.partition("-")
    arch = rec.get("arch") or arch
    test = rec.get("test") or test or "unknown"
    build = rec.get("build") or {}
    tree = (build.get("inputs") or {}).get("tree") or "unknown"
    config = config_name(build, arch)
    cell = rec.get("cell")
    if isinstance(cell, dict):
        # A matrix job: the matrix's own names (a series is part of the tree row).
        series = str(cell.get("series") or "none")
        tree = str(cell.get("tree") or tree) + ("" if series == "none" else f"+{series}")
        config = str(cell.get("config") or config)
    raw = str(rec.get("status") or "")

    if not rec:
        status, reason = Status.MISS, "no readable job.json: the job left no record"
    elif raw == "RUNNING" or raw not in Status.__members__:
        status = Status.ERROR
        reason = "the job did not finish (kto was killed or interrupted mid-run)"
        missing.append(f"{JOB_RECORD}: status {raw or 'absent'}, no verdict")
    else:
        status, reason = Status(raw), str(verdict.get("reason") or "")
    title = verdict.get("title")

    job = Job(
        name=path.name,
        path=path,
        arch=arch,
        test=test,
        tree=tree,
        config=config,
        repeat=int(rec.get("repeat") or 0),
        status=status,
        raw_status=raw or "absent",
        reason=reason,
        title=title,
        findings=findings,
        missing=missing,
        record=rec,
    )
    if waivers is not None:
        apply_waivers(job, waivers)
    return job


def apply_waivers(job: Job, waivers: Waivers) -> None:
    """Waived findings stay listed but no longer fail the job; judge() re-decides."""
    job.waived = [f["title"] for f in job.findings if waivers.match(f.get("title", ""), job.key)]
    if not job.waived or job.status is not Status.FAIL or "outcome" not in job.record:
        return
    rest = job.failing_findings()
    if rest and job.findings and rest[0] is not job.findings[0]:
        job.title = rest[0]["title"]
    if rest:
        return
    # Only waived findings: the verdict is what the console says without them (a waived
    # panic that stopped the test is then an ERROR, not a PASS).
    v = judge(_outcome(job.record["outcome"]), [])
    job.status, job.title = v.status, v.title
    job.reason = f"{v.reason} (waived: {'; '.join(job.waived)})"


def load_run(path: Path, waivers: Waivers | None = None) -> Run:
    missing: list[str] = []
    record: dict[str, Any] = {}
    if (path / RUN_RECORD).exists():
        rec = _read_json(path / RUN_RECORD, missing, RUN_RECORD)
        record = rec if isinstance(rec, dict) else {}
    else:
        missing.append(f"{RUN_RECORD}: missing (a run from before run records, or killed)")
    jobs = [
        load_job(p, waivers)
        for p in sorted(path.iterdir())
        if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_JOBS
    ]
    if not jobs:
        missing.append("no job folders: the run was stopped before any job started")
    jobs.sort(key=lambda j: (*j.key, j.repeat, j.name))
    return Run(id=path.name, path=path, record=record, jobs=jobs, missing=missing)


def list_runs(root: Path | None = None) -> list[str]:
    root = root or results_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )


def resolve_run(spec: str, root: Path | None = None) -> Path:
    """A run id, `latest`, or a path to a run directory."""
    root = root or results_dir()
    as_path = Path(spec)
    if as_path.is_dir() and (spec.startswith((".", "/")) or "/" in spec):
        return as_path.resolve()
    candidate = root / spec
    if candidate.is_dir():
        return candidate.resolve()
    runs = list_runs(root)
    # A unique prefix is enough (`kto report 20261123-1253`).
    matches = [r for r in runs if r.startswith(spec)]
    if len(matches) == 1:
        return root / matches[0]
    shown = "\n  ".join(runs[-20:]) or "(none)"
    more = f" (last 20 of {len(runs)})" if len(runs) > 20 else ""
    what = "is ambiguous" if matches else "is not a run"
    raise UserError(
        f"{spec} {what} in {root}; available runs{more}:\n  {shown}",
        hint="give a run id, a unique prefix of one, `latest`, or a path",
    )


def previous_run(run: Run, root: Path | None = None) -> Path | None:
    """The newest earlier run of the same work, for regressions: the same label and, when
    the run says what it was (run.json `compare_key`: the job spec of a `kto run`, the
    matrix of a nightly run), the same key. Two runs of one arch with different trees,
    series or tests are not each other's baseline."""
    root = root or run.path.parent
    key = run.record.get("compare_key")
    for rid in reversed(list_runs(root)):
        if rid >= run.id:
            continue
        m = _RUN_ID.match(rid)
        if not m or m.group("label") != run.label:
            continue
        if key is None:
            return root / rid
        try:
            other = json.loads((root / rid / RUN_RECORD).read_text()).get("compare_key")
        except (OSError, ValueError, AttributeError):
            other = None
        if other == key:
            return root / rid
    return None


# Views of a run that load its jobs (the run's record itself is runrecord's).


def job_seconds(job_dir: Path) -> float:
    """Wall time of a job's guest phase, from its job.json (0 if it never got that far)."""
    durations = load_job(job_dir).record.get("durations") or {}
    try:
        return float(sum(durations.values()))
    except (TypeError, AttributeError):
        return 0.0


def _jobs(run_dir: Path) -> list[Job]:
    return [load_job(p) for p in sorted(run_dir.iterdir()) if (p / JOB_RECORD).is_file()]


def tool_versions(run_dir: Path) -> dict[str, str | None]:
    """Every tool version the run's verdicts depend on: QEMU (one per arch binary), the
    compilers and tuxmake that built its kernels, and kto itself. The nightly compares them
    with last night's, so a toolchain change is named as a suspect next to a NEW failure."""
    jobs = _jobs(run_dir)

    def joined(values: list[Any]) -> str | None:
        return "; ".join(sorted({str(v) for v in values if v})) or None

    builds = [j.record.get("build") or {} for j in jobs]
    return {
        "qemu": joined([j.qemu_version for j in jobs]),
        "compiler": joined([b.get("compiler") for b in builds]),
        "tuxmake": joined([b.get("tuxmake") for b in builds]),
        "kto": __version__,
    }


def interrupted(run_dir: Path) -> bool:
    """Did SIGINT/SIGTERM stop a job? The console catches it and the job ends as an ERROR."""
    for job in _jobs(run_dir):
        killed = (job.record.get("outcome") or {}).get("killed")
        if isinstance(killed, str) and killed.startswith("interrupted"):
            return True
    return False


def job_tests(run_dir: Path) -> list[str]:
    """The tests the run's jobs ran ("command" for `-- CMD`), in job order."""
    return list(dict.fromkeys(j.test for j in _jobs(run_dir) if j.record.get("test")))


def run_waivers(run_dir: Path, base: Waivers) -> Waivers:
    """`base` plus the waivers the run itself carries (a matrix's expected findings, kept in
    run.json so a report regenerated later judges the same way)."""
    own = runrecord.read(run_dir).get("waivers")
    if not own:
        return base
    extra = waivers_mod.parse({"waivers": own}, f"{run_dir / 'run.json'}")
    return Waivers([*base.items, *extra.items], base.source)
