#!/bin/sh
# kto mm-lifecycle churn: fork/exec/exit storms with threads re-pinned across CPUs, while
# (with more than one CPU) a random CPU hotplug loop offlines and onlines them. On one CPU
# (sparc64 under QEMU) the churn runs alone. Each workload prints its own result line.
duration=20
for a in "$@"; do
	case $a in duration=*) duration=${a#duration=} ;; esac
done
hp=
if [ -x ../hotplug/hotplug ] && [ -e /sys/devices/system/cpu/cpu1/online ]; then
	../hotplug/hotplug duration="$duration" mode=random &
	hp=$!
else
	echo "mm-churn: one CPU (or no hotplug helper): churn without CPU hotplug"
fi
./churn "$@"
rc=$?
if [ -n "$hp" ]; then
	wait "$hp" || rc=1
fi
exit $rc
