"""What the guest's /init and the host agree on: job file, markers, exit-status lines.

The host appends a tiny uncompressed cpio holding JOB_FILE to the cached base initramfs
(the kernel unpacks concatenated archives in order). /init sources JOB_FILE, prints
MARKER lines on the console, runs the job, prints the exit status and powers off.
Markers may be preceded by kernel output on the same console line: match with `search`.
"""

from __future__ import annotations

import re

JOB_FILE = "kto/job.sh"  # path inside the initramfs (no leading slash: cpio member name)

MARKER = "<<KTO>>"
BOOT_OK = f"{MARKER} boot-ok"  # /init started: userspace reached
TEST_START = f"{MARKER} test-start"  # + " NAME"
TEST_END = f"{MARKER} test-end"  # + " NAME rc=N"
POWEROFF = f"{MARKER} poweroff"  # /init is about to power off

TEST_START_RE = re.compile(re.escape(TEST_START) + r" (\S+)")
TEST_END_RE = re.compile(re.escape(TEST_END) + r" (\S+) rc=(-?\d+)")

# Variables /init reads from JOB_FILE (shell syntax, values single-quoted by the host):
#   KTO_TEST     name of the test (folder under /kto/tests), or "command"
#   KTO_CMD      shell command to run when KTO_TEST=command
#   KTO_SHELL    "1": give an interactive shell on the console instead of powering off
#   KTO_ARGS     extra arguments for the test's run script
JOB_VARS = ("KTO_TEST", "KTO_CMD", "KTO_SHELL", "KTO_ARGS")
