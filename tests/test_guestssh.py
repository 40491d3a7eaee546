from __future__ import annotations

import socket
import subprocess
import threading
import time

import paramiko
import pytest

from orchestrator.errors import InfraError
from orchestrator.guest import ssh as guestssh
from orchestrator.guest.initramfs import job_archive, job_script
from orchestrator.guest.ssh import GuestSSH, HostKey, make_host_key


def test_client_key_is_made_once_and_loads_in_paramiko() -> None:
    path, pub = guestssh.ensure_client_key()
    assert pub.startswith("ssh-ed25519 ") and pub.endswith(" kto")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again_path, again_pub = guestssh.ensure_client_key()
    assert (again_path, again_pub) == (path, pub)
    key = paramiko.Ed25519Key.from_private_key_file(str(path))
    assert pub.split()[1] == key.get_base64()


def test_free_port_is_loopback_and_free() -> None:
    port = guestssh.free_loopback_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free


def test_job_for_network_sets_vars_and_authorized_key(tmp_path) -> None:
    script = job_script("command", "true", net=True, hold=300)
    out = subprocess.run(
        ["sh", "-c", f'{script}\nprintf "%s|%s" "$KTO_NET" "$KTO_HOLD"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "1|300"
    data = job_archive("command", command="true", net=True, authorized_key="ssh-ed25519 AAAA kto")
    (tmp_path / "job.cpio").write_bytes(data)
    listing = subprocess.run(["cpio", "-itv"], input=data, capture_output=True, check=True)
    assert b"root/.ssh/authorized_keys" in listing.stdout
    assert b"-rw-------" in listing.stdout.split(b"authorized_keys")[0].splitlines()[-1]
    keyed = job_archive("command", command="true", net=True, host_key=make_host_key().dropbear)
    listing = subprocess.run(["cpio", "-itv"], input=keyed, capture_output=True, check=True)
    line = next(x for x in listing.stdout.splitlines() if x.endswith(b"_ed25519_host_key"))
    assert line.startswith(b"-rw-------"), line


def _serve_once(host_key, port_box: list[int], ready: threading.Event) -> None:
    """A one-connection SSH server on loopback that offers `host_key` and takes any key."""
    import paramiko

    class Accept(paramiko.ServerInterface):
        def check_auth_publickey(self, username, key):  # type: ignore[no-untyped-def]
            return paramiko.AUTH_SUCCESSFUL

        def get_allowed_auths(self, username):  # type: ignore[no-untyped-def]
            return "publickey"

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port_box.append(srv.getsockname()[1])
        ready.set()
        srv.settimeout(20)
        conn, _ = srv.accept()
        t = paramiko.Transport(conn)
        t.add_server_key(host_key)
        try:
            t.start_server(server=Accept())
            t.accept(5)
        except (paramiko.SSHException, EOFError):
            pass
        finally:
            time.sleep(0.5)
            t.close()


def _pkey(h: HostKey):  # type: ignore[no-untyped-def]
    """The paramiko key of a dropbear host key file, read back from that file's bytes."""
    import paramiko
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = h.dropbear
    kind_len = int.from_bytes(data[:4], "big")
    assert data[4 : 4 + kind_len] == b"ssh-ed25519"
    rest = data[4 + kind_len :]
    assert int.from_bytes(rest[:4], "big") == 64 and len(rest) == 68
    seed, pub = rest[4:36], rest[36:]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    k = paramiko.Ed25519Key(data=paramiko.Message(_ossh_pub(pub)).asbytes())
    assert k.get_base64() == h.public.split()[1]  # the file's public half is the pinned one
    return paramiko.Ed25519Key.from_private_key(_ossh_private(key))


def _ossh_pub(raw: bytes) -> bytes:
    return (11).to_bytes(4, "big") + b"ssh-ed25519" + (32).to_bytes(4, "big") + raw


def _ossh_private(key):  # type: ignore[no-untyped-def]
    import io

    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return io.StringIO(pem.decode())


@pytest.mark.parametrize("same_key", [True, False], ids=["pinned", "impostor"])
def test_guest_host_key_is_pinned(same_key: bool) -> None:
    pinned = make_host_key()
    offered = pinned if same_key else make_host_key()
    ports: list[int] = []
    ready = threading.Event()
    server = threading.Thread(target=_serve_once, args=(_pkey(offered), ports, ready))
    server.start()
    ready.wait(10)
    ssh = GuestSSH(ports[0], pinned.public)
    try:
        if same_key:
            ssh.connect(timeout=15)
            assert ssh._client is not None
        else:
            with pytest.raises(InfraError, match="not the one kto gave this boot"):
                ssh.connect(timeout=15)
    finally:
        ssh.close()
        server.join(30)
