"""A results directory on a full file system: a clear error naming the file, exit 3, and
the runs written before the disk filled up are intact and reportable afterwards.

Runs kto inside a private mount namespace (`unshare -rm`) on a 512 KiB tmpfs, so no root is
needed and nothing outside the test sees the mount. The job is a SKIP (sparc64 has one CPU,
rcutorture-onoff needs two): no kernel is built, the run still writes every record.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _in_namespace(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing: run make setup")
    res = tmp_path / "res"
    res.mkdir(exist_ok=True)
    kto = shlex.join([sys.executable, "-m", "orchestrator.cli"])
    body = f"""set -u
mount -t tmpfs -o size=512k tmpfs {res}
export KTO_RESULTS={res}
KTO="{kto}"
{script}
"""
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", body],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_full_results_fs_is_exit_3_with_the_path_and_old_runs_survive(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = f"""
$KTO run --arch sparc64 --test rcutorture-onoff > {out}/first.out 2>&1; echo $? > {out}/first.rc
first=$(readlink $KTO_RESULTS/latest)
cp -r $KTO_RESULTS/$first {out}/first-copy
# fill the file system up
dd if=/dev/zero of=$KTO_RESULTS/filler bs=4k 2>/dev/null || true
$KTO run --arch sparc64 --test rcutorture-onoff > {out}/second.out 2> {out}/second.err
echo $? > {out}/second.rc
$KTO report $first > {out}/report-full.out 2> {out}/report-full.err; echo $? > {out}/report-full.rc
diff -r $KTO_RESULTS/$first {out}/first-copy > {out}/diff.out; echo $? > {out}/diff.rc
rm $KTO_RESULTS/filler
$KTO report $first > {out}/report.out 2>&1; echo $? > {out}/report.rc
"""
    res = _in_namespace(tmp_path, script)
    assert res.returncode == 0, res.stderr
    rc = {p.stem: int(p.read_text()) for p in out.glob("*.rc")}
    assert rc["first"] == 0, (out / "first.out").read_text()
    err = (out / "second.err").read_text()
    assert rc["second"] == 3, err
    assert "cannot write" in err and "No space left on device" in err, err
    assert "free space" in err and "Traceback" not in err, err
    # `kto report` on the full disk: the same clean error, and nothing of the old run lost.
    assert rc["report-full"] == 3 and "Traceback" not in (out / "report-full.err").read_text()
    assert rc["diff"] == 0, (out / "diff.out").read_text()
    # Space again: the old run is reported as it was (its job a SKIP).
    assert rc["report"] == 0, (out / "report.out").read_text()
    summary = json.loads((out / "first-copy" / "summary.json").read_text())
    assert [j["status"] for j in summary["jobs"]] == ["SKIP"]
