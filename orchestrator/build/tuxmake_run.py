"""Running tuxmake (Python API, runtime null, ccache wrapper) for one build step.

A trusted step (build/trust.py) runs in this process. An untrusted one runs in a sandbox,
`bwrap ... -- setpriv ... -- python -m orchestrator.build.tuxmake_run`, that holds when kto
runs as root:

- no privilege: as root, bubblewrap builds the namespaces and mounts, then setpriv drops to
  an unprivileged uid of its own (SANDBOX_UID: no capabilities, no supplementary groups,
  no_new_privs, so no setuid program gets them back); not as root, a user namespace with
  every capability dropped and no further user namespaces;
- the file system read-only (a ro bind of /, whose flags an unprivileged process cannot
  remount, not even from a user namespace of its own), with /root, /home, /run, /tmp and
  /var/tmp replaced by empty private dirs (credentials, sockets of root daemons) and only
  what the step needs bound back: kto, its venv, the tree (read-only, its .git with it),
  the fragments; writable: the step's build and output dirs and the compiler cache of the
  untrusted domain, never the trusted one (~/.ccache);
- own pid, network (none), IPC and UTS namespaces; it dies with kto (a pid namespace whose
  init dies takes every process in it);
- limits: processes (RLIMIT_NPROC, per uid: the sandbox uid runs nothing else), file size
  (RLIMIT_FSIZE), wall time and disk (kto watches both and kills the sandbox).

A patch's Makefile that reaches outside fails its build there (tests/faults/test_attack_*).
Files the step leaves are read by kto afterwards without following links (`open_beneath`).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import jail, progress
from orchestrator.build import kconfig
from orchestrator.build.estimate import BuildProgress
from orchestrator.build.trees import Tree
from orchestrator.config.arch import ArchProfile
from orchestrator.errors import BuildError, InfraError, KtoError
from orchestrator.orphan import reaper
from orchestrator.proc import require_tool

SANDBOX_UID = 64321  # KTO_SANDBOX_UID: a uid nothing else on the host uses
KTO_ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30


def tuxmake_build(
    tree: Tree,
    profile: ArchProfile,
    fragments: list[kconfig.Fragment],
    build_dir: Path,
    out_dir: Path,
    targets: list[str],
    jobs: int | None,
    timestamp: str,
) -> dict[str, Any]:
    """The arguments of tuxmake's Build for one step (data: it may run in a sandbox)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    return dict(
        tree=str(tree.worktree),
        output_dir=str(out_dir),
        build_dir=str(build_dir),
        target_arch=profile.build.tuxmake_arch,
        toolchain="gcc",
        wrapper="ccache",
        runtime="null",
        environment=stable_environment(tree, timestamp),
        kconfig=profile.build.kconfig_base,
        kconfig_add=[str(f.path) for f in fragments],
        kernel_image=profile.build.kernel_image,
        # "make:<target>" is a pass-through `make <target>` (tuxmake's make_target).
        targets=[t for t in targets if not t.startswith("make:")],
        make_target=[t.removeprefix("make:") for t in targets if t.startswith("make:")] or None,
        jobs=jobs or os.cpu_count() or 2,
        quiet=True,
        auto_cleanup=False,
    )


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """What one sandboxed step may use (environment variables override each)."""

    nproc: int = 4096  # KTO_SANDBOX_NPROC: processes of the sandbox uid
    fsize: int = 8 * GiB  # KTO_SANDBOX_FILE_GB: the largest file it may write
    wall_s: float = 6 * 3600.0  # KTO_SANDBOX_WALL_S
    disk: int = 30 * GiB  # KTO_SANDBOX_DISK_GB: how much the free space may shrink

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            nproc=int(_env_number("KTO_SANDBOX_NPROC", d.nproc)),
            fsize=int(_env_number("KTO_SANDBOX_FILE_GB", d.fsize / GiB) * GiB),
            wall_s=_env_number("KTO_SANDBOX_WALL_S", d.wall_s),
            disk=int(_env_number("KTO_SANDBOX_DISK_GB", d.disk / GiB) * GiB),
        )


