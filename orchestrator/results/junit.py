"""JUnit XML for CI dashboards (Jenkins, GitLab): one suite per (tree, arch, config).

Mapping: FAIL -> <failure> (message: the finding title, body: the report), ERROR/MISS ->
<error> (the harness could not judge the kernel), SKIP -> <skipped>; PASS passes. Waived
findings do not fail a testcase; they are named in its system-out. A testcase whose findings
are known bugs carries a `kto.bug` property per bug ("#12 WARNING in __mmdrop, open since
2026-11-30, 14:20 runs"), the way pytest's record_property puts them in a testcase.
"""

from __future__ import annotations

import xml.dom.minidom
import xml.etree.ElementTree as ET
from collections import defaultdict

from junit_xml import TestCase, TestSuite, to_xml_report_string

from orchestrator.bugs.known import Known
from orchestrator.records.model import Job, Run
from orchestrator.records.verdict import Status
from orchestrator.results import decoded

BODY_LIMIT = 64 * 1024  # a report excerpt, not a second console log


def _classname(job: Job) -> str:
    return f"{job.arch}.{job.config}.{job.test}"


def _name(job: Job, repeats: int) -> str:
    return f"{job.test}#{job.repeat}" if repeats > 1 else job.test


def _system_out(job: Job) -> str:
    lines = [f"verdict: {job.status} - {job.reason}", f"job dir: {job.path}"]
    lines += [f"waived finding: {t}" for t in job.waived]
    lines += [f"missing: {m}" for m in job.missing]
    tail = job.console_tail()
    if tail:
        lines += ["", "--- console.log (tail) ---", tail]
    return "\n".join(lines)


def testcase(job: Job, repeats: int = 1) -> TestCase:
    case = TestCase(
        _name(job, repeats),
        classname=_classname(job),
        elapsed_sec=round(job.seconds, 3),
        stdout=_system_out(job),
        status=str(job.status),
    )
    if job.status is Status.FAIL:
        failing = job.failing_findings()
        first = failing[0] if failing else None
        message = job.title or (first or {}).get("title") or job.reason
        # The decoded report (frames with file:line and source text) when the job has one.
        body = decoded.decoded_text(first) if first else ""
        body = body or job.reason
        if first and (where := decoded.guilty_summary(first)):
            body = f"guilty: {where}\n\n{body}"
        if len(failing) > 1:
            body += "\n\nalso: " + "; ".join(f["title"] for f in failing[1:])
        case.add_failure_info(message=message, output=body[:BODY_LIMIT], failure_type="FAIL")
    elif job.status in (Status.ERROR, Status.MISS):
        case.add_error_info(message=job.reason, output=job.reason, error_type=str(job.status))
    elif job.status is Status.SKIP:
        case.add_skipped_info(message=job.reason or "not applicable")
    elif job.status is Status.XFAIL:  # passes: the seeded bug was caught, as it must be
        case.stdout = f"caught as expected: {'; '.join(job.expected)}\n{case.stdout or ''}"
    return case


def _groups(run: Run) -> list[tuple[tuple[str, str, str], list[Job]]]:
    """The jobs of each suite, in the order the suites and their testcases are written."""
    groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for job in run.jobs:
        groups[(job.tree, job.arch, job.config)].append(job)
    return sorted(groups.items())


def suites(run: Run) -> list[TestSuite]:
    out = []
    for (tree, arch, config), jobs in _groups(run):
        counts: dict[str, int] = defaultdict(int)
        for j in jobs:
            counts[j.test] += 1
        first = jobs[0]
        props = {
            "run": run.id,
            "tree": tree,
            "commit": first.commit or "unknown",
            "patchset": first.patchset or "unknown",
            "qemu": first.qemu_version or "unknown",
        }
        out.append(
            TestSuite(
                f"{tree}.{arch}.{config}",
                [testcase(j, counts[j.test]) for j in jobs],
                hostname=(run.record.get("host") or {}).get("hostname"),
                timestamp=first.record.get("started"),
                properties=props,
            )
        )
    return out


def render(run: Run, known: Known | None = None) -> str:
    bugs = _bug_labels(run, known)
    if not any(bugs):
        return to_xml_report_string(suites(run), prettyprint=True, encoding="utf-8")
    # junit_xml has no testcase properties: add them to its document, then print it the way
    # junit_xml does (minidom's pretty printer).
    doc = ET.fromstring(to_xml_report_string(suites(run), prettyprint=False, encoding="utf-8"))
    cases = [case for suite in doc.findall("testsuite") for case in suite.findall("testcase")]
    for case, labels in zip(cases, bugs, strict=True):
        if labels:
            props = ET.Element("properties")
            for label in labels:
                ET.SubElement(props, "property", name="kto.bug", value=label)
            case.insert(0, props)
    pretty = xml.dom.minidom.parseString(ET.tostring(doc, encoding="utf-8"))
    return pretty.toprettyxml(encoding="utf-8").decode("utf-8")


def _bug_labels(run: Run, known: Known | None) -> list[list[str]]:
    """Per testcase, in document order: the bugs its findings (or its verdict) are."""
    out: list[list[str]] = []
    for _key, jobs in _groups(run):
        for job in jobs:
            titles = [f.get("title") for f in job.findings] or [job.title]
            refs = [known.of(job.name, t) for t in titles] if known else []
            out.append(list(dict.fromkeys(r.label() for r in refs if r is not None)))
    return out
