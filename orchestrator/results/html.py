"""A static HTML report of one run: regressions on top, the matrix grid, then each job.

One self-contained file in the run directory (inline CSS, no scripts, no server): links are
relative to it, so the report works opened from disk, copied as a whole folder, or served.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any
from urllib.parse import quote

from orchestrator.bugs.known import BugRef, Known
from orchestrator.records.layout import (
    CONSOLE,
    FINDINGS,
    JOB_FILES,
    JUNIT,
    KCIDB,
    RUN_RECORD,
    SUMMARY,
)
from orchestrator.records.model import Job, Run
from orchestrator.results import decoded
from orchestrator.results.compare import CLASSES, LABELS, Comparison

COLOURS = {
    "PASS": "#2e7d32",
    "FAIL": "#c62828",
    "ERROR": "#ef6c00",
    "MISS": "#6a1b9a",
    "SKIP": "#9e9e9e",
    "XFAIL": "#00838f",  # caught as expected
}

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; } .grid td.cell { text-align: center; min-width: 7em; }
.st { display: inline-block; color: #fff; font-weight: 600; padding: 2px 8px;
      border-radius: 3px; text-decoration: none; }
.small { font-size: 12px; color: #555; } .small a { color: #555; }
.warn { background: #fff3e0; border-left: 4px solid #ef6c00; padding: .4em .8em; }
.waived { background: #eceff1; color: #37474f; border-radius: 3px; padding: 0 4px; }
.cls-new { color: #c62828; font-weight: 700; } .cls-fixed { color: #2e7d32; font-weight: 700; }
.cls-still { color: #8d6e63; font-weight: 700; } .cls-flaky { color: #ef6c00; font-weight: 700; }
pre { background: #fafafa; border: 1px solid #ddd; padding: .6em; overflow-x: auto;
      max-height: 30em; font-size: 12px; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; margin: 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; font-family: monospace; }
pre .dec { color: #0d47a1; } pre .src { color: #757575; }
.box { display: inline-block; min-width: 2.6em; color: #fff; font-size: 11px;
       text-align: center; border-radius: 2px; }
.cls-persistent { color: #8d6e63; font-weight: 700; }
.cls-unstable { color: #ef6c00; font-weight: 700; } .cls-infra { color: #6a1b9a; }
a.bug { background: #fbe9e7; color: #b71c1c; border-radius: 3px; padding: 0 4px;
        text-decoration: none; font-size: 12px; } a.bug.new { background: #c62828; color: #fff; }
"""


def _link(job: Job, filename: str) -> str:
    return f"{quote(job.name)}/{quote(filename)}"


def _status(job: Job, href: str | None = None) -> str:
    colour = COLOURS.get(str(job.status), "#000")
    label = escape(str(job.status))
    style = f'style="background:{colour}"'
    if href:
        return f'<a class="st" {style} href="{href}" title="{escape(job.reason)}">{label}</a>'
    return f'<span class="st" {style} title="{escape(job.reason)}">{label}</span>'


def _cell(job: Job) -> str:
    links = [f'<a href="#job-{quote(job.name)}">details</a>']
    for name, text in ((CONSOLE, "console"), (FINDINGS, "findings")):
        if job.has(name):
            links.append(f'<a href="{_link(job, name)}">{text}</a>')
    target = _link(job, CONSOLE) if job.has(CONSOLE) else f"#job-{quote(job.name)}"
    parts = [_status(job, target)]
    if job.waived:
        parts.append(f'<span class="waived" title="{escape("; ".join(job.waived))}">waived</span>')
    if job.missing:
        parts.append(f'<span class="waived" title="{escape("; ".join(job.missing))}">!</span>')
    parts.append(f'<div class="small">{" · ".join(links)}</div>')
    return "".join(parts)


