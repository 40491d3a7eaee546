"""The motivating scenarios (seeds 000, 001, 003, 004) end to end through `kto run`: each
fault series under kernels/series/ makes the test FAIL with the scenario's title, the
baseline passes the same test (here or in test_workloads.py), and seed 001's mbox thread is
applied at its newest revision. configs/matrix/seeds.yaml (`make demo`) runs all of them,
seed 002 and both x86_64 and arm64; this is the share that fits CI."""

from __future__ import annotations

import email
import json
from pathlib import Path
from typing import Any

import pytest

from .kto_cli import REPO, added_line, decoded_guilty, kto, kto_run

pytestmark = pytest.mark.integration

SERIES = REPO / "kernels" / "series"


_run = kto_run


def _titles(job: dict[str, Any]) -> list[str]:
    return [f["title"] for f in job["verdict"]["findings"]]


def _console(job: dict[str, Any]) -> str:
    return (job["_dir"] / "console.log").read_text(errors="replace")


def test_seed_001_mbox_thread_newest_revision_builds_and_boots() -> None:
    mbox = SERIES / "seed-001-mbox-thread" / "thread.mbox"
    rc, job, out = _run("--arch", "x86_64", "--test", "smoke", "--patches", str(mbox))
    assert rc == 0 and job["verdict"]["status"] == "PASS", out
    series = job["build"]["inputs"]["series"]
    assert series["kind"] == "mbox"
    assert [p["message_id"] for p in series["patches"]] == [
        f"{n}.v2.seed001@example.org" for n in (1, 2, 3)
    ]  # v2, in 1/3..3/3 order although the mbox holds 3/3 first; cover and reply skipped
    assert "kto seed-001 mbox series v2: 3/3 applied" in _console(job)
    assert "series v1" not in _console(job)


def test_seed_001_mail_that_does_not_apply_names_patch_and_file(tmp_path: Path) -> None:
    mail = REPO / "tests" / "data" / "mails" / "web-archive-patch.txt"  # seed 001's shape
    res = kto("run", "--arch", "x86_64", "--patches", str(mail), results=tmp_path)
    assert res.returncode == 4, res.stdout + res.stderr[-3000:]
    said = res.stderr
    assert "does not apply" in said and "in mm/mmu_notifier.c" in said, said
    assert 'patch 1/1 "mm/mmu_notifiers: look up the notifier list once' in said
    assert "Traceback" not in said
    # the job's record says so too: not the kernel's failure
    jobs = list(tmp_path.glob("*-run-*/*/job.json"))
    assert len(jobs) == 1, jobs
    verdict = json.loads(jobs[0].read_text())["verdict"]
    assert verdict["status"] == "MISS" and "mm/mmu_notifier.c" in verdict["reason"], verdict


def _scenario(
    series: str, arch: str, test: str, duration: str, *extra: str
) -> tuple[dict[str, Any], list[str]]:
    """A fault series' run: it must FAIL (exit 1). The job record and its finding titles."""
    rc, job, out = _run(
        "--arch", arch, "--test", test, "--duration", duration, "--patches", str(SERIES / series),
        *extra,
    )  # fmt: skip
    assert rc == 1 and job["verdict"]["status"] == "FAIL", out
    return job, _titles(job)


def test_seed_000_hotplug_deadlock_fails_with_stacks_before_the_kill() -> None:
    job, titles = _scenario("seed-000-hotplug-deadlock", "x86_64", "hotplug", "10")
    assert any(t.startswith(("possible deadlock in", "possible recursive locking")) for t in titles)
    assert "after the fatal finding" in job["verdict"]["reason"]  # the record says why it ended
    # the blocked tasks' stacks (SysRq w) are in the log before QEMU was stopped
    assert "Show Blocked State" in _console(job) or "blocked for more than" in _console(job)


def test_seed_003_rcutorture_onoff_unbalanced_mmdrop() -> None:
    # The guest often hangs after the reports (no fatal one among them): 10 s of silence
    # ends it, not the test's 20 s; rcutorture prints statistics every 5 s while it runs.
    job, titles = _scenario(
        "seed-003-onoff-mmdrop", "x86_64", "rcutorture-onoff", "12", "--silence-timeout", "10"
    )
    # Which task frees the mm first varies from run to run: __mmdrop() warns when it is
    # the offlining task's own (lazy) mm; check_mm() reports the leftover counters always.
    assert {"WARNING in __mmdrop", "BUG: Bad rss-counter state"} & set(titles), titles
    assert "is now offline" in _console(job)  # rcutorture's onoff did offline a CPU


@pytest.mark.parametrize(
    ("series", "status"), [(None, "PASS"), ("seed-004-sparc64-cpumask", "FAIL")]
)
def test_seed_004_sparc64_mm_cpumask(series: str | None, status: str, tmp_path: Path) -> None:
    extra = ["--patches", str(SERIES / series)] if series else []
    # Its own results dir: with no earlier run to compare with, the failing job gets a mail.
    rc, job, out = _run(
        "--arch", "sparc64", "--test", "mm-churn", "--duration", "3", *extra, results=tmp_path
    )  # fmt: skip
    assert job["verdict"]["status"] == status, out
    if not series:  # the churn ran alone: sun4u has one CPU, nothing to hotplug
        assert rc == 0 and job["metrics"]["mm-churn"]["forks"] > 0, out
        assert "hotplug" not in job["metrics"], job["metrics"]
    if series:
        assert rc == 1
        assert _titles(job)[0] == "WARNING in smp_flush_tlb_pending", _titles(job)
        assert "not in its mm_cpumask" in job["verdict"]["findings"][0]["report"]
        # Decoded with the kernel's own vmlinux to the check the series added: the WARN
        # itself, or (the check tail-calls the warning) its call in the guilty function.
        (patch,) = (SERIES / series).glob("*.patch")
        guilty = decoded_guilty(job)
        assert guilty["function"] == "smp_flush_tlb_pending", guilty
        assert (guilty["file"], guilty["line"]) in {
            added_line(patch, "WARN_ONCE("),
            added_line(patch, "tlb_flush_cpumask_check(mm, cpu);"),
        }, guilty
        # The reply mail: under the patch's Message-Id, Cc the guilty file's maintainers.
        res = kto("report", str(job["_dir"].parent), "--mail", results=tmp_path)
        assert res.returncode == 0, res.stderr
        (eml,) = (job["_dir"].parent / "mail").glob("*.eml")
        mail = email.message_from_bytes(eml.read_bytes())
        assert mail["In-Reply-To"] == "<20261202104500.4.seed004@example.org>"
        assert mail["Subject"].startswith("Re: [PATCH] sparc64: clear mm_cpumask")
        assert "davem@davemloft.net" in mail["Cc"] and "sparclinux@vger.kernel.org" in mail["Cc"]
        assert "arch/sparc/kernel/smp_64.c:" in mail.get_payload()
    else:
        assert rc == 0 and not _titles(job)
