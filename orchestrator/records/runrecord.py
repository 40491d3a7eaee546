"""run.json: what a run was asked to do, on which host and tools, and how long each phase took.

Written when the run directory is created (so a run killed at once still says what it was),
updated as inputs become known, and closed at the end; always atomically.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

from orchestrator import __version__, atomic
from orchestrator.paths import results_dir
from orchestrator.records.layout import BUILD_LOG, LATEST, RUN_RECORD


def host_info() -> dict[str, Any]:
    # os.uname() is what socket.gethostname() and platform.release()/machine() read (their
    # imports cost a boot more than the record); sys.version's first word is
    # platform.python_version().
    uname = os.uname()
    distro = None
    os_release = Path("/etc/os-release")
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    return {
        "hostname": uname.nodename,
        "kernel": uname.release,
        "machine": uname.machine,
        "cpus": os.cpu_count(),
        "distro": distro,
        "python": sys.version.split()[0],
    }


def reproducer(argv: list[str] | None = None) -> str:
    return shlex.join(["kto", *(sys.argv[1:] if argv is None else argv)])


class RunDoc(TypedDict, total=False):
    """run.json, every field any driver writes: update() accepts only these (mypy checks
    each call site), so a misspelt or new field is a type error, not a silent new key."""

    kto_version: str
    run_id: str
    label: str
    status: str  # started | finished | interrupted | budget (a bisect past its deadline)
    created: str
    reproducer: str
    host: dict[str, Any]
    compare_key: str  # runs with the same key are compared night to night
    matrix: dict[str, Any]  # a matrix run: the matrix as expanded (matrix/spec.describe)
    waivers: list[dict[str, Any]]  # the matrix's own waivers, kept for later reports
    job_specs: dict[str, dict[str, Any]]  # `kto run`: job name -> JobSpec
    inputs: dict[str, Any]
    versions: dict[str, Any]  # qemu, compiler, tuxmake, kto
    builds: dict[str, dict[str, Any]]
    timings: dict[str, float]
    bisect: dict[str, Any]
    bisect_cost: dict[str, Any]


def read(run_dir: Path) -> RunDoc:
    try:
        doc = json.loads((run_dir / RUN_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return cast(RunDoc, doc) if isinstance(doc, dict) else {}


def start(run_dir: Path, label: str, argv: list[str] | None = None) -> None:
    atomic.write_json(
        run_dir / RUN_RECORD,
        {
            "kto_version": __version__,
            "run_id": run_dir.name,
            "label": label,
            "status": "started",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "reproducer": reproducer(argv),
            "host": host_info(),
        },
    )


def update(run_dir: Path, **fields: Unpack[RunDoc]) -> RunDoc:
    """Merge fields into run.json (dicts one level deep: timings accumulate). The one
    writer of run.json after start(): every driver's fields go through here."""
    doc: dict[str, Any] = dict(read(run_dir))
    for key, value in fields.items():
        old = doc.get(key)
        doc[key] = {**old, **value} if isinstance(value, dict) and isinstance(old, dict) else value
    atomic.write_json(run_dir / RUN_RECORD, doc)
    return cast(RunDoc, doc)


def build_inputs(record: dict[str, Any]) -> dict[str, Any]:
    """The run-level view of a build.json: what was built, with what, how long it took."""
    inputs = record.get("inputs") or {}
    series = inputs.get("series") or {}
    return {
        "tree": inputs.get("tree"),
        "ref": inputs.get("ref"),
        "commit": inputs.get("base_commit"),
        "describe": inputs.get("describe"),
        "patches": series.get("source") or None,
        "patchset": series.get("hash"),
        "patch_subjects": [p.get("subject") for p in series.get("patches") or []],
        "fragments": [f.get("name") for f in inputs.get("fragments") or []],
        "kconfig_base": inputs.get("kconfig_base"),
    }


def build_summary(record: dict[str, Any]) -> dict[str, Any]:
    durations = record.get("durations") or {}
    return {
        "key": record.get("key"),
        "created": record.get("created"),
        "duration": durations.get("total"),
        "cache_hit": bool(record.get("cache_hit")),
        "compiler": (record.get("toolchain") or {}).get("version"),
        "reproducer": record.get("reproducer"),
        "warnings": record.get("warnings"),
        "errors": record.get("errors"),
    }


def copy_build_log(build_dir: Path, job_dir: Path) -> None:
    """The job folder carries its kernel's build.log, so a run dir stands on its own."""
    log = build_dir / BUILD_LOG
    if log.is_file():
        job_dir.mkdir(parents=True, exist_ok=True)
        tmp, dst = job_dir / f".{BUILD_LOG}.tmp", job_dir / BUILD_LOG
        try:
            shutil.copyfile(log, tmp)
            os.replace(tmp, dst)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            # shutil names the source on a failed copy: the file that could not be written
            # is the job's (a full results disk), the cache's log is fine.
            raise atomic.write_error(dst, exc) from exc


def start_inputs(
    run_dir: Path, build_record: dict[str, Any], arch: str, tests: list[str]
) -> dict[str, float]:
    """Record a single-arch run's inputs; returns the phase timings dict to fill in."""
    durations = build_record.get("durations_this_request") or build_record.get("durations") or {}
    timings = {"build": float(durations.get("total") or 0.0)}
    summary = build_summary(build_record)
    update(
        run_dir,
        inputs={**build_inputs(build_record), "arches": [arch], "tests": tests},
        versions={
            "compiler": summary["compiler"],
            "tuxmake": (build_record.get("tuxmake") or {}).get("version"),
        },
        builds={summary["key"] or "unknown": summary},
        timings=timings,
    )
    return timings


def new_run_dir(label: str, root: Path | None = None) -> Path:
    """A new results/<run-id>/ (never an old one reused), with run.json, and `latest` at it."""
    root = root or results_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{os.urandom(2).hex()}"
        path = root / run_id
        try:
            path.mkdir()  # never reuse (and so never overwrite) an old run
            break
        except FileExistsError:
            continue
    start(path, label)  # run.json first: even a run killed at once says what it was
    _point_latest(root, path)
    return path


def _point_latest(root: Path, target: Path) -> None:
    tmp = root / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, root / LATEST)
