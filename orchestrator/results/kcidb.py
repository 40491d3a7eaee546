"""KCIDB v5 JSON (KernelCI's common results database): checkouts, builds, tests, issues,
incidents, from a loaded Run.

IDs are "kto:" plus the run id and the job's name, so two runs never collide; an issue's id
is a hash of its finding title, so the same bug seen on many nights is one KCIDB issue with
one incident per test that showed it. Waived findings still get an incident (marked in misc).

With the bug store (orchestrator/bugs), an issue is a bug: its id hashes the bug's title
("title (2)" for a bug that came back, so a closed bug's issue is never reopened), its
version is the bug's (each triage action bumps it), an invalid bug has no culprit (KCIDB's
"invalid"), and misc carries the bug's number, state, first run and fail:runs. A judged test
in a cell of an open bug that did not show it is an incident with `present: false`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from orchestrator.bugs.known import BugRef, Known
from orchestrator.records.layout import CONSOLE, FINDINGS, JOB_RECORD
from orchestrator.records.model import Job, Run
from orchestrator.records.verdict import Status

ORIGIN = "kto"
VERSION = {"major": 5, "minor": 3}
EXCERPT_LIMIT = 16384  # the schema's maxLength for log_excerpt
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _time(stamp: Any) -> str | None:
    """kto writes %z offsets (+0000); KCIDB wants RFC 3339 (+00:00)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").isoformat()
    except ValueError:
        return None


def _clean(text: str, limit: int = EXCERPT_LIMIT) -> str:
    # No NULs anywhere in KCIDB strings; keep the end of an excerpt (where the failure is).
    text = text.replace("\0", "")
    return text if len(text) <= limit else text[-limit:]


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", text).strip("_") or "unknown"


def _url(base_url: str | None, path: Path, run: Run) -> str:
    if base_url:
        rel = path.relative_to(run.path).as_posix()
        return f"{base_url.rstrip('/')}/{quote(run.id)}/{quote(rel)}"
    return path.resolve().as_uri()


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    # The schema allows a property to be absent, never null.
    return {k: v for k, v in d.items() if v is not None}


def issue_id(title: str) -> str:
    return f"{ORIGIN}:{hashlib.sha256(title.encode()).hexdigest()[:20]}"


def checkout_id(run: Run, job: Job) -> str:
    return f"{ORIGIN}:{run.id}.{_slug(job.tree)}"


def build_id(run: Run, job: Job) -> str:
    return f"{ORIGIN}:{run.id}.{_slug(job.tree)}.{job.arch}.{_slug(job.config)}"


def test_id(run: Run, job: Job) -> str:
    return f"{ORIGIN}:{run.id}.{job.name}"


def _checkout(run: Run, job: Job) -> dict[str, Any]:
    inputs = job.build.get("inputs") or {}
    series = inputs.get("series") or {}
    commit = inputs.get("base_commit")
    return _drop_none(
        {
            "id": checkout_id(run, job),
            "origin": ORIGIN,
            "tree_name": job.tree,
            "git_commit_hash": commit if isinstance(commit, str) and _HEX40.match(commit) else None,
            "git_commit_name": inputs.get("describe"),
            # KCIDB's patchset hash is a sha256 over the patch files; kto's series hash is
            # over normalised diffs, so it goes to misc, and "" only means "no patches".
            "patchset_hash": "" if series.get("hash") == "none" else None,
            "start_time": _time(run.record.get("created")),
            "valid": True if inputs else None,
            "misc": {
                "kto_series_hash": series.get("hash"),
                "series_source": series.get("source"),
                "patches": [p.get("subject") for p in series.get("patches") or []],
                "repo": inputs.get("repo"),
            },
        }
    )


def _build(run: Run, job: Job) -> dict[str, Any]:
    key = job.build.get("key")
    extra = (run.record.get("builds") or {}).get(key or "", {})
    return _drop_none(
        {
            "id": build_id(run, job),
            "checkout_id": checkout_id(run, job),
            "origin": ORIGIN,
            "architecture": job.arch if re.fullmatch(r"[a-z0-9_]*", job.arch) else None,
            "config_name": job.config,
            "command": job.build.get("reproducer"),
            "compiler": extra.get("compiler"),
            "start_time": _time(extra.get("created")),
            "duration": extra.get("duration"),
            "status": "PASS" if job.build else "MISS",
            "misc": _drop_none({"kto_build_key": key, "cache_hit": extra.get("cache_hit")}),
        }
    )