def _grid(run: Run) -> str:
    rows: dict[tuple[str, str], dict[tuple[str, str], list[Job]]] = defaultdict(
        lambda: defaultdict(list)
    )
    arch_tests: dict[str, set[str]] = defaultdict(set)
    for job in run.jobs:
        rows[(job.tree, job.config)][(job.arch, job.test)].append(job)
        arch_tests[job.arch].add(job.test)
    columns = [(a, t) for a in sorted(arch_tests) for t in sorted(arch_tests[a])]
    head1 = "".join(
        f'<th colspan="{len(arch_tests[a])}">{escape(a)}</th>' for a in sorted(arch_tests)
    )
    head2 = "".join(f"<th>{escape(t)}</th>" for _, t in columns)
    out = [
        '<table class="grid">',
        f'<tr><th rowspan="2">tree</th><th rowspan="2">config</th>{head1}</tr>',
        f"<tr>{head2}</tr>",
    ]
    for (tree, config), cells in sorted(rows.items()):
        tds = []
        for col in columns:
            jobs = cells.get(col, [])
            body = "<br>".join(
                # Repeats of one test share a cell; number them so each one can be found.
                (f'<span class="small">#{j.repeat} </span>' if len(jobs) > 1 else "") + _cell(j)
                for j in jobs
            )
            body = body or '<span class="small">-</span>'
            tds.append(f'<td class="cell">{body}</td>')
        out.append(f"<tr><th>{escape(tree)}</th><th>{escape(config)}</th>{''.join(tds)}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _strip_box(tally: Any) -> str:
    """One run of a cell in its history strip: green all passed, red all failed, orange
    some repeats failed, grey no verdict (not run, ERROR/MISS)."""
    if tally is None:
        return '<span class="box" style="background:#bdbdbd" title="no verdict">&nbsp;</span>'
    colour = (
        COLOURS["PASS"]
        if tally.fails == 0
        else COLOURS["FAIL"]
        if tally.fails == tally.runs
        else COLOURS["ERROR"]
    )
    return f'<span class="box" style="background:{colour}" title="{tally}">{tally}</span>'


def _night_to_night(night: Any) -> str:
    """The matrix's history (orchestrator.matrix.history.Classified): NEW / FIXED /
    PERSISTENT / UNSTABLE / INFRA with fail:runs, and each cell's strip, oldest first."""
    if night is None:
        return ""
    rows = []
    for line in night.lines:
        before = " ".join(str(t) for t in line.before) or "-"
        rows.append(
            f'<tr><td class="cls-{escape(line.cls)}">{escape(line.cls.upper())}</td>'
            f"<td>{escape(line.cell)}</td><td>{escape(line.title or '(the test)')}</td>"
            f"<td>{line.now}</td><td>{escape(before)}</td>"
            f"<td>{line.last_kernel or '-'}</td></tr>"
        )
    changes = (
        "<table><tr><th>class</th><th>cell</th><th>finding</th><th>fail:runs now</th>"
        "<th>before (newest first)</th><th>last time's kernel, re-run now</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>Nothing new, fixed or unstable"
        + ("" if night.history else " (the first run of this matrix)")
        + ".</p>"
    )
    versions = ""
    if night.versions_changed:
        items = "".join(f"<li>{escape(v)}</li>" for v in night.versions_changed)
        versions = (
            '<div class="warn"><b>Tool versions changed since the last run</b> (suspects, '
            f"not kernel regressions)<ul>{items}</ul></div>"
        )
    ids = [*reversed(night.history), night.run_id]
    head = "".join(f'<th class="small">{escape(i[:15])}</th>' for i in ids)
    strip_rows = []
    for cell, strip in sorted(night.strips.items()):
        boxes = "".join(f"<td>{_strip_box(t)}</td>" for t in reversed(strip))
        pad = "<td></td>" * (len(ids) - len(strip))
        strip_rows.append(f"<tr><td>{escape(cell)}</td>{pad}{boxes}</tr>")
    strips = (
        f'<table class="strip"><tr><th>cell</th>{head}</tr>{"".join(strip_rows)}</table>'
        if strip_rows
        else ""
    )
    return f"<h2>Night to night</h2>\n{versions}{changes}\n<h3>History per cell</h3>\n{strips}"


def _regressions(c: Comparison | None) -> str:
    if c is None or c.old_id is None:
        return '<p class="small">No earlier run of this matrix to compare with.</p>'
    counts = " · ".join(
        f'<span class="cls-{cls}">{len(c.of(cls, "test"))} {cls}</span>' for cls in CLASSES
    )
    out = [f"<p>Against <code>{escape(c.old_id)}</code> (tests): {counts}</p>"]
    if not c.changes:
        out.append('<p class="small">No changes.</p>')
        return "\n".join(out)
    out.append(
        "<table><tr><th></th><th>what</th><th>name</th><th>before</th><th>now</th>"
        "<th>detail</th></tr>"
    )
    for cls in CLASSES:
        for ch in c.of(cls):
            waived = ' <span class="waived">waived</span>' if ch.waived else ""
            out.append(
                f'<tr><td class="cls-{cls}">{LABELS[cls]}</td><td>{ch.what}</td>'
                f"<td>{escape(ch.name)}{waived}</td><td>{escape(ch.old)}</td>"
                f"<td>{escape(ch.new)}</td><td class=small>{escape(ch.detail)}</td></tr>"
            )
    out.append("</table>")
    return "\n".join(out)


def _kv(items: list[tuple[str, Any]]) -> str:
    rows = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items if v not in (None, "")
    )
    return f'<dl class="kv">{rows}</dl>'


