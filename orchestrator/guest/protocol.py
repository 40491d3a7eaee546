"""What the guest's /init and the host agree on: job file, markers, exit-status lines.

The host appends a tiny uncompressed cpio holding JOB_FILE to the cached base initramfs
(the kernel unpacks concatenated archives in order). /init sources JOB_FILE, prints
MARKER lines on the console, runs the job, prints the exit status and powers off.
Markers may be preceded by kernel output on the same console line: match with `search`.
"""

from __future__ import annotations

import re

# Test names: a guest-tests/ folder, also a path component inside the initramfs.
TEST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED_TESTS = ("command", "boot")  # job names /init handles itself

JOB_FILE = "kto/job.sh"  # path inside the initramfs (no leading slash: cpio member name)
HOST_KEY_FILE = "etc/dropbear/dropbear_ed25519_host_key"  # this boot's pinned host key

MARKER = "<<KTO>>"
BOOT_OK = f"{MARKER} boot-ok"  # /init started: userspace reached
TEST_START = f"{MARKER} test-start"  # + " NAME"
TEST_END = f"{MARKER} test-end"  # + " NAME rc=N"
POWEROFF = f"{MARKER} poweroff"  # /init is about to power off

TEST_START_RE = re.compile(re.escape(TEST_START) + r" (\S+)")
TEST_END_RE = re.compile(re.escape(TEST_END) + r" (\S+) rc=(-?\d+)")

# The status channel: a virtio-serial port with this name (where the arch has virtio). /init
# writes the same marker lines there; the host reads them from a file after QEMU exits, so
# the exit status survives a console flooded or interleaved by kernel messages.
STATUS_PORT = "kto.status"

# Variables /init reads from JOB_FILE (shell syntax, values single-quoted by the host):
#   KTO_TEST     name of the test (folder under /kto/tests), or "command"
#   KTO_CMD      shell command to run when KTO_TEST=command
#   KTO_SHELL    "1": give an interactive shell on the console instead of powering off
#   KTO_ARGS     extra arguments for the test's run script
#   KTO_NET      "1": bring up eth0 (QEMU user net: 10.0.2.15/24 via 10.0.2.2) and dropbear
#   KTO_HOLD     seconds to wait after the test for the host (SSH) before powering off;
#                the host ends the wait early by creating HOLD_RELEASE in the guest
JOB_VARS = ("KTO_TEST", "KTO_CMD", "KTO_SHELL", "KTO_ARGS", "KTO_NET", "KTO_HOLD")
HOLD_RELEASE = "/tmp/kto-release"
NET_READY = f"{MARKER} net-ready"  # dropbear is listening

# One machine-readable line per workload (guest-tests/*/ helpers and run.sh print it):
#   <<KTO>> result NAME status=PASS|FAIL|SKIP [key=value ...]
# Values are one word, or double-quoted (shell rules): reason="no /dev/kvm in the guest".
# The host stores the key=value pairs as the job's metrics[NAME]; status=FAIL is a FAIL
# verdict titled "kto: NAME: <reason>", SKIP (for every expected workload) a SKIP verdict.
RESULT = f"{MARKER} result"
RESULT_RE = re.compile(re.escape(RESULT) + r" (\S+) (.*)$")
