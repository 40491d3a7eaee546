"""A series from the mailing list is someone else's code run on the build host. Built in the
sandbox, a patch whose Makefile writes outside the build and opens a network socket fails
its build with the Makefile's own message, and the host is untouched. The trust policy
(build/trust.py) that decides which builds are sandboxed is tested here too; each escape
route has its own real build in tests/faults/test_attack_*.py (docs/security.md)."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _escaping_series(tmp_path: Path, marker: Path, port: int) -> Path:
    from orchestrator.build.trees import resolve_tree, tree_lock
    from orchestrator.git import Git

    tree = resolve_tree("debian-6.1")
    git = Git(tree.worktree)
    block = (
        f"KTO_ESCAPE := $(shell touch {marker} 2>/dev/null && echo wrote)\n"
        f"KTO_NET := $(shell timeout 3 bash -c 'echo x > /dev/tcp/127.0.0.1/{port}' "
        "2>/dev/null && echo connected)\n"
        "ifneq ($(KTO_ESCAPE) $(KTO_NET),wrote connected)\n"
        "$(error kto sandbox test: this build cannot reach outside: "
        "write=$(KTO_ESCAPE) net=$(KTO_NET))\n"
        "endif\n"
    )
    with tree_lock(tree):
        git("checkout", "-q", "-B", "kto/work", tree.base_commit)
        mk = tree.worktree / "Makefile"
        original = mk.read_text()
        lines = original.splitlines(keepends=True)
        mk.write_text("".join(lines[:6]) + block + "".join(lines[6:]))
        diff = git.out("diff", "--", "Makefile")
        git("checkout", "-q", "--", "Makefile")
    d = tmp_path / "escape"
    d.mkdir()
    (d / "0001-escape.patch").write_text(
        "From: Someone <someone@example.org>\nSubject: [PATCH] kbuild: reach outside\n\n"
        "A hostile patch for kto's sandbox test.\n---\n" + diff + "\n"
    )
    return d


@pytest.mark.integration
def test_sandboxed_build_cannot_write_outside_or_reach_the_network(tmp_path: Path) -> None:
    marker = Path("/var/tmp") / f"kto-sandbox-escape-{uuid.uuid4().hex}"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        series = _escaping_series(tmp_path, marker, port)
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrator.cli",
                "build",
                "--arch",
                "x86_64",
                "--patches",
                str(series),
                "--sandbox",
                "-q",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected from the build
    assert res.returncode == 5, res.stderr[-3000:]
    assert "this build cannot reach outside: write= net=" in res.stderr, res.stderr[-3000:]
    assert not marker.exists(), "the sandboxed build wrote outside its directories"


@pytest.mark.integration
def test_nothing_in_the_sandbox_outlives_the_build_that_started_it(tmp_path: Path) -> None:
    """The sandbox runs make in a new session, out of reach of a process-group kill; the
    pid namespace is what takes make's whole tree down when the build process dies (a
    matrix stopping its build, a SIGKILLed `kto build`)."""
    import os
    import signal
    import time

    from orchestrator.build.tuxmake_run import sandbox_argv

    dirs = {k: str(tmp_path / k) for k in ("tree", "build_dir", "output_dir")}
    argv = sandbox_argv(dirs)
    argv = argv[: argv.index(sys.executable)]  # the sandbox, whatever it runs: a shell here
    secs = 400000 + uuid.uuid4().int % 100000  # this test's own "compilers"
    inner = f"sleep {secs} & sleep {secs} & wait"  # make's place: a shell with children
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); "
         "time.sleep(600)", *argv, "sh", "-c", inner],
        start_new_session=True,
    )  # fmt: skip

    def left() -> list[str]:
        res = subprocess.run(["pgrep", "-x", "-f", f"sleep {secs}"], capture_output=True, text=True)
        return res.stdout.split()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not left():
        time.sleep(0.1)
    assert len(left()) == 2, "the sandboxed shell never started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and left():
        time.sleep(0.1)
    assert not left(), "processes of the sandbox outlived the build that started them"


@pytest.mark.parametrize(
    ("trusted", "kind", "asked", "sandboxed"),
    [
        (True, "none", None, False),  # a commit of a trusted tree
        (True, "git-range", None, False),  # a range of a trusted tree
        (True, "mbox", None, True),
        (True, "dir", None, True),
        (False, "none", None, True),  # a ref of a tree nobody declared trusted (bisect probes)
        (False, "git-range", None, True),
        (True, "none", True, True),  # the matrix asks for it
        (True, "dir", False, False),  # --no-sandbox on a patch dir: allowed, recorded
    ],
)
def test_the_trust_policy(trusted: bool, kind: str, asked: bool | None, sandboxed: bool) -> None:
    from orchestrator.build.trust import UNTRUSTED, decide

    t = decide("t", trusted, kind, asked)
    assert t.sandbox is sandboxed
    assert (t.domain == UNTRUSTED) is sandboxed
    assert t.to_record()["reason"]


def test_no_sandbox_for_a_mail_needs_the_user_to_vouch_for_it() -> None:
    from orchestrator.build.trust import decide
    from orchestrator.errors import UserError

    with pytest.raises(UserError, match="--i-trust-this-series"):
        decide("debian-6.1", True, "mbox", False)
    t = decide("debian-6.1", True, "mbox", False, i_trust_this_series=True)
    assert not t.sandbox and t.vouched and "--no-sandbox" in t.reason


def test_an_untrusted_build_without_bwrap_is_exit_6_never_an_unsandboxed_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bubblewrap on PATH: an untrusted build stops with exit 6 naming the package (the
    check kernel.py makes before touching the tree)."""
    from orchestrator.build import trust

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(trust.MissingDependency) as err:
        trust.require_sandbox()
    assert err.value.exit_code == 6
    assert "bubblewrap" in str(err.value)