def _bug(ref: BugRef | None, known: Known | None) -> str:
    """A finding shown as its bug, linking to the dashboard beside the run dirs."""
    if ref is None or known is None:
        return ""
    cls = "bug new" if ref.new else "bug"
    href = f"../{quote(known.html.name)}#bug-{ref.id}"
    return f' <a class="{cls}" href="{href}">{escape(ref.label())}</a>'


def _bugs(known: Known | None) -> str:
    """The bugs of this run's findings, new ones first (orchestrator/bugs)."""
    if known is None:
        return ""
    refs = known.bugs()
    if not refs:
        return "<h2>Bugs</h2>\n<p>No findings: no bugs in this run.</p>"
    jobs: dict[int, list[str]] = defaultdict(list)
    for (job, _title), ref in known.refs.items():
        if job not in jobs[ref.id]:
            jobs[ref.id].append(job)
    rows = "".join(
        f"<tr><td>{_bug(r, known)}</td><td>{escape(r.rate.words())}</td>"
        f'<td class="small">{escape(", ".join(jobs[r.id]))}</td></tr>'
        for r in refs
    )
    return (
        "<h2>Bugs</h2>\n<table><tr><th>bug</th><th>reproduces</th><th>jobs here</th></tr>"
        f"{rows}</table>"
    )


def _job_detail(job: Job, known: Known | None = None) -> str:
    # A FAIL without a finding (the test's status, a hang) is a bug under its verdict title.
    verdict_bug = known.of(job.name, job.title) if known and not job.findings else None
    files = " · ".join(f'<a href="{_link(job, n)}">{n}</a>' for n in JOB_FILES if job.has(n))
    out = [
        f'<h3 id="job-{escape(job.name)}">{_status(job)} {escape(job.name)}</h3>',
        _kv(
            [
                ("verdict", job.reason),
                ("tree / config", f"{job.tree} / {job.config}"),
                ("repeat", job.repeat if job.repeat else None),
                ("commit", job.commit),
                ("patchset", job.patchset),
                ("qemu", job.qemu_version),
                ("reproducer", (job.record.get("qemu") or {}).get("reproducer")),
                ("bug", verdict_bug.label() if verdict_bug else None),
                ("files", None),
            ]
        ),
        f'<p class="small">{files or "no files"}</p>',
    ]
    metrics = _metrics(job.record.get("metrics"))
    if metrics:
        out.append(metrics)
    if job.missing:
        items = "".join(f"<li>{escape(m)}</li>" for m in job.missing)
        out.append(f'<div class="warn">Incomplete job record:<ul>{items}</ul></div>')
    for f in job.findings:
        waived = ' <span class="waived">waived</span>' if f.get("title") in job.waived else ""
        waived += _bug(known.of(job.name, f.get("title")) if known else None, known)
        lines = f"console lines {f.get('first_line')}-{f.get('last_line')}"
        out.append(
            f"<details><summary><b>{escape(str(f.get('title')))}</b>{waived} "
            f'<span class="small">{escape(str(f.get("kind")))}, {lines}</span></summary>'
            f"{_decoding(f)}<pre>{_report(f)}</pre></details>"
        )
    return "\n".join(out)


def _report(finding: dict[str, Any]) -> str:
    """The report; decoded frames carry file:line and, beside them, the source line."""
    if not decoded.is_decoded(finding):
        return escape(str(finding.get("report") or ""))
    rows = []
    for line in decoded.decoded_lines(finding):
        text = escape(line.text)
        if line.decoded:
            text = f'<span class="dec">{text}</span>'
        if line.source:
            text += f'<span class="src">{escape(decoded.SOURCE_SEP + line.source)}</span>'
        rows.append(text)
    return "\n".join(rows)