def sandbox_uid() -> int | None:
    """The uid sandboxed steps run as when kto is root; None when kto is not (then a user
    namespace without capabilities)."""
    if os.geteuid() != 0:
        return None
    return int(_env_number("KTO_SANDBOX_UID", SANDBOX_UID))


@dataclass(frozen=True)
class Sandbox:
    """The sandbox of one untrusted step: its compiler cache, what it may read that a
    hidden dir would cover, and its limits."""

    ccache_dir: Path
    read_only: tuple[Path, ...] = ()
    limits: Limits = field(default_factory=Limits.from_env)
    uid: int | None = field(default_factory=sandbox_uid)
    # Where the step sees its build dir, when not at its own path: the trusted build dir it
    # was seeded from. The copy's tools (objtool, libsubcmd) recorded that dir's absolute
    # paths; seen elsewhere, make rebuilds objtool, and so every object on x86.
    build_dir_at: Path | None = None


def give(path: Path, uid: int | None) -> None:
    """Make a writable dir of the sandbox the sandbox uid's, never following a link: all of
    it when kto made it (a new dir, a build dir seeded from the trusted one), else the
    entries kto put at its top since (a build dir's .config)."""
    path.mkdir(parents=True, exist_ok=True)
    if uid is None:
        return
    if path.stat().st_uid != uid:
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), uid, uid)
    else:
        for entry in os.scandir(path):
            st = entry.stat(follow_symlinks=False)
            if st.st_uid != uid and not stat.S_ISLNK(st.st_mode):
                os.lchown(entry.path, uid, uid)
    os.lchown(path, uid, uid)


def reclaim(path: Path) -> None:
    """After a sandboxed step: its output dir becomes kto's (root's) again, and anything in
    it that is not a plain file or dir (a link to a host secret, a fifo) is removed before
    kto reads, copies or publishes what is there."""
    if not path.is_dir() or path.is_symlink():
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                os.unlink(p)
                continue
            if os.geteuid() == 0:
                os.lchown(p, 0, 0)
            os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o022)
    if os.geteuid() == 0:
        os.lchown(path, 0, 0)


