#!/bin/sh
# kto CPU hotplug loop: all arguments (duration=, mode=, seed=, trace=) go to ./hotplug,
# which prints the result line; exit status 0 = PASS or SKIP.
echo "hotplug: cpus online: $(cat /sys/devices/system/cpu/online)"
exec ./hotplug "$@"
