#!/bin/sh
# kto smoke test: prints what the guest sees and runs the cross-compiled static helper.
# Runs from its own folder (/kto/tests/smoke); exit status 0 = PASS.
set -e
echo "smoke: uname: $(uname -a)"
echo "smoke: cpus online: $(cat /sys/devices/system/cpu/online)"
echo "smoke: $(grep -E '^MemTotal:' /proc/meminfo | tr -s ' ')"
./hello
echo "smoke: ok"