def _test(run: Run, job: Job, base_url: str | None) -> dict[str, Any]:
    failing = job.failing_findings()
    excerpt = ""
    if failing:
        excerpt = failing[0].get("report", "")
    elif str(job.status) != "PASS":
        excerpt = f"{job.reason}\n\n{job.console_tail(80)}"
    outputs = [
        {"name": name, "url": _url(base_url, job.path / name, run)}
        for name in (CONSOLE, FINDINGS, JOB_RECORD)
        if job.has(name)
    ]
    accel = (job.record.get("accel") or {}).get("accel")
    return _drop_none(
        {
            "id": test_id(run, job),
            "build_id": build_id(run, job),
            "origin": ORIGIN,
            "path": _slug(job.test).replace("_", "-") if job.test else "",
            # KCIDB has no expected-failure status: a caught seeded bug is a PASS there, and
            # the comment says what was caught.
            "status": "PASS" if job.status is Status.XFAIL else str(job.status),
            "comment": f"{job.title or job.reason}"[:1000] or None,
            "start_time": _time(job.record.get("started")),
            "duration": round(job.seconds, 3),
            "log_url": outputs[0]["url"] if job.has(CONSOLE) else None,
            "log_excerpt": _clean(excerpt) or None,
            "output_files": outputs or None,
            "environment": {
                "comment": f"QEMU {job.arch} ({accel or 'unknown accel'})",
                "misc": _drop_none(
                    {
                        "qemu_version": job.qemu_version,
                        "accel": job.record.get("accel"),
                        "reproducer": (job.record.get("qemu") or {}).get("reproducer"),
                    }
                ),
            },
            "misc": {
                "job": job.name,
                "repeat": job.repeat,
                "raw_status": job.raw_status,
                "waived": job.waived,
                "missing": job.missing,
            },
        }
    )


def _issue(title: str, kind: str, ref: BugRef | None) -> dict[str, Any]:
    if ref is None:
        return {
            "id": issue_id(title),
            "version": 1,
            "origin": ORIGIN,
            "report_subject": title,
            "categories": [f"runtime.{_slug(kind)}"],
            "culprit": {"code": True, "tool": False, "harness": False},
            "comment": title,
        }
    lo, hi = ref.rate.interval()
    return {
        "id": issue_id(ref.title),
        "version": ref.version,
        "origin": ORIGIN,
        "report_subject": ref.title,
        "categories": [f"runtime.{_slug(kind)}"],
        "culprit": {"code": ref.state != "invalid", "tool": False, "harness": False},
        "comment": ref.label(),
        "misc": {
            "kto_bug": ref.id,
            "state": ref.state,
            "first_run": ref.first_run,
            "fail_runs": str(ref.rate),
            "rate_95": [round(lo, 4), round(hi, 4)],
        },
    }


def _absent(run: Run, job: Job, known: Known) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(issue, incident) for each open bug of the job's cell that this job did not show."""
    out = []
    for ref in known.absent.get(job.name, []):
        issue = _issue(ref.title, "unknown", ref)
        issue.pop("categories")  # the kind is the bug's findings', not known here
        incident = {
            "id": f"{test_id(run, job)}.absent.{ref.id}",
            "origin": ORIGIN,
            "issue_id": issue["id"],
            "issue_version": ref.version,
            "build_id": build_id(run, job),
            "test_id": test_id(run, job),
            "present": False,
            "comment": f"not seen: {ref.label()}",
        }
        out.append((issue, incident))
    return out


def export(run: Run, base_url: str | None = None, known: Known | None = None) -> dict[str, Any]:
    """known: the bug of each finding, from the store; without it an issue is a title."""
    checkouts: dict[str, dict[str, Any]] = {}
    builds: dict[str, dict[str, Any]] = {}
    tests, incidents = [], []
    issues: dict[str, dict[str, Any]] = {}
    for job in run.jobs:
        checkouts.setdefault(checkout_id(run, job), _checkout(run, job))
        builds.setdefault(build_id(run, job), _build(run, job))
        tests.append(_test(run, job, base_url))
        findings = list(job.findings)
        if not findings and known and known.of(job.name, job.title):
            findings = [{"title": job.title, "kind": "test"}]  # a FAIL's own verdict: a bug
        for n, f in enumerate(findings):
            title = f.get("title") or "unknown finding"
            ref = known.of(job.name, title) if known else None
            issue = _issue(title, str(f.get("kind") or "unknown"), ref)
            issues.setdefault(issue["id"], issue)
            misc: dict[str, Any] = {
                "waived": title in job.waived,
                "console_lines": [f.get("first_line"), f.get("last_line")],
            }
            if ref is not None:
                misc["kto_bug"] = ref.id
            incidents.append(
                {
                    "id": f"{test_id(run, job)}.{n}",
                    "origin": ORIGIN,
                    "issue_id": issue["id"],
                    "issue_version": issue["version"],
                    "build_id": build_id(run, job),
                    "test_id": test_id(run, job),
                    "present": True,
                    "comment": title,
                    "misc": misc,
                }
            )
        for issue, incident in _absent(run, job, known) if known else []:
            issues.setdefault(issue["id"], issue)
            incidents.append(incident)
    return {
        "version": dict(VERSION),
        "checkouts": list(checkouts.values()),
        "builds": list(builds.values()),
        "tests": tests,
        "issues": list(issues.values()),
        "incidents": incidents,
    }
