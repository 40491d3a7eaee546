#!/bin/sh
# rcutorture runs inside the kernel: it was started at boot from the kernel command line
# (test.yaml `cmdline`), and after rcutorture.shutdown_secs it prints its End of test line
# and powers the guest off. This script waits, and meanwhile starts a short-lived user
# process on every CPU ten times a second: a kernel thread (torture_onoff driving the
# offline among them) borrows the mm of the last user task on its CPU as its lazy
# active_mm, and in an otherwise idle guest that is often init_mm, so the lazy-mm paths
# the offline runs through (seed 003) would go untested. If this script ever gets past the
# sleep, the kernel did not end the test.
duration=30
for a in "$@"; do
	case $a in duration=*) duration=${a#duration=} ;; esac
done
if grep -q 'rcutorture.torture_type=none' /proc/cmdline; then
	echo "rcutorture: disabled on the kernel command line (torture_type=none)"
	exit 1
fi
ncpus=$(nproc --all)
(
	while :; do
		cpu=0
		while [ "$cpu" -lt "$ncpus" ]; do
			taskset -c "$cpu" true 2>/dev/null # fails while that CPU is offline
			cpu=$((cpu + 1))
		done
		usleep 100000
	done
) &
echo "rcutorture: running in the kernel for ${duration} s; the kernel powers off at the end"
sleep $((duration + 600))
echo "rcutorture: the kernel did not power off after ${duration} s"
exit 1