def _decoding(finding: dict[str, Any]) -> str:
    """Guilty file:line, its maintainers and lists, and why frames were not decoded."""
    people, lists = decoded.recipients(finding)
    items = [
        ("guilty", decoded.guilty_summary(finding)),
        ("maintainers", ", ".join(people) or None),
        ("lists", ", ".join(lists) or None),
    ]
    notes = decoded.notes(finding)
    body = _kv(items) if any(v for _, v in items) else ""
    if notes:
        body += f'<p class="small">{escape("; ".join(notes))}</p>'
    return body


def _metrics(metrics: Any) -> str | None:
    """Workload numbers (hotplug cycles/s, KVM iterations/s, rcutorture grace periods...):
    one row per workload, scalar values only (lists such as the reader pipe stay in job.json)."""
    if not isinstance(metrics, dict) or not metrics:
        return None
    rows = []
    for workload, values in metrics.items():
        if not isinstance(values, dict):
            continue
        flat = []
        for k, v in values.items():
            if isinstance(v, dict):
                flat += [
                    (f"{k}.{k2}", v2) for k2, v2 in v.items() if not isinstance(v2, dict | list)
                ]
            elif not isinstance(v, list):
                flat.append((k, v))
        cells = " · ".join(f"{escape(k)} {escape(str(v))}" for k, v in flat)
        rows.append(f"<tr><th>{escape(str(workload))}</th><td>{cells}</td></tr>")
    if not rows:
        return None
    return f'<table class="metrics"><caption>metrics</caption>{"".join(rows)}</table>'


def _timings(timings: Any) -> str | None:
    if not isinstance(timings, dict) or not timings:
        return None
    return " · ".join(f"{k} {float(v):.1f} s" for k, v in timings.items() if v is not None)


def render(
    run: Run, comparison: Comparison | None = None, night: Any = None, known: Known | None = None
) -> str:
    """known: the bug of each finding (orchestrator/bugs), when the store could be written."""
    rec = run.record
    inputs = rec.get("inputs") or {}
    host = rec.get("host") or {}
    counts: dict[str, int] = defaultdict(int)
    for j in run.jobs:
        counts[str(j.status)] += 1
    tally = " ".join(
        f'<span class="st" style="background:{COLOURS[s]}">{s} {counts[s]}</span>'
        for s in COLOURS
        if counts[s]
    )
    missing = ""
    problems = run.missing + [f"{j.name}: {m}" for j in run.jobs for m in j.missing]
    if problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in problems)
        missing = f'<div class="warn"><b>Incomplete run record</b><ul>{items}</ul></div>'
    header = _kv(
        [
            ("run", run.id),
            ("created", rec.get("created")),
            ("status", rec.get("status")),
            ("tree", inputs.get("tree")),
            ("commit", inputs.get("commit")),
            ("patches", inputs.get("patches")),
            ("arches", ", ".join(inputs.get("arches") or []) or None),
            ("tests", ", ".join(inputs.get("tests") or []) or None),
            ("host", f"{host.get('hostname', '')} {host.get('kernel', '')}".strip() or None),
            ("qemu", (rec.get("versions") or {}).get("qemu")),
            ("compiler", (rec.get("versions") or {}).get("compiler")),
            ("reproducer", rec.get("reproducer")),
            ("timings", _timings(rec.get("timings"))),
        ]
    )
    details = "\n".join(_job_detail(j, known) for j in run.jobs)
    outputs = " · ".join(
        f'<a href="{n}">{n}</a>'
        for n in (JUNIT, KCIDB, SUMMARY, RUN_RECORD)
        if n != RUN_RECORD or (run.path / n).is_file()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kto {escape(run.id)}: {escape(str(run.worst()))}</title>
<style>{CSS}</style></head>
<body>
<h1>kto run {escape(run.id)}</h1>
<p>{tally}</p>
{missing}
{_bugs(known)}
{_night_to_night(night)}
<h2>Regressions</h2>
{_regressions(comparison)}
<h2>Matrix</h2>
{_grid(run) if run.jobs else "<p>No jobs.</p>"}
<h2>Run</h2>
{header}
<p class="small">{outputs}</p>
<h2>Jobs</h2>
{details}
</body></html>
"""
