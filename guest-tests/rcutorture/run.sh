#!/bin/sh
# rcutorture runs inside the kernel: it was started at boot from the kernel command line
# (test.yaml `cmdline`), and after rcutorture.shutdown_secs it prints its End of test line
# and powers the guest off. This script only waits; if it ever gets past the sleep, the
# kernel did not end the test.
duration=30
for a in "$@"; do
	case $a in duration=*) duration=${a#duration=} ;; esac
done
if grep -q 'rcutorture.torture_type=none' /proc/cmdline; then
	echo "rcutorture: disabled on the kernel command line (torture_type=none)"
	exit 1
fi
echo "rcutorture: running in the kernel for ${duration} s; the kernel powers off at the end"
sleep $((duration + 600))
echo "rcutorture: the kernel did not power off after ${duration} s"
exit 1
