"""`kto workers`: Dask workers for `kto matrix --scheduler` / `kto bisect --scheduler`.

- `kto workers run ADDR`: on this host, a `dask worker` for the scheduler at ADDR that
  declares what this host can do as Dask resources: `arch-<arch>=1` for each arch whose
  QEMU and cross compiler are installed, `kvm=1` when hardware KVM is usable (the cluster
  code steers jobs by them). For a process manager (systemd, supervisord) to keep running.
- `kto workers start HOST... --scheduler ADDR`: the same on other hosts over SSH
  (paramiko), for users without a process manager: `kto workers run` started in the
  background in each host's kto checkout (`--kto-dir`, default: this checkout's path), its
  log in ~/.cache/kto/dask-worker.log there, in a session of its own (`kill -TERM -PID`
  stops it and its nanny's worker). The host key must be known (~/.ssh/known_hosts): an
  unknown or changed key is refused, never added.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

from orchestrator.errors import EXIT_OK, InfraError, MissingDependency, UserError
from orchestrator.records import exits

REPO = Path(__file__).resolve().parents[2]


DESCRIPTION = __doc__

FORMATTER = argparse.RawDescriptionHelpFormatter


def add_arguments(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    r = verbs.add_parser("run", help="run a dask worker here, with this host's resources")
    r.add_argument("scheduler", help="tcp://HOST:8786")
    r.add_argument("--nthreads", type=int, default=1, help="jobs at once (default 1)")
    r.add_argument("--dry-run", action="store_true", help="print the dask worker command")
    s = verbs.add_parser("start", help="start `kto workers run` on hosts over SSH")
    s.add_argument("hosts", nargs="+", metavar="HOST", help="[user@]host[:port]")
    s.add_argument("--scheduler", required=True, help="tcp://HOST:8786, as the workers see it")
    s.add_argument("--kto-dir", default=str(REPO), help="the kto checkout on the hosts")
    s.add_argument("--identity", type=Path, help="SSH private key (default: agent, ~/.ssh)")
    s.add_argument("--nthreads", type=int, default=1, help="jobs at once per worker")
    s.add_argument("--timeout", type=float, default=20, help="SSH connect timeout (s)")
    s.add_argument(
        "--known-hosts",
        type=Path,
        help="the hosts' keys (default ~/.ssh/known_hosts): an unknown key is refused",
    )


def resources() -> dict[str, int]:
    """What this host offers: the arches it can build and boot, and hardware KVM."""
    from orchestrator.config.arch import known_arches, load_profile
    from orchestrator.vm.accel import HostFacts, kvm_problem

    out: dict[str, int] = {}
    host = HostFacts.probe()
    for arch in known_arches():
        p = load_profile(arch)
        if shutil.which(p.qemu.binary) and shutil.which(f"{p.target.triplet}-gcc"):
            out[f"arch-{arch}"] = 1
            if kvm_problem(arch, host) is None:
                out["kvm"] = 1
    return out


def worker_argv(scheduler: str, nthreads: int) -> list[str]:
    if nthreads < 1:
        raise UserError(f"--nthreads {nthreads}: at least 1")
    res = " ".join(f"{k}={v}" for k, v in sorted(resources().items()))
    dask = Path(sys.executable).parent / "dask"
    argv = [str(dask) if dask.exists() else "dask", "worker", scheduler]
    argv += ["--nthreads", str(nthreads), "--name", f"kto-{socket.gethostname()}"]
    return argv + (["--resources", res] if res else [])


def _target(host: str) -> tuple[str | None, str, int]:
    user, _, rest = host.rpartition("@")
    name, _, port = rest.partition(":")
    try:
        return user or None, name, int(port or 22)
    except ValueError:
        raise UserError(f"{host}: bad port", hint="give [user@]host[:port]") from None


def start_on(host: str, args: argparse.Namespace) -> str:
    """Start the worker on one host; what it said (the worker's pid)."""
    import paramiko

    user, name, port = _target(host)
    client = paramiko.SSHClient()
    if args.known_hosts:
        try:
            client.load_host_keys(str(args.known_hosts))
        except OSError as exc:
            raise UserError(f"--known-hosts {args.known_hosts}: {exc}") from exc
    else:
        client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            name,
            port=port,
            username=user,
            key_filename=str(args.identity) if args.identity else None,
            look_for_keys=args.identity is None,
            timeout=args.timeout,
            banner_timeout=args.timeout,
            auth_timeout=args.timeout,
        )
    except paramiko.SSHException as exc:
        raise InfraError(
            f"{host}: SSH refused ({exc})",
            hint="is the host key in ~/.ssh/known_hosts (ssh-keyscan), and the key authorised?",
        ) from exc
    except OSError as exc:
        raise InfraError(f"{host}: cannot connect ({exc})") from exc
    try:
        kto = shlex.quote(args.kto_dir)
        run = (
            f"cd {kto} && mkdir -p ~/.cache/kto && setsid nohup .venv/bin/python -m "
            f"orchestrator.cli workers run {shlex.quote(args.scheduler)} "
            f"--nthreads {int(args.nthreads)} "
            "> ~/.cache/kto/dask-worker.log 2>&1 < /dev/null & echo $!"
        )
        _stdin, stdout, stderr = client.exec_command(f"sh -c {shlex.quote(run)}", timeout=60)
        out = stdout.read().decode(errors="replace").strip()
        status = stdout.channel.recv_exit_status()
        if status != 0 or not out.isdigit():
            err = stderr.read().decode(errors="replace").strip()
            raise InfraError(
                f"{host}: could not start the worker (exit {status}): {err or out}",
                hint=f"is kto set up in {args.kto_dir} there (make setup)?",
            )
        return out
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    if args.verb == "run":
        argv = worker_argv(args.scheduler, args.nthreads)
        if args.dry_run:
            print(shlex.join(argv))
            return EXIT_OK
        try:
            os.execvp(argv[0], argv)  # the worker is this process: a process manager sees it
        except OSError as exc:
            raise MissingDependency("`dask` (Python package distributed)", "none: pip") from exc
    failed = 0
    for host in args.hosts:
        try:
            pid = start_on(host, args)
        except InfraError as exc:
            print(f"kto workers: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{host}: dask worker started (pid {pid}) for {args.scheduler}")
    return exits.of_hosts(failed)
