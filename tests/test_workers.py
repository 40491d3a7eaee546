"""`kto workers`: this host's Dask resources, and `kto workers start` over real SSH (a
paramiko server on loopback that runs what it is sent) bringing a real `dask worker` to a
real scheduler, plus an unknown host key refused."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from orchestrator.commands import workers

from .integration.kto_cli import kto

DASK = Path(sys.executable).parent / "dask"


def test_resources_name_the_arches_this_host_has() -> None:
    res = workers.resources()
    # make setup installs QEMU and the cross compilers of all three arches
    assert {"arch-x86_64", "arch-arm64", "arch-sparc64"} <= set(res), res
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


def _ssh_server(key: paramiko.PKey) -> tuple[int, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve() -> None:
        srv.settimeout(30)
        with srv, contextlib.suppress(OSError):
            while True:
                conn, _ = srv.accept()
                t = paramiko.Transport(conn)
                t.add_server_key(key)
                with contextlib.suppress(paramiko.SSHException, EOFError):
                    t.start_server(server=_Exec())

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return port, th


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_start_brings_a_worker_to_the_scheduler_over_ssh(tmp_path: Path) -> None:
    host_key = paramiko.RSAKey.generate(2048)
    port, _ = _ssh_server(host_key)
    client_key = paramiko.RSAKey.generate(2048)
    client_key.write_private_key_file(str(tmp_path / "id"))
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    sport = _free_port()
    sched = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(sport), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid = None
    try:
        address = f"tcp://127.0.0.1:{sport}"
        args = ["--scheduler", address, "--identity", str(tmp_path / "id")]
        # an unknown host key: refused, exit 3, nothing started
        other = tmp_path / "other_hosts"
        other.write_text("")
        bad = kto("workers", "start", f"127.0.0.1:{port}", *args, "--known-hosts", str(other))
        assert bad.returncode == 3 and "SSH refused" in bad.stderr, bad.stderr
        res = kto("workers", "start", f"127.0.0.1:{port}", *args, "--known-hosts", str(known))
        assert res.returncode == 0, res.stdout + res.stderr
        pid = int(res.stdout.split("(pid ")[1].split(")")[0])
        from distributed import Client

        with Client(address, timeout=30) as c:
            deadline = time.monotonic() + 60
            info: dict = {}
            while time.monotonic() < deadline:
                info = c.scheduler_info()["workers"]
                if info:
                    break
                time.sleep(0.5)
            (w,) = info.values()
            assert w["name"].startswith("kto-") and w["resources"].get("arch-x86_64") == 1, w
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)  # its own session: the nanny and its worker
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.2)
            assert not Path(f"/proc/{pid}").exists(), "the worker outlived SIGTERM"
        os.killpg(sched.pid, signal.SIGTERM)
        sched.wait(20)


def test_a_bad_scheduler_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.errors import UserError
    from orchestrator.matrix.cluster import connect

    for bad in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv("KTO_SCHEDULER_TIMEOUT", bad)
        with pytest.raises(UserError, match=r"KTO_SCHEDULER_TIMEOUT=.* is not a number") as err:
            connect("tcp://127.0.0.1:9")
        assert err.value.exit_code == 2