@pytest.mark.integration
def test_qemu_runs_unprivileged_in_its_own_seccomp_sandbox(tmp_path: Path) -> None:
    """A guest that took over QEMU (a TCG or device-model bug) holds QEMU's privileges:
    while a guest runs, QEMU is KTO_QEMU_UID, not root, with no capability and no group, in
    seccomp filter mode (-sandbox), and holds no descriptor of kto's but the job's files and
    its console. Before issue 27 QEMU ran as root (all capabilities), with no -sandbox."""
    import os
    import re
    import time

    from orchestrator.vm.session import qemu_uid

    uid = qemu_uid()
    assert uid is not None, "this test is about kto running as root"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "boot", "--arch", "x86_64", "--", "sleep", "30"],
        cwd=REPO,
        env={**os.environ, "KTO_RESULTS": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pids: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not pids:
            res = subprocess.run(
                ["pgrep", "-f", f"qemu-system-.*guest=kto:{tmp_path}"],
                capture_output=True,
                text=True,
            )
            pids = res.stdout.split()
            time.sleep(0.2)
        assert pids, "QEMU never started"
        pid = pids[0]
        status = Path(f"/proc/{pid}/status").read_text()
        field = dict(re.findall(r"^(\w+):[ \t]*(.*)$", status, re.M))
        assert field["Uid"].split() == [str(uid)] * 4, field["Uid"]
        assert field["Gid"].split() == [str(uid)] * 4, field["Gid"]
        assert field["Groups"] == ""
        assert int(field["CapEff"], 16) == 0 and int(field["CapPrm"], 16) == 0
        assert field["Seccomp"] == "2", "QEMU runs without its seccomp sandbox"
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"-sandbox" in cmdline
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        files = [f for f in fds if f.startswith("/") and not f.startswith("/dev/")]
        assert all(str(tmp_path) in f or "/builds/" in f for f in files), files
    finally:
        proc.terminate()
        proc.wait(timeout=60)
