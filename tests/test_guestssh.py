from __future__ import annotations

import socket
import subprocess

import paramiko

from orchestrator.guest import ssh as guestssh
from orchestrator.guest.initramfs import job_archive, job_script


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
    data = job_archive("command", "true", net=True, authorized_key="ssh-ed25519 AAAA kto")
    (tmp_path / "job.cpio").write_bytes(data)
    listing = subprocess.run(["cpio", "-itv"], input=data, capture_output=True, check=True)
    assert b"root/.ssh/authorized_keys" in listing.stdout
    assert b"-rw-------" in listing.stdout.split(b"authorized_keys")[0].splitlines()[-1]
