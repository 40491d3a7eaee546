"""`kto workers`: this host's Dask resources, and `kto workers start` over real SSH (a
paramiko server on loopback that runs what it is sent) bringing a real `dask worker` to a
real scheduler, plus an unknown host key refused."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from orchestrator.commands import workers
from orchestrator.config.arch import known_arches

from .integration.kto_cli import kto

DASK = Path(sys.executable).parent / "dask"


def test_resources_name_the_arches_this_host_has() -> None:
    res = workers.resources()
    # make setup installs QEMU and the cross compiler of every arch kto has a profile for
    assert {f"arch-{arch}" for arch in known_arches()} <= set(res), res
    argv = workers.worker_argv("tcp://127.0.0.1:8786", 2)
    assert argv[1:3] == ["worker", "tcp://127.0.0.1:8786"] and "--resources" in argv
    with pytest.raises(Exception, match="--nthreads 0"):
        workers.worker_argv("tcp://x:1", 0)


class _Exec(paramiko.ServerInterface):
    def check_auth_publickey(self, username, key):  # type: ignore[no-untyped-def]
        return paramiko.AUTH_SUCCESSFUL

    def get_allowed_auths(self, username):  # type: ignore[no-untyped-def]
        return "publickey"

    def check_channel_request(self, kind, chanid):  # type: ignore[no-untyped-def]
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):  # type: ignore[no-untyped-def]
        def go() -> None:
            res = subprocess.run(command.decode(), shell=True, capture_output=True)
            channel.sendall(res.stdout)
            channel.sendall_stderr(res.stderr)
            channel.send_exit_status(res.returncode)
            channel.close()

        threading.Thread(target=go, daemon=True).start()
        return True


@contextlib.contextmanager
def _ssh_server(key: paramiko.PKey) -> Iterator[int]:
    """An SSH server on a loopback port that serves every connection until the `with` ends.

    It has no deadline of its own: how long the client takes to connect (a `kto` start on a
    loaded machine) is none of its business. Each connection is served on its own thread, so a
    client that stalls mid-handshake (or is refused) does not hold the next one back."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        # a short accept timeout only so that the loop sees `stop`; not a limit on clients
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: the test is over
            t = paramiko.Transport(conn)
            t.add_server_key(key)
            transports.append(t)
            # with an event: returns at once, the handshake goes on in the transport's thread
            t.start_server(event=threading.Event(), server=_Exec())

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        th.join()
        srv.close()
        for t in transports:
            t.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    """pid runs (a zombie nobody has reaped yet has ended: its /proc entry stays)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids(out: str) -> list[int]:
    """The worker pids in `kto workers start` output ("HOST: dask worker started (pid N) ...")."""
    return [int(m) for m in re.findall(r"\(pid (\d+)\)", out)]


# Waits below end on an event (the worker registered, a process ended), not on a guess of how
# long a loaded machine takes; these ceilings only stop a broken feature hanging the suite.
CEILING_S = 600.0


def test_start_brings_a_worker_to_the_scheduler_over_ssh(tmp_path: Path) -> None:
    host_key = paramiko.RSAKey.generate(2048)
    client_key = paramiko.RSAKey.generate(2048)
    client_key.write_private_key_file(str(tmp_path / "id"))
    sport = _free_port()
    sched = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(sport), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker_log = Path.home() / ".cache" / "kto" / "dask-worker.log"  # workers.start_on's
    started: list[int] = []  # every worker a `kto workers start` here said it started
    with _ssh_server(host_key) as port:
        try:
            known = tmp_path / "known_hosts"
            known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
            address = f"tcp://127.0.0.1:{sport}"
            args = ["--scheduler", address, "--identity", str(tmp_path / "id")]
            args += ["--timeout", str(CEILING_S)]  # SSH connect/banner/auth: no 20 s guess
            # an unknown host key: refused, exit 3, nothing started
            other = tmp_path / "other_hosts"
            other.write_text("")
            host = f"127.0.0.1:{port}"
            bad = kto("workers", "start", host, *args, "--known-hosts", str(other))
            started += _pids(bad.stdout)  # none, unless the refusal is broken
            assert bad.returncode == 3 and "SSH refused" in bad.stderr, bad.stdout + bad.stderr
            res = kto("workers", "start", host, *args, "--known-hosts", str(known))
            started += _pids(res.stdout)
            assert res.returncode == 0, res.stdout + res.stderr
            (pid,) = _pids(res.stdout)
            from distributed import Client

            with Client(address, timeout=CEILING_S) as c:
                deadline = time.monotonic() + CEILING_S
                info: dict = {}
                # until the worker registers, or its process ends (a worker that cannot start)
                while not info and _alive(pid) and time.monotonic() < deadline:
                    info = c.scheduler_info()["workers"]
                    time.sleep(0.5)
                info = info or c.scheduler_info()["workers"]
                log = worker_log.read_text(errors="replace")[-3000:] if worker_log.exists() else ""
                assert len(info) == 1, f"workers: {info}; worker alive: {_alive(pid)}\n{log}"
                (w,) = info.values()
                assert w["name"].startswith("kto-"), w
                assert {f"arch-{a}" for a in known_arches()} <= set(w["resources"]), w
        finally:
            for pid in started:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)  # its own session: the nanny and its worker
            deadline = time.monotonic() + CEILING_S
            while time.monotonic() < deadline and any(map(_alive, started)):
                time.sleep(0.2)
            outlived = [pid for pid in started if _alive(pid)]
            os.killpg(sched.pid, signal.SIGTERM)
            sched.wait(CEILING_S)
            assert not outlived, f"worker(s) {outlived} outlived SIGTERM"


def test_a_bad_scheduler_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.errors import UserError
    from orchestrator.matrix.cluster import connect

    for bad in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv("KTO_SCHEDULER_TIMEOUT", bad)
        with pytest.raises(UserError, match=r"KTO_SCHEDULER_TIMEOUT=.* is not a number") as err:
            connect("tcp://127.0.0.1:9")
        assert err.value.exit_code == 2
