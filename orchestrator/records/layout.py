"""The names of everything kto writes in a run directory and a build directory, defined once.

results/<run-id>/            run id: <YYYYmmdd-HHMMSS>-<label>-<4 hex>, sortable by time
  run.json                   what the run was asked to do, host, versions, timings
  junit.xml kcidb.json report.html summary.json
  mail/NN-<slug>.eml         `kto report --mail`: reply mails about new findings
  <job>/                     one folder per job: <arch>-<test>[-r<repeat>]
    job.json findings.json console.log console.timing.tsv status.log build.log
results/latest -> <run-id>
<cache>/builds/<key>/        build.json build.log config <kernel image>
"""

from __future__ import annotations

RUN_RECORD = "run.json"
JOB_RECORD = "job.json"
FINDINGS = "findings.json"
CONSOLE = "console.log"
CONSOLE_TIMING = "console.timing.tsv"
STATUS_LOG = "status.log"  # the guest's status channel (virtio-serial), where the arch has one
BUILD_RECORD = "build.json"
BUILD_LOG = "build.log"
INITRD = "initrd.img"
LATEST = "latest"
# Run-level outputs written by `kto report` / the end of `kto run`.
JUNIT = "junit.xml"
KCIDB = "kcidb.json"
HTML = "report.html"
SUMMARY = "summary.json"
MAIL_DIR = "mail"  # `kto report --mail`: NN-<slug>.eml, one reply per new finding
REVERT_SERIES = "revert"  # `kto bisect --verify-revert`: the culprit's revert as a series
STACKED_SERIES = "series"  # `kto test`: a cell's own series with the fix on top
# Folders of a run that are not jobs: reading one as a job would add a MISS to the run.
NOT_JOBS = frozenset({MAIL_DIR, REVERT_SERIES, STACKED_SERIES})
# Files of a job folder, in the order a person looks at them.
JOB_FILES = (CONSOLE, FINDINGS, JOB_RECORD, BUILD_LOG, CONSOLE_TIMING)