def open_beneath(root: Path, rel: str) -> int:
    """An fd of the regular file root/rel, opened without following any link on the way
    (the sandbox owned every component under root)."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        parts = [p for p in Path(rel).parts if p not in ("", ".")]
        for i, part in enumerate(parts):
            if part == "..":
                raise OSError(f"{rel}: no '..' allowed")
            last = i == len(parts) - 1
            flags = os.O_NOFOLLOW | (os.O_RDONLY if last else os.O_PATH | os.O_DIRECTORY)
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{root / rel}: not a regular file")
        return fd
    except BaseException:
        os.close(fd)
        raise


def copy_beneath(root: Path, rel: str, dst: Path) -> None:
    with os.fdopen(open_beneath(root, rel), "rb") as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _hidden_dirs(needed: list[Path], uid: int | None) -> list[str]:
    """jail.HIDDEN, plus the topmost dir on the way to a needed path that the sandbox uid could
    not pass through (mode without o+x, as /root usually is): it becomes an empty dir and
    the needed path is bound back into it."""
    hidden = jail.hidden()
    if uid is None:
        return hidden
    for path in needed:
        for anc in list(reversed(path.parents))[1:]:
            if any(anc == Path(h) or anc.is_relative_to(h) for h in hidden):
                break
            with contextlib.suppress(OSError):
                if not os.stat(anc).st_mode & 0o001:
                    hidden.append(str(anc))
                    break
    return hidden


def sandbox_argv(params: dict[str, Any], box: Sandbox | None = None) -> list[str]:
    """bwrap (+ setpriv as root) around `python -m orchestrator.build.tuxmake_run`."""
    box = box or Sandbox(ccache_dir=Path(params["output_dir"]) / ".ccache")
    bwrap = require_tool("bwrap", "bubblewrap")
    writable = [Path(params[k]) for k in ("build_dir", "output_dir")] + [box.ccache_dir]
    inside = {Path(params["build_dir"]): box.build_dir_at} if box.build_dir_at else {}
    readable = [
        KTO_ROOT,
        Path(sys.prefix),
        Path(sys.base_prefix),  # the interpreter the venv was made from (pyenv: in /root)
        Path(sys.executable).parent,
        Path(os.path.realpath(sys.executable)).parent,
        Path(params["tree"]),
        *[Path(f) for f in params.get("kconfig_add", [])],
        *box.read_only,
    ]
    readable = [p for p in dict.fromkeys(readable) if p.exists()]
    seen = [inside.get(w, w) for w in writable]
    hidden = _hidden_dirs([*readable, *writable, *seen], box.uid)
    argv = jail.base(bwrap, hidden, 64 << 20)
    argv += jail.ways_in([*readable, *seen], hidden)
    for r in readable:
        argv += ["--ro-bind", str(r), str(r)]
    for w, at in zip(writable, seen, strict=True):
        give(w, box.uid)
        argv += ["--bind", str(w), str(at)]
    argv += [*jail.NAMESPACES, "--chdir", str(KTO_ROOT)]
    if box.uid is None:
        argv += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        return [*argv, "--", sys.executable, "-m", "orchestrator.build.tuxmake_run"]
    # Then, as that uid, no further namespaces (tuxmake's offline mode would `unshare
    # --map-root-user`; without it tuxmake builds directly, the network being gone already).
    return [
        *argv,
        "--",
        *jail.drop_to(box.uid),
        "--",
        *jail.no_more_userns(bwrap),
        "--",
        sys.executable,
        "-m",
        "orchestrator.build.tuxmake_run",
    ]


def stable_environment(tree: Tree, timestamp: str) -> dict[str, str]:
    """Environment values that feed compile command lines or generated headers, fixed per
    tree, so that a rebuild recompiles only what a patch changed (see docs/architecture.md).

    - CCACHE_BASEDIR: tuxmake's ccache wrapper sets CCACHE_DIR (~/.ccache); the base dir
      makes hits independent of where the tree lives;
    - KCFLAGS empty: tuxmake's default puts the build directory into every compile command,
      so a build directory could never move and two config directories never share ccache;
    - KBUILD_BUILD_TIMESTAMP / _VERSION / _USER / _HOST: tuxmake's timestamp is the tree
      HEAD's (new with every applied series) and kbuild counts links in .version, each of
      which rewrites include/generated/compile.h and recompiles init/version.o.
    """
    return {
        "CCACHE_BASEDIR": str(tree.worktree),
        "KCFLAGS": "",
        "KBUILD_BUILD_TIMESTAMP": timestamp,
        "KBUILD_BUILD_VERSION": "1",
        "KBUILD_BUILD_USER": "kto",
        "KBUILD_BUILD_HOST": "kto",
    }


def _last_log_line(log: Path) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 400))
            lines = fh.read().decode(errors="replace").strip().splitlines()
        return f"({lines[-1].strip()[:70]})" if lines else ""
    except OSError:
        return ""


class Step:
    """One tuxmake step, here or in the sandbox; `failed` as tuxmake's Build says."""

    def __init__(self, params: dict[str, Any], sandbox: Sandbox | None) -> None:
        self.params = params
        self.sandbox = sandbox
        self.failed = True

    def run(self) -> None:
        if self.sandbox is None:
            from tuxmake.build import Build  # heavy import: only when building

            build = Build(**self.params)
            build.run()
            # tuxmake turns SIGINT/SIGTERM into a failed command and goes on: kto stops.
            if getattr(build, "interrupted", False):
                raise InfraError("the build was interrupted (SIGINT/SIGTERM)")
            self.failed = bool(build.failed)
            return
        self._run_sandboxed(self.sandbox)

    def _run_sandboxed(self, box: Sandbox) -> None:
        out = Path(self.params["output_dir"])
        tmp = out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        argv = sandbox_argv(self.params, box)
        give(tmp, box.uid)
        params = dict(self.params)
        if box.build_dir_at:
            params["build_dir"] = str(box.build_dir_at)
        job = {
            "params": params,
            "limits": asdict(box.limits),
            # HOME and the temp dirs in the step's own dir; the untrusted compiler cache.
            "env": {
                "HOME": str(tmp),
                "TMPDIR": str(tmp),
                "XDG_CACHE_HOME": str(tmp),
                "CCACHE_DIR": str(box.ccache_dir),
                # The kernel's setlocalversion asks git about the (root's, read-only) tree.
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "safe.directory",
                "GIT_CONFIG_VALUE_0": "*",
            },
        }
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=err, stderr=err, text=True, cwd=KTO_ROOT
            )
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(job))
                proc.stdin.close()
                stopped = _watch(proc, box.limits, Path(self.params["build_dir"]))
            finally:
                if proc.poll() is None:  # kto interrupted: bwrap's pid namespace goes too
                    proc.kill()
                    proc.wait()
            err.seek(0)
            said = err.read().strip()[-500:]
        reclaim(out)
        if stopped:
            # What a runaway step left (a disk filled with junk) is not kept.
            shutil.rmtree(self.params["build_dir"], ignore_errors=True)
            raise BuildError(
                f"the sandboxed build was stopped: {stopped}",
                hint="a series whose build needs more can be given more with "
                "KTO_SANDBOX_WALL_S / KTO_SANDBOX_DISK_GB / KTO_SANDBOX_NPROC",
            )
        rc = proc.returncode
        if rc not in (0, 1) or (rc == 1 and not (out / "build.log").exists()):
            raise InfraError(
                f"the build sandbox failed (exit {rc}): {said}",
                hint="bubblewrap and setpriv must work here (`make setup`)",
            )
        self.failed = rc != 0


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


