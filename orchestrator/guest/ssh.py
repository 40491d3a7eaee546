"""Reaching a guest over SSH (paramiko): kto's client key, a loopback port, commands, files.

The guest runs dropbear behind QEMU user networking; the only way in is a forward bound to
127.0.0.1. kto logs in as root with its own ed25519 key, whose public half is put into the
guest's /root/.ssh/authorized_keys by the job archive. The guest's host key is pinned: kto
makes a fresh one for every boot, ships it in the job archive (dropbear's own file format)
and accepts no other key on that port.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import atomic
from orchestrator.errors import InfraError
from orchestrator.paths import cache_dir

# paramiko logs connection attempts to a guest that is still booting as tracebacks; kto
# reports the outcome itself.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def client_key_path() -> Path:
    return cache_dir() / "ssh" / "id_ed25519"


def ensure_client_key() -> tuple[Path, str]:
    """(private key path, OpenSSH public key line), generated once per cache."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = client_key_path()
    pub = path.with_suffix(".pub")
    if not path.exists() or not pub.exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        atomic.write_bytes(path, private)
        path.chmod(0o600)
        atomic.write_text(pub, public.decode() + " kto\n")
    return path, pub.read_text().strip()


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@dataclass(frozen=True)
class HostKey:
    """A guest's ed25519 host key: `dropbear` is the file dropbear -r reads, `public` the
    OpenSSH line kto pins."""

    dropbear: bytes
    public: str


def make_host_key() -> HostKey:
    """A new host key for one boot, in dropbear's key file format (string "ssh-ed25519",
    then a 64-byte string: the 32-byte secret seed and the 32-byte public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    line = pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return HostKey(_ssh_string(b"ssh-ed25519") + _ssh_string(seed + raw), line.decode())


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CommandResult:
    command: str
    status: int
    stdout: bytes
    stderr: bytes


class GuestSSH:
    def __init__(self, port: int, host_key: str, key: Path | None = None) -> None:
        """host_key: the OpenSSH public line of the only host key accepted (pinned)."""
        self.port = port
        self.host_key = host_key
        self.key = key or ensure_client_key()[0]
        self._client: Any = None  # paramiko.SSHClient, imported when connecting

    def connect(self, timeout: float = 60.0) -> None:
        import paramiko

        pkey = paramiko.Ed25519Key.from_private_key_file(str(self.key))
        kind, blob = self.host_key.split()[:2]
        pinned = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[127.0.0.1]:{self.port}", kind, pinned)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(
                    "127.0.0.1",
                    port=self.port,
                    username="root",
                    pkey=pkey,
                    look_for_keys=False,
                    allow_agent=False,
                    timeout=10,
                    banner_timeout=30,
                    auth_timeout=30,
                )
                self._client = client
                return
            except paramiko.BadHostKeyException as exc:
                client.close()
                raise InfraError(
                    f"SSH to the guest (127.0.0.1:{self.port}): the server offered host key "
                    f"{exc.key.get_base64()[:24]}..., not the one kto gave this boot",
                    hint="another process answers on that port; nothing was sent to it",
                ) from exc
            except (OSError, paramiko.SSHException) as exc:
                last = exc
                client.close()
                time.sleep(0.5)
        raise InfraError(
            f"SSH to the guest (127.0.0.1:{self.port}) failed for {timeout:.0f} s: {last}",
            hint="does the kernel have networking? `kto run --network` "
            "adds the arch's net fragment to the build",
        )

    def run(self, command: str, timeout: float = 300.0) -> CommandResult:
        assert self._client is not None, "connect() first"
        _, out, err = self._client.exec_command(command, timeout=timeout)
        stdout = out.read()
        stderr = err.read()
        status = out.channel.recv_exit_status()
        return CommandResult(command, status, stdout, stderr)

    def fetch(self, guest_path: str) -> bytes:
        """A guest file's bytes (dropbear has no SFTP server: `cat` over an exec channel)."""
        res = self.run(f"cat {_quote(guest_path)}")
        if res.status != 0:
            raise InfraError(
                f"cannot read {guest_path} in the guest: "
                f"{res.stderr.decode(errors='replace').strip()}"
            )
        return res.stdout

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"
