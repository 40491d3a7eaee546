"""bugs.html: the store as a static page beside it (no scripts, no server), rewritten with
every run. Open bugs first, newest first, each with its history across nights; then the
closed ones. Links are relative to the results root, so the folder can be copied or served.
"""

from __future__ import annotations

import sqlite3
import time
from html import escape
from pathlib import Path
from urllib.parse import quote

from orchestrator.bugs import outcomes, query
from orchestrator.bugs.known import run_date
from orchestrator.bugs.store import Store, db_path
from orchestrator.bugs.triage import Rate
from orchestrator.records.layout import CONSOLE, HTML

CLOSED_SHOWN = 100  # the newest closed bugs listed; `kto bugs list --state all` has all
REPORT_LINES = 60

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; text-align: left; }
.state { display: inline-block; color: #fff; font-weight: 600; padding: 1px 7px;
         border-radius: 3px; }
.open { background: #c62828; } .fixed { background: #2e7d32; }
.invalid { background: #757575; } .dup { background: #8d6e63; } .gone { background: #ef6c00; }
.small { font-size: 12px; color: #555; }
.box { display: inline-block; min-width: 2.6em; color: #fff; font-size: 11px;
       text-align: center; border-radius: 2px; margin-right: 1px; }
pre { background: #fafafa; border: 1px solid #ddd; padding: .6em; overflow-x: auto;
      max-height: 24em; font-size: 12px; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; margin: 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
section.bug { border-top: 1px solid #ddd; margin-top: 1.2em; }
"""


def _state(bug: query.BugRow) -> str:
    cls = "gone" if bug.state == "open" and bug.quiet_nights else bug.state
    return f'<span class="state {cls}">{escape(bug.status())}</span>'


def _box(run_id: str, rate: Rate) -> str:
    colour = "#2e7d32" if rate.fails == 0 else "#c62828" if rate.fails == rate.runs else "#ef6c00"
    tip = f"{run_id}: {rate} runs"
    return f'<span class="box" style="background:{colour}" title="{escape(tip)}">{rate}</span>'


def _strip(strip: list[tuple[str, Rate]]) -> str:
    return "".join(_box(rid, rate) for rid, rate in strip) or '<span class="small">-</span>'


def _rel(path: str, root: Path) -> str | None:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return None


def _job_link(path: str, root: Path, text: str) -> str:
    rel = _rel(path, root)
    if rel is None:
        return escape(text)
    return f'<a href="{quote(rel)}/{CONSOLE}">{escape(text)}</a>'


def _row(bug: query.BugRow, strip: list[tuple[str, Rate]]) -> str:
    return (
        f'<tr id="row-{bug.id}"><td><a href="#bug-{bug.id}">#{bug.id}</a></td>'
        f"<td>{escape(bug.title)}</td><td>{_state(bug)}</td>"
        f"<td>{escape(bug.since)}</td><td>{escape(bug.last)}</td>"
        f'<td class="rate">{bug.rate}</td><td>{escape(bug.rate.words())}</td>'
        f"<td>{escape(', '.join(bug.arches))}</td><td>{_strip(strip)}</td></tr>"
    )


HEAD = (
    "<tr><th>bug</th><th>title</th><th>state</th><th>first seen</th><th>last seen</th>"
    "<th>fail:runs</th><th>reproduces</th><th>arches</th><th>history (oldest first)</th></tr>"
)


def _kv(items: list[tuple[str, str | None]]) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items if v)
    return f'<dl class="kv">{rows}</dl>'


def _seen(inc: query.Incident | None, root: Path) -> str | None:
    if inc is None:
        return None
    commit = f" at {escape(inc.commit[:12])}" if inc.commit else ""
    where = _job_link(inc.path, root, f"{inc.run_id}/{inc.job}")
    return f"{escape(run_date(inc.run_id))}: {where}{commit}"


def _bot(bisections: list[outcomes.Bisection], tests: list[outcomes.FixTest], root: Path) -> str:
    """What the bot did about the bug: its bisections and the fixes tested against it."""
    if not bisections and not tests:
        return ""
    rows = []
    for b in bisections:
        commit = (
            f"{escape(b.commit[:12])} {escape(b.subject or '')}"
            if b.commit
            else escape(f"{b.good[:12]}..{b.bad[:12]}: {b.status}")
        )
        conf = f"{b.confidence:.1%}" if b.confidence is not None else ""
        rows.append(
            f"<tr><td>{escape(b.kind)} bisect</td><td>{commit}</td><td>{conf}</td>"
            f"<td>{escape('; '.join(b.flags))}</td><td>{_mail(b.mail, root)}</td></tr>"
        )
    for t in tests:
        conf = f"{t.confidence:.1%}" if t.confidence is not None else ""
        what = (
            f"{t.patches}: {t.verdict} ({t.fails}:{t.runs} with the fix, "
            f"{t.control_fails}:{t.control_runs} without)"
        )
        rows.append(
            f"<tr><td>fix test</td><td>{escape(what)}</td><td>{conf}</td><td></td>"
            f"<td>{_mail(t.mail, root)}</td></tr>"
        )
    head = "<tr><th>kind</th><th>commit</th><th>confidence</th><th>flags</th><th>mail</th></tr>"
    return f'<h3>Bot</h3><table class="bot">{head}{"".join(rows)}</table>'


def _mail(path: str | None, root: Path) -> str:
    if not path:
        return ""
    rel = _rel(path, root)
    name = Path(path).name
    return f'<a href="{quote(rel)}">{escape(name)}</a>' if rel else escape(name)


def _section(
    d: query.Detail,
    root: Path,
    anchor: str = "",
    bot: str = "",
) -> str:
    bug = d.bug
    titles = "<br>".join(
        f"{escape(t)} <span class='small'>({escape(role)})</span>" for t, role in d.titles
    )
    cells = "".join(
        f"<tr><td>{escape(c.cell)}</td><td>{c.rate}</td><td>{escape(c.rate.words())}</td>"
        f"<td>{escape(run_date(c.first_run))} - {escape(run_date(c.last_run))}</td></tr>"
        for c in d.cells
    )
    cells_table = (
        "<table><tr><th>cell</th><th>fail:runs</th><th>reproduces</th><th>seen</th></tr>"
        f"{cells}</table>"
        if cells
        else ""
    )
    best = ""
    if d.best is not None:
        rel = _rel(d.best.path, root)
        links = ""
        if rel is not None:
            run_dir, _, job = rel.rpartition("/")
            links = (
                f'<p class="small"><a href="{quote(rel)}/{CONSOLE}">console.log</a> · '
                f'<a href="{quote(run_dir)}/{HTML}#job-{quote(job)}">decoded in report.html</a>'
                "</p>"
            )
        text = "\n".join(bug.best_report.splitlines()[:REPORT_LINES])
        repro = f"<p><code>{escape(d.best.reproducer)}</code></p>" if d.best.reproducer else ""
        best = f"<h3>Best report ({escape(d.best.run_id)})</h3>{links}<pre>{escape(text)}</pre>"
        best += repro
    events = "".join(
        f"<li>{escape(e['at'])} {escape(e['who'])}: {escape(e['action'])}"
        f"{' - ' + escape(e['reason']) if e['reason'] else ''}</li>"
        for e in d.events
    )
    related = []
    if bug.prev_id:
        related.append(f'returns <a href="#bug-{bug.prev_id}">#{bug.prev_id}</a>')
    related += [f'came back as <a href="#bug-{n}">#{n}</a>' for n in d.returns]
    related += [f'dup: <a href="#bug-{n}">#{n}</a>' for n in d.dups]
    closed = (
        escape(f"{bug.closed_reason} ({bug.closed_by}, {bug.closed_at})")
        if bug.closed_reason
        else None
    )
    mark = f'<span id="{anchor}"></span>' if anchor else ""
    return f"""<section class="bug" id="bug-{bug.id}">
{mark}<h2>#{bug.id} {escape(bug.title)} {_state(bug)}</h2>
{
        _kv(
            [
                ("titles", titles),
                ("first seen", _seen(d.first, root)),
                ("last seen", _seen(d.last, root)),
                ("fail:runs", f"{bug.rate} - {escape(bug.rate.words())}"),
                ("arches", escape(", ".join(bug.arches))),
                ("kinds", escape(", ".join(bug.kinds))),
                ("closed", closed),
                ("related", " · ".join(related) or None),
            ]
        )
    }
<h3>History</h3><p class="strip">{_strip(d.strip)}</p>
{cells_table}
{best}
{bot}
<details><summary>events</summary><ul>{events}</ul></details>
</section>"""


def render(db: sqlite3.Connection, root: Path) -> str:
    open_bugs = query.list_bugs(db, state="open")
    closed = [b for b in query.list_bugs(db, state="all") if b.state != "open"]
    closed.sort(key=lambda b: (b.closed_at or b.last_run or "", b.id), reverse=True)
    closed = closed[:CLOSED_SHOWN]
    details = {b.id: query.detail(db, b.id, limit=0) for b in [*open_bugs, *closed]}
    counts = query.counts(db)
    tally = " · ".join(f"{counts.get(s, 0)} {s}" for s in query.STATES)

    def table(bugs: list[query.BugRow], css_id: str) -> str:
        if not bugs:
            return "<p>None.</p>"
        rows = "".join(_row(b, details[b.id].strip) for b in bugs)
        return f'<table id="{css_id}">{HEAD}{rows}</table>'

    # The section keeps its number anchor (the tables link it); an empty element before the
    # heading carries the bug's stable id, the one a mail's Closes: link names (a number
    # means another bug in another store, or after a rebuild of this one).
    store = Store(db_path(root), db, created=False)

    def section(bug_id: int) -> str:
        bot = _bot(outcomes.bisections(db, bug_id), outcomes.fix_tests(db, bug_id), root)
        return _section(details[bug_id], root, outcomes.dashboard_anchor(store, bug_id), bot)

    sections = "\n".join(section(b.id) for b in [*open_bugs, *closed])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kto bugs: {counts.get("open", 0)} open</title>
<style>{CSS}</style></head>
<body>
<h1>kto bugs</h1>
<p>{escape(tally)} <span class="small">- {escape(str(root))}, written
{escape(time.strftime("%Y-%m-%d %H:%M:%S %z"))}; `kto bugs show N` for one bug</span></p>
<h2>Open</h2>
{table(open_bugs, "open-bugs")}
<h2>Closed</h2>
{table(closed, "closed-bugs")}
{sections}
</body></html>
"""