def _watch(proc: subprocess.Popen[str], limits: Limits, build_dir: Path) -> str | None:
    """Wait for the sandbox; kill it (and so its pid namespace) when it runs too long or
    shrinks the free disk space by more than its share. Why it was stopped, or None."""
    start = time.monotonic()
    free0 = _free(build_dir)
    while True:
        try:
            proc.wait(timeout=0.5)
            return None
        except subprocess.TimeoutExpired:
            pass
        used = free0 - _free(build_dir)
        why = None
        if used > limits.disk:
            why = f"it used more than {limits.disk / GiB:.1f} GiB of disk (KTO_SANDBOX_DISK_GB)"
        elif time.monotonic() - start > limits.wall_s:
            why = f"it ran longer than {limits.wall_s:.0f} s (KTO_SANDBOX_WALL_S)"
        if why:
            proc.kill()
            proc.wait()
            return why


def run_tuxmake(
    build: Any,
    log: Path,
    label: str,
    timings: dict[str, float],
    key: str,
    estimate: BuildProgress | None = None,
) -> None:
    def ticker() -> str:
        tail = _last_log_line(log)
        return estimate.ticker(tail) if estimate else tail

    with progress.phase(label, timings, key=key, ticker=ticker, every=20), reaper():
        try:
            build.run()
        except KtoError:
            raise
        except Exception as exc:  # tuxmake raises its own exception types on setup problems
            raise InfraError(f"tuxmake could not run the {label} step: {exc}") from exc


def errors_excerpt(log: Path, limit: int = 12) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    errs = [
        ln
        for ln in lines
        if "error:" in ln or "Error " in ln or "*** " in ln or ln.startswith("make")
    ]
    return "\n".join((errs or lines)[-limit:])


def _main() -> int:
    """Inside the sandbox: limits and environment, then one step from its parameters on
    stdin; 1 if it failed."""
    job = json.loads(sys.stdin.read())
    limits = job["limits"]
    for res, value in (
        (resource.RLIMIT_NPROC, limits["nproc"]),
        (resource.RLIMIT_FSIZE, limits["fsize"]),
        (resource.RLIMIT_CORE, 0),
    ):
        hard = resource.getrlimit(res)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(res, (value, value))
    os.environ.update(job["env"])
    from tuxmake.build import Build

    build = Build(**job["params"])
    build.run()
    return 1 if build.failed else 0


if __name__ == "__main__":
    sys.exit(_main())
